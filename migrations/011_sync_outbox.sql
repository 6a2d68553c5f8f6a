-- 011: the sync outbox (shared/src/queue/sync-queue.ts).
--
-- A QUEUED or DEFERRED command records its sync work here, in its own transaction, as one narrow
-- row per job, instead of inserting the job into pg-boss: a pg-boss job row is a wide insert into a
-- table with a dozen indexes and two deferred foreign-key checks at COMMIT, and it dominated the
-- cost of a QUEUED write. The workers move the rows to pg-boss in batches (the relay: one DELETE
-- ... RETURNING and one pg-boss insert per batch, in one transaction), so a committed write always
-- gets its job, exactly once, and a write that rolls back leaves nothing. A row's id is the id of
-- the job it becomes, which the write's sync token names.

CREATE TABLE sync_outbox (
  id          uuid        NOT NULL,
  -- The job's payload (SyncJobData: the plan, the mode, when the write enqueued it).
  data        jsonb       NOT NULL,
  -- pg-boss's priority (QUEUED above DEFERRED).
  priority    integer     NOT NULL,
  -- DEFERRED: not before this time.
  start_after timestamptz,
  -- The W3C trace context of the writing span when it was sampled, so the job continues its trace.
  trace       jsonb,
  CONSTRAINT sync_outbox_pkey PRIMARY KEY (id)
);

-- Rows live for milliseconds and are deleted in batches: vacuum it often, whatever its size.
ALTER TABLE sync_outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
