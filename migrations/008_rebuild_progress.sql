-- 008: progress of the online rebuild (`npm run sync -- rebuild`, shared/src/sync/rebuild.ts).
--
-- The rebuild walks each projection's ids in chunks, each chunk a short transaction of its own, and
-- updates its entity's row here in the same transaction: a row always says which chunks committed.
-- A rebuild that was killed is continued by the next one from the last committed chunk; one that
-- finished (every row done) is started afresh. The table holds one run, the latest: a new run
-- deletes the rows of the one before. Only the rebuild reads or writes it (no grants to the API or
-- the worker).

CREATE TABLE sync_rebuild (
  run_id       uuid             NOT NULL,
  entity_type  text             NOT NULL,
  started_at   timestamptz      NOT NULL,
  -- The upper bound of the entity's last committed chunk: the next chunk starts after it. NULL: no chunk yet.
  last_id      uuid,
  done         boolean          NOT NULL DEFAULT false,
  chunks       integer          NOT NULL DEFAULT 0,
  -- Ids refreshed (tb_* and tv_* ids of the chunks), projection rows written and removed, users
  -- whose kept counts were recounted because they differed from the rows.
  entities     bigint           NOT NULL DEFAULT 0,
  updated      bigint           NOT NULL DEFAULT 0,
  deleted      bigint           NOT NULL DEFAULT 0,
  recounted    bigint           NOT NULL DEFAULT 0,
  -- Time spent in the entity's chunk transactions, over every process of the run.
  duration_ms  double precision NOT NULL DEFAULT 0,
  updated_at   timestamptz      NOT NULL DEFAULT now(),
  CONSTRAINT sync_rebuild_pkey PRIMARY KEY (run_id, entity_type),
  CONSTRAINT sync_rebuild_counts CHECK (chunks >= 0 AND entities >= 0 AND updated >= 0 AND deleted >= 0 AND recounted >= 0 AND duration_ms >= 0)
);
