-- 012: writes merged into one sync job by the relay (shared/src/queue/sync-queue.ts).
--
-- The relay merges the untraced, undelayed rows of a batch of the sync outbox into one pg-boss job
-- (each job costs pg-boss an insert into a table with a dozen indexes, then a fetch and a completion
-- by a worker; one per write was most of the workers' cost). A write's sync token still names the id
-- its outbox row had: this table says which job carries it until that job settles. The worker that
-- completes a merged job deletes its rows in the same transaction; one that cannot refresh it splits
-- it back into one job per write (under the writes' own ids) and deletes its rows, so a poison write
-- fails alone. A token whose id is in neither the outbox nor here names a job of its own.

CREATE TABLE sync_relayed (
  -- The write's job id (the outbox row's id, the one its sync token names).
  id      uuid        NOT NULL,
  -- The merged pg-boss job that refreshes it.
  job_id  uuid        NOT NULL,
  at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sync_relayed_pkey PRIMARY KEY (id)
);

-- Rows live as long as their job waits (milliseconds when workers keep up): vacuum it often.
ALTER TABLE sync_relayed SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);
