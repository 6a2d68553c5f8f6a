import type pg from 'pg';
import { QUEUE_SCHEMA } from './install';
import { SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from './queues';

export interface SyncQueueDepth {
  /** Jobs waiting that a worker may take now (new or due for a retry), including the outbox's. */
  ready: number;
  /** Jobs waiting for their start time: DEFERRED syncs, and retries in their backoff. */
  scheduled: number;
  /** Of ready + scheduled, those still in the sync outbox (committed, not yet relayed to pg-boss). */
  outbox: number;
  /** Of ready + scheduled, those waiting for a retry after a failed attempt. */
  retrying: number;
  /** Jobs a worker holds right now. */
  active: number;
  /** Jobs that failed every retry and wait in the dead letter queue for an operator. */
  deadLetters: number;
}

// Read straight from pg-boss's job table (a live count, where getQueue() serves counts cached for up
// to a monitor interval). pg-boss partitions that table by queue name, so `name = ANY` reads two
// partitions through their (name, state, ...) indexes. The layout belongs to pg-boss: the queue
// tests run this against the pg-boss version installed, and the test template is rebuilt whenever
// that version changes.
// The outbox (migration 011) holds the jobs written since the last relay.
const DEPTH = `
  SELECT j.ready + o.ready AS ready, j.scheduled + o.scheduled AS scheduled, o.ready + o.scheduled AS outbox,
         j.retrying, j.active, j.dead_letters
    FROM (SELECT count(*) FILTER (WHERE name = $1 AND state < 'active' AND start_after <= now())::int AS ready,
                 count(*) FILTER (WHERE name = $1 AND state < 'active' AND start_after > now())::int AS scheduled,
                 count(*) FILTER (WHERE name = $1 AND state = 'retry')::int AS retrying,
                 count(*) FILTER (WHERE name = $1 AND state = 'active')::int AS active,
                 count(*) FILTER (WHERE name = $2 AND state < 'active')::int AS dead_letters
            FROM ${QUEUE_SCHEMA}.job
           WHERE name = ANY(ARRAY[$1, $2]) AND state <= 'active') j,
         (SELECT count(*) FILTER (WHERE start_after IS NULL OR start_after <= now())::int AS ready,
                 count(*) FILTER (WHERE start_after > now())::int AS scheduled
            FROM sync_outbox) o`;

/** The sync queue's depth right now (for /metrics, the worker's health and the benchmark). */
export async function syncQueueDepth(db: Pick<pg.Pool, 'query'>): Promise<SyncQueueDepth> {
  const { rows } = await db.query<{
    ready: number;
    scheduled: number;
    outbox: number;
    retrying: number;
    active: number;
    dead_letters: number;
  }>(DEPTH, [SYNC_QUEUE, SYNC_DEAD_LETTER_QUEUE]);
  const r = rows[0]!;
  return { ready: r.ready, scheduled: r.scheduled, outbox: r.outbox, retrying: r.retrying, active: r.active, deadLetters: r.dead_letters };
}

/** Jobs waiting in the dead letter queue (the count /metrics shows operators). */
export async function deadLetterCount(db: Pick<pg.Pool, 'query'>): Promise<number> {
  return (await syncQueueDepth(db)).deadLetters;
}
