import {
  backoffMs,
  ENTITY_TYPES,
  forgetMerged,
  inTransaction,
  isRetryablePgError,
  MAX_IDS_PER_JOB,
  mergePlans,
  planSize,
  recordLag,
  SYNC_QUEUE,
  transactionDb,
  type EntityType,
  type LagMode,
  type Logger,
  type MergedWrite,
  type SyncEngine,
  type SyncJobData,
  type SyncPlan,
  type SyncQueue,
} from '@blog/shared';
import type pg from 'pg';
import type { Job, PgBoss } from 'pg-boss';

export type SyncJob = Job<SyncJobData>;

export interface BatchOutcome {
  /** Jobs completed (their refresh committed). */
  completed: string[];
  /** Jobs failed back to pg-boss (retried later, dead-lettered after the last retry). */
  failed: string[];
  /** Entities refreshed, summed over the committed transactions (after de-duplication). */
  entities: number;
  /** Transactions the batch took: 1 when nothing failed, more when a poison job was isolated. */
  transactions: number;
  /** Milliseconds of refresh per entity type, and of settling the jobs (`settle`). */
  timings: Partial<Record<EntityType, number>> & { settle: number };
  /** Lag of each write of the completed jobs: its commit to its projections' commit, in ms. */
  lagsMs: number[];
  /** Merged jobs that could not be refreshed, split back into a job per write (SyncQueue.split). */
  split: string[];
}

/**
 * A failure that says nothing about the jobs: the database went away, a deadlock, a restart.
 * Retried in place a few times; if it persists the whole batch is handed back to pg-boss.
 */
export function isTransient(err: unknown): boolean {
  return isRetryablePgError(err) || (err instanceof Error && err.cause !== undefined && isRetryablePgError(err.cause));
}

/** Backoff of the in-place retries of a transient failure: 100 ms, 200 ms, ... at most 2 s, 6 tries. */
const TRANSIENT_RETRIES = 6;
const TRANSIENT_BACKOFF_MS = 100;
const TRANSIENT_BACKOFF_MAX_MS = 2000;

/**
 * The most ids one transaction refreshes. A batch whose jobs carry more is settled in several
 * transactions, so that a large fan-out (a user with 100,000 comments renamed: 50 jobs) never
 * becomes one huge transaction holding its row locks for its whole run.
 */
export const MAX_IDS_PER_TRANSACTION = 2 * MAX_IDS_PER_JOB;

/**
 * Settles one batch of sync jobs.
 *
 * The jobs are taken in groups of at most MAX_IDS_PER_TRANSACTION ids. The plans of a group are
 * merged (one id list per entity type, duplicates removed) and refreshed in ONE transaction that
 * also records the jobs' lag and completes them in pg-boss: the jobs are completed if and only if
 * their refresh committed. A fan-out job (SyncJobData.expand) is expanded by the dependency map in
 * the same transaction and enqueued again as plans of at most MAX_IDS_PER_JOB ids. A job whose refresh cannot succeed (a poison
 * job) makes that transaction fail; the batch is then split in halves, each retried in its own
 * transaction, down to the single bad job(s), which alone are failed back to pg-boss (retries with
 * backoff, then the dead letter queue). Good jobs never wait for a bad one.
 */
export class BatchProcessor {
  constructor(
    private readonly deps: {
      pool: pg.Pool;
      boss: PgBoss;
      sync: SyncEngine;
      logger: Logger;
      /** True once the worker is shutting down: transient failures are no longer waited out. */
      stopping: () => boolean;
      /** Where fan-out jobs enqueue what they expand to. */
      queue: SyncQueue;
      /** After a batch committed: what it refreshed (for the change feed). */
      onCommitted?: (plan: Partial<SyncPlan>) => void;
    },
  ) {}

  /** Connections of the transactions in progress (so a forced shutdown can cut them). */
  private readonly active = new Set<pg.PoolClient>();

  /**
   * Forced shutdown: destroys the connections of the transactions in progress. The server rolls
   * them back; their jobs stay unsettled and pg-boss retries them.
   */
  abortAll(): void {
    for (const client of this.active) client.release(new Error('worker shutdown: batch abandoned'));
    this.active.clear();
  }

