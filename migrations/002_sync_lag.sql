-- 002: projection lag, measured by the worker (services/worker).
--
-- Lag of a write = commit of the projection refresh that covered it - the write's commit (the
-- `enqueuedAt` the writer stamps on its sync job just before COMMIT). The worker measures it for
-- every job it completes, in the batch's own transaction, so only syncs that committed count.
--
-- Why histograms and not one row per job: at a steady 500 writes/s one row per job is 43 million
-- rows a day, and a 24-hour p99 over them is a sort of 43 million values on every /metrics call.
-- Instead each worker keeps one row per minute, sync mode and batch slot holding a fixed histogram
-- of log-spaced bins (shared/src/sync/lag.ts: 160 bins, each 2^(1/8) = 9% wider than the last, so
-- a percentile is exact to within 9%); a batch adds its counts to that row. Histograms add up, so a
-- 24-hour percentile sums at most 1,440 rows per worker slot and reads the bin where the rank
-- falls. Percentiles of per-batch percentiles could not be combined; histograms can.
--
-- Rows are keyed by the batch slot (worker process + its local concurrency slot) so two batches
-- never wait on each other's lag row, and by mode because DEFERRED jobs wait on purpose.

CREATE TABLE sync_lag (
  minute   timestamptz      NOT NULL,
  mode     text             NOT NULL,
  slot     text             NOT NULL,
  samples  bigint           NOT NULL,
  sum_ms   double precision NOT NULL,
  max_ms   double precision NOT NULL,
  bins     bigint[]         NOT NULL,
  CONSTRAINT sync_lag_pkey PRIMARY KEY (minute, mode, slot),
  CONSTRAINT sync_lag_mode CHECK (mode IN ('QUEUED', 'DEFERRED')),
  CONSTRAINT sync_lag_samples CHECK (samples > 0),
  CONSTRAINT sync_lag_values CHECK (sum_ms >= 0 AND max_ms >= 0),
  CONSTRAINT sync_lag_bins CHECK (cardinality(bins) = 160)
);
-- The primary key leads with `minute`: the 24-hour read and the retention delete are range scans
-- on it. No other index is needed.
