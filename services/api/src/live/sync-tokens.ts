import { locateJobs, SYNC_QUEUE, UUID_PATTERN } from '@blog/shared';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';

/**
 * Sync tokens: read-your-writes for QUEUED and DEFERRED writes. A mutation's answer carries
 * `extensions.syncToken`, naming the sync jobs its command enqueued (none for an INLINE command,
 * whose projections committed with it). A read sent with `X-Sync-Token: <token>[, <token>...]` is
 * answered once every job named is completed, which is when its refresh committed (the worker
 * completes a batch's jobs in the batch's transaction), from the database and not from the response
 * cache; after SYNC_WAIT_TIMEOUT_MS it is answered with SYNC_TIMEOUT and no data. The jobs are
 * looked up in the sync outbox (not yet relayed: pending), in sync_relayed (the merged job that
 * carries the write) and through pg-boss's findJobs, so any API process answers for writes made
 * through any other. A fan-out left to the workers
 * (`extensions.sync.restQueued`) is covered as far as its expansion job: the chunks that job
 * enqueues follow later.
 */
export const SYNC_TOKEN_HEADER = 'x-sync-token';

const PREFIX = 'st1.';
/** Jobs a request may wait for (a token names at most a few; a header could name thousands). */
const MAX_JOBS = 100;

export function encodeSyncToken(jobs: readonly string[]): string {
  return PREFIX + Buffer.from(jobs.join(','), 'utf8').toString('base64url');
}

/** The jobs a header's tokens name, or an Error saying what is wrong with it. */
export function parseSyncTokens(header: string): string[] | Error {
  const jobs = new Set<string>();
  for (const raw of header.split(',')) {
    const token = raw.trim();
    if (!token) continue;
    if (!token.startsWith(PREFIX))
      return new Error(
        `X-Sync-Token: "${token.slice(0, 40)}" is not a sync token of this API (take them from a mutation's extensions.syncToken)`,
      );
    const text = Buffer.from(token.slice(PREFIX.length), 'base64url').toString('utf8');
    for (const id of text ? text.split(',') : []) {
      if (!UUID_PATTERN.test(id))
        return new Error(
          `X-Sync-Token: "${token.slice(0, 40)}" is damaged (take tokens from a mutation's extensions.syncToken as they are)`,
        );
      jobs.add(id);
    }
  }
  if (jobs.size > MAX_JOBS) return new Error(`X-Sync-Token: at most ${MAX_JOBS} writes per request`);
  return [...jobs];
}

export type WaitOutcome =
  { kind: 'synced'; waitedMs: number } | { kind: 'timeout'; waitedMs: number } | { kind: 'failed'; job: string; waitedMs: number };

/** How often pending jobs are looked at again when no change comes from the feed meanwhile. */
const POLL_MS = 50;

export class SyncTokens {
  private readonly wakers = new Set<() => void>();

  constructor(
    private readonly boss: Pick<PgBoss, 'findJobs'>,
    /** Where the sync outbox is read (the primary: the commands write it). */
    private readonly db: Pick<pg.Pool, 'query'>,
    private readonly timeoutMs: number,
  ) {}

  /** A change came through the feed: pending waits look again now. */
  wake(): void {
    for (const w of [...this.wakers]) w();
  }

  /** Waits until every job is completed (or gone: completed and since deleted), failed, or the timeout. */
  async wait(jobs: readonly string[]): Promise<WaitOutcome> {
    const started = performance.now();
    const deadline = started + this.timeoutMs;
    let pending = [...jobs];
    for (;;) {
      // The outbox and sync_relayed first, then pg-boss: each move (the relay's, the settling of a
      // merged job, its split) changes both sides in one transaction, so a job is never missed.
      const { unrelayed, merged } = await locateJobs(this.db, pending);
      const stateOf = async (job: string) => (await this.boss.findJobs(SYNC_QUEUE, { id: job }))[0]?.state;
      const states = await Promise.all(
        pending.map(async (id) => {
          if (unrelayed.has(id)) return { id, state: 'created' };
          const carrier = merged.get(id);
          if (!carrier) return { id, state: await stateOf(id) };
          // A merged job settled since sync_relayed was read: completed, or split into a job of the
          // write's own id (inserted in the same transaction, so it is seen now if it exists).
          const state = await stateOf(carrier);
          return { id, state: state === 'completed' ? ((await stateOf(id)) ?? state) : state };
        }),
      );
      const failed = states.find((s) => s.state === 'failed' || s.state === 'cancelled');
      if (failed) return { kind: 'failed', job: failed.id, waitedMs: performance.now() - started };
      pending = states.filter((s) => s.state === 'created' || s.state === 'retry' || s.state === 'active').map((s) => s.id);
      if (!pending.length) return { kind: 'synced', waitedMs: performance.now() - started };
      const left = deadline - performance.now();
      if (left <= 0) return { kind: 'timeout', waitedMs: performance.now() - started };
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wakers.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(POLL_MS, left));
        this.wakers.add(done);
      });
    }
  }
}