  async process(jobs: readonly SyncJob[], slot: string): Promise<BatchOutcome> {
    const outcome: BatchOutcome = {
      completed: [],
      failed: [],
      entities: 0,
      transactions: 0,
      timings: { settle: 0 },
      lagsMs: [],
      split: [],
    };
    const valid: SyncJob[] = [];
    const malformed: SyncJob[] = [];
    for (const job of jobs) (isSyncJobData(job.data) ? valid : malformed).push(job);
    if (malformed.length) {
      await this.fail(malformed, new Error('malformed sync job payload (expected { v: 1, plan, mode, enqueuedAt })'));
      outcome.failed.push(...malformed.map((j) => j.id));
    }
    for (const group of bySize(valid, MAX_IDS_PER_TRANSACTION)) await this.settle(group, slot, outcome);
    return outcome;
  }

  /** Commits `jobs` together, or isolates the ones that cannot commit by bisection. */
  private async settle(jobs: SyncJob[], slot: string, outcome: BatchOutcome): Promise<void> {
    try {
      outcome.entities += await this.withTransientRetries(() => this.commit(jobs, slot, outcome));
      outcome.transactions += 1;
      outcome.completed.push(...jobs.map((j) => j.id));
      return;
    } catch (err) {
      outcome.transactions += 1;
      if (isTransient(err)) throw err; // not the jobs' fault: pg-boss gets the whole batch back
      const writes = jobs.length === 1 ? jobs[0]!.data.writes : undefined;
      if (writes && writes.length > 1) {
        this.deps.logger.debug(
          { err, jobId: jobs[0]!.id, writes: writes.length },
          'merged sync job failed; splitting it into a job per write',
        );
        await this.withTransientRetries(() => this.split(jobs[0]!, writes));
        outcome.split.push(jobs[0]!.id);
        return;
      }
      if (jobs.length === 1) {
        this.deps.logger.warn({ err, jobId: jobs[0]!.id, retryCount: jobs[0]!.retryCount }, 'sync job failed; handing it back for retry');
        await this.fail(jobs, err);
        outcome.failed.push(jobs[0]!.id);
        return;
      }
      this.deps.logger.debug({ err, jobs: jobs.length }, 'batch failed; bisecting to isolate the failing job(s)');
    }
    const mid = Math.ceil(jobs.length / 2);
    await this.settle(jobs.slice(0, mid), slot, outcome);
    await this.settle(jobs.slice(mid), slot, outcome);
  }

  /** One transaction: refresh the merged plan, record lag, complete the jobs. Returns entities refreshed. */
  private async commit(jobs: SyncJob[], slot: string, outcome: BatchOutcome): Promise<number> {
    const { timings } = outcome;
    const { pool, boss, sync, logger, queue } = this.deps;
    const plan = mergePlans(jobs.filter((j) => !j.data.expand).map((j) => j.data.plan));
    const fanOut = jobs.filter((j) => j.data.expand);
    const client = await pool.connect();
    this.active.add(client);
    let broken: Error | undefined;
    // pg-pool takes its idle 'error' listener off a client while it is checked out: a connection cut
    // mid-transaction would emit 'error' with no listener and crash the process. The statement in
    // flight rejects with the same error, which is handled below.
    const onError = (err: Error) => {
      broken ??= err;
    };
    client.on('error', onError);
    try {
      const { report, lags, now } = await inTransaction(
        client,
        async () => {
          // The sync spans carry how long this batch's writes waited since they committed.
          const waited = jobs
            .flatMap(writesOf)
            .map((w) => Date.now() - w.enqueuedAt)
            .sort((a, b) => a - b);
          const report = await sync.refreshIn(client, plan, {
            spanAttributes: {
              'blog.sync.jobs': jobs.length,
              'blog.sync.lag_ms.p50': waited[Math.floor((waited.length - 1) / 2)] ?? 0,
              'blog.sync.lag_ms.max': waited.at(-1) ?? 0,
            },
          });
          await queue.expand(
            client,
            fanOut.map((j) => j.data),
          );
          // Taken as late as possible: the next statements are the lag insert, the completion and COMMIT.
          const now = Date.now();
          const lags: Record<LagMode, number[]> = { QUEUED: [], DEFERRED: [] };
          for (const job of jobs) for (const w of writesOf(job)) lags[job.data.mode].push(now - w.enqueuedAt);
          await recordLag(client, slot, lags);
          const merged = jobs.flatMap((j) => j.data.writes ?? []);
          if (merged.length) await forgetMerged(client, merged);
          // Fenced to the attempts this worker fetched: a job whose claim lapsed meanwhile (its heartbeat
          // was lost and another worker took the retry) is left to that attempt. The refresh commits
          // anyway; syncs are idempotent and the other attempt will refresh from the same or newer state.
          // pg-boss's types declare CommandResponse empty; at run time it is { jobs, requested, affected }.
          const done = (await boss.complete(
            SYNC_QUEUE,
            jobs.map((j) => ({ id: j.id, retryCount: j.retryCount })),
            null,
            { db: transactionDb(client) },
          )) as { affected?: number };
          if (done.affected !== undefined && done.affected !== jobs.length) {
            logger.warn({ requested: jobs.length, completed: done.affected }, 'some jobs were no longer held by this worker');
          }
          return { report, lags, now };
        },
        { onRollbackFailure: (err) => (broken = err) },
      );
      this.deps.onCommitted?.(plan);
      for (const mode of ['QUEUED', 'DEFERRED'] as const) outcome.lagsMs.push(...lags[mode]);
      for (const r of report.results) timings[r.entityType] = (timings[r.entityType] ?? 0) + r.durationMs;
      timings.settle += Date.now() - now;
      return planSize(plan);
    } catch (err) {
      if (isTransient(err)) broken ??= err as Error;
      throw err;
    } finally {
      // A connection that failed is destroyed rather than returned to the pool. One that abortAll()
      // already destroyed is no longer ours to release.
      client.removeListener('error', onError);
      if (this.active.delete(client)) client.release(broken);
    }
  }

