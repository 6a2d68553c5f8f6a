/**
 * The queues of this project. One sync queue carries every sync plan; priority and delay tell
 * QUEUED (high priority, now) from DEFERRED (low priority, later) work.
 */
export const SYNC_QUEUE = 'projection-sync';

/** Jobs that failed every retry land here, for operators to inspect and replay. */
export const SYNC_DEAD_LETTER_QUEUE = 'projection-sync-dead';

export const syncQueueOptions = {
  // Retries with exponential backoff: 1 s, 2 s, 4 s, 8 s, 16 s. A sync is idempotent, so a retry is
  // always safe; five cover a database restart without parking good work in the dead letter queue.
  retryLimit: 5,
  retryDelay: 1,
  retryBackoff: true,
  retryDelayMax: 60,
  // A batch of syncs takes milliseconds; a job active for 5 minutes belongs to a dead worker.
  expireInSeconds: 300,
  // A worker that dies mid-batch (SIGKILL, OOM, lost host) never completes or fails its jobs. With a
  // heartbeat the supervisor of any live worker sees the claim go quiet after 10 s (pg-boss's
  // minimum) and retries the jobs, instead of waiting out expireInSeconds. Workers refresh the
  // heartbeat every 5 s while a batch runs; batches shorter than that never need to.
  heartbeatSeconds: 10,
  deadLetter: SYNC_DEAD_LETTER_QUEUE,
  // No NOTIFY per job. pg-boss would put a pg_notify in every writer's transaction, and PostgreSQL
  // serializes the commits of notifying transactions on one database-wide lock held through the
  // WAL flush: measured here, writes stalled at ~120/s with COMMITs waiting on that lock
  // (wait_event "object"). Workers poll instead, cheaply and often (WORKER_POLL_INTERVAL_MS, 50 ms
  // by default), so a job waits a few tens of ms at most.
  notify: false,
} as const;