  /** One transaction: a job per write of `job` (SyncQueue.split), and `job` completed. */
  private async split(job: SyncJob, writes: MergedWrite[]): Promise<void> {
    const { pool, boss, queue } = this.deps;
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await inTransaction(
        client,
        async () => {
          await queue.split(client, { ...job.data, writes });
          await boss.complete(SYNC_QUEUE, [{ id: job.id, retryCount: job.retryCount }], null, { db: transactionDb(client) });
        },
        { onRollbackFailure: (err) => (broken = err) },
      );
    } finally {
      client.release(broken);
    }
  }

  private async fail(jobs: readonly SyncJob[], err: unknown): Promise<void> {
    const message = err instanceof Error ? err.message : String(err);
    await this.withTransientRetries(() =>
      this.deps.boss.fail(
        SYNC_QUEUE,
        jobs.map((j) => ({ id: j.id, retryCount: j.retryCount })),
        { message, failedAt: new Date().toISOString() },
      ),
    );
  }

  private async withTransientRetries<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!isTransient(err) || attempt >= TRANSIENT_RETRIES || this.deps.stopping()) throw err;
        const wait = backoffMs(attempt, TRANSIENT_BACKOFF_MS, TRANSIENT_BACKOFF_MAX_MS);
        this.deps.logger.warn({ err, attempt, waitMs: wait }, 'database unavailable; retrying the batch');
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }
}

/** Consecutive groups of jobs carrying at most `max` ids each (a single larger job is a group alone). */
function bySize(jobs: SyncJob[], max: number): SyncJob[][] {
  const groups: SyncJob[][] = [];
  let size = max;
  for (const job of jobs) {
    const n = planSize(job.data.plan);
    if (size + n > max) {
      groups.push([]);
      size = 0;
    }
    groups.at(-1)!.push(job);
    size += n;
  }
  return groups;
}

/** The writes a job refreshes: those the relay merged into it, or the job's own. */
function writesOf(job: SyncJob): readonly { enqueuedAt: number }[] {
  return job.data.writes ?? [job.data];
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/** The shape of SyncJobData v1 (anything else is failed without touching the database). */
export function isSyncJobData(data: unknown): data is SyncJobData {
  if (!data || typeof data !== 'object') return false;
  const d = data as Partial<SyncJobData>;
  return (
    d.v === 1 &&
    (d.mode === 'QUEUED' || d.mode === 'DEFERRED') &&
    (d.expand === undefined || d.expand === true) &&
    typeof d.enqueuedAt === 'number' &&
    Number.isFinite(d.enqueuedAt) &&
    !!d.plan &&
    typeof d.plan === 'object' &&
    ENTITY_TYPES.every((t) => d.plan![t] === undefined || isStringArray(d.plan![t])) &&
    (d.writes === undefined || (Array.isArray(d.writes) && d.writes.every(isMergedWrite)))
  );
}

function isMergedWrite(w: unknown): w is MergedWrite {
  if (!w || typeof w !== 'object') return false;
  const { id, plan, enqueuedAt } = w as Partial<MergedWrite>;
  return (
    typeof id === 'string' &&
    typeof enqueuedAt === 'number' &&
    Number.isFinite(enqueuedAt) &&
    !!plan &&
    typeof plan === 'object' &&
    ENTITY_TYPES.every((t) => plan[t] === undefined || isStringArray(plan[t]))
  );
}
