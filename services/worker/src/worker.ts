import { randomBytes } from 'node:crypto';
import os from 'node:os';
import {
  announceShapes,
  ANNOUNCE_EVERY_MS,
  buildShapes,
  ChangePublisher,
  createBoss,
  describePending,
  FOLLOW_EVERY_MS,
  followShapes,
  pendingShapes,
  createMetrics,
  createPool,
  ENTITY_TYPES,
  deleteOldLag,
  pruneEvents,
  silentLogger,
  SYNC_QUEUE,
  SyncEngine,
  SyncQueue,
  type Logger,
  type ServiceMetrics,
  type SyncJobData,
} from '@blog/shared';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { BatchProcessor, isTransient, type BatchOutcome, type SyncJob } from './batch';
import type { WorkerConfig } from './env';

export type WorkerState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

export interface WorkerStatus {
  status: WorkerState;
  /** The worker's instance id (also the prefix of its lag rows' slots). */
  instance: string;
  startedAt: string | null;
  /** When the last batch committed. */
  lastBatchAt: string | null;
  batches: number;
  jobsCompleted: number;
  jobsFailed: number;
  entitiesSynced: number;
  /** Since when the database has been unreachable (null while it answers). */
  dbUnreachableSince: string | null;
  lastError: string | null;
  /**
   * Projection tables of this release's versions not built yet (shared/src/sync/shapes.ts): the
   * worker builds them and takes no sync job until they are done.
   */
  building: string[];
}

export interface WorkerOptions {
  logger?: Logger;
  /** Called after every batch (metrics, tests). */
  onBatch?: (outcome: BatchOutcome) => void;
}

/** How often the worker checks that the database answers (for /health). */
const DB_CHECK_INTERVAL_MS = 5000;
/** How often old lag samples and old events are deleted. */
const RETENTION_INTERVAL_MS = 3600_000;

/**
 * The projection worker: drains the sync queue in batches through pg-boss.
 *
 * pg-boss's `work()` does the fetching: up to `batchSize` jobs at a time, highest priority first,
 * with `FOR UPDATE SKIP LOCKED` so any number of workers share one queue and never hold the same
 * job. It fetches again at once while batches come back full (burst mode); after a short fetch it
 * looks again after `pollIntervalMs` (50 ms by default: we wake pg-boss's fetch loops with
 * notifyWorker(), whose own poll cannot go below 0.5 s). The queue does not NOTIFY on new jobs (see
 * shared/src/queue/queues.ts for why); if it is turned on, the LISTEN connection wakes the loops too.
 * The jobs reach pg-boss through the sync outbox, which every worker relays (relayOutbox). Each
 * batch is settled by BatchProcessor.
 */
export class ProjectionWorker {
  readonly instance: string;
  /** Prometheus metrics of this worker (served on the health port at /metrics). */
  readonly metrics: ServiceMetrics;
  private readonly log: Logger;
  private state: WorkerState = 'created';
  private pool?: pg.Pool;
  private boss?: PgBoss;
  private processor?: BatchProcessor;
  private queue?: SyncQueue;
  /** The relay in hand (relayOutbox), awaited before stopping. */
  private relaying?: Promise<void>;
  private timers: NodeJS.Timeout[] = [];
  private freeSlots: number[];
  private inFlight = 0;
  private stopped?: Promise<{ clean: boolean }>;
  private starting?: Promise<void>;
  /** Taking sync jobs (false while this release's projection tables are being built). */
  private consuming = false;
  private building: string[] = [];
  private shapeWork?: Promise<void>;
  private announcedAt = 0;
  private readonly stopping = new AbortController();
  private publisher?: ChangePublisher;
  private readonly stats = {
    startedAt: null as Date | null,
    lastBatchAt: null as Date | null,
    batches: 0,
    jobsCompleted: 0,
    jobsFailed: 0,
    entitiesSynced: 0,
    dbUnreachableSince: null as Date | null,
    lastError: null as string | null,
  };

  constructor(
    readonly config: WorkerConfig,
    private readonly options: WorkerOptions = {},
  ) {
    this.log = options.logger ?? silentLogger;
    this.instance = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.freeSlots = Array.from({ length: config.concurrency }, (_, i) => i);
    this.metrics = createMetrics({ service: 'worker', db: () => this.pool });
  }

  /** Connects, then starts draining. Rejects (leaving nothing open) when the database is unreachable. */
  start(): Promise<void> {
    if (this.state !== 'created' || this.stopped) return Promise.reject(new Error(`worker cannot start: it is ${this.state}`));
    this.state = 'starting';
    this.starting = this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const { config } = this;
    const pool = createPool(config.databaseUrl, { applicationName: config.name, max: config.concurrency + 1 });
    const boss = createBoss({
      url: config.databaseUrl,
      applicationName: config.name,
      // fetches, the redundant completions of work(), failures, heartbeats, maintenance
      max: config.concurrency + 3,
      maintenance: true,
      listen: true,
      superviseIntervalSeconds: config.superviseIntervalSeconds,
      instanceName: config.name,
    });
    // pg-boss reports lost connections (fetches, maintenance, the LISTEN connection) as 'error'
    // events and keeps going: it polls again and reconnects on its own. We log and track them.
    boss.on('error', (err: Error) => this.onError(err, 'pg-boss'));
    boss.on('warning', (w: { message: string }) => this.log.warn({ warning: w.message }, 'pg-boss warning'));
    try {
      await boss.start();
    } catch (err) {
      await boss.stop({ graceful: false, close: true }).catch(() => undefined);
      await pool.end();
      this.state = 'created';
      this.markDb(err);
      throw err;
    }
    this.pool = pool;
    this.boss = boss;
    // What this worker's batches, follower passes and rebuild-like work refresh goes to every API
    // process through the change feed (shared/src/sync/feed.ts).
    const publisher = new ChangePublisher(config.databaseUrl, { applicationName: `${config.name}-feed`, logger: this.log });
    this.publisher = publisher;
    const queue = new SyncQueue(boss, pool);
    this.queue = queue;
    this.processor = new BatchProcessor({
      onCommitted: (plan) => publisher.publish(plan),
      pool,
      boss,
      queue,
      sync: new SyncEngine(pool, {
        onCommitted: (changes) => publisher.publish(changes),
        logger: this.log,
        onRefresh: (r) => {
          const labels = { entity_type: r.entityType, mode: 'batch' };
          if (r.success) this.metrics.syncDuration.observe(labels, r.durationMs / 1000);
          else this.metrics.syncFailures.inc(labels);
        },
      }),
      logger: this.log,
      stopping: () => this.state === 'stopping' || this.state === 'stopped',
    });
    this.stats.startedAt = new Date();
    this.markDb(null);
    // A release whose projection tables are still to be built builds them first, and takes sync
    // jobs once they are done (see keepShapes).
    await this.announce();
    const pending = await pendingShapes(pool);
    if (pending.length) {
      this.building = pending.map(describePending);
      this.log.warn({ building: this.building }, 'projection tables of this release are not built: building them before taking sync jobs');
      void this.keepShapes();
    } else {
      await this.consume();
    }
    this.timers.push(setInterval(() => void this.relayOutbox(), config.pollIntervalMs));
    void this.relayOutbox();
    this.timers.push(setInterval(() => void this.keepShapes(), FOLLOW_EVERY_MS));
    this.timers.push(setInterval(() => void this.checkDatabase(), DB_CHECK_INTERVAL_MS));
    this.timers.push(setInterval(() => void this.deleteOldLag(), RETENTION_INTERVAL_MS));
    void this.deleteOldLag();
    if (config.eventRetentionDays > 0) {
      this.timers.push(setInterval(() => void this.pruneEvents(), RETENTION_INTERVAL_MS));
      void this.pruneEvents();
    }
    this.state = 'running';
    this.log.info(
      { instance: this.instance, batchSize: config.batchSize, concurrency: config.concurrency, pollIntervalMs: config.pollIntervalMs },
      'projection worker started',
    );
  }

  /** Starts taking sync jobs. */
  private async consume(): Promise<void> {
    const { config } = this;
    const boss = this.boss!;
    // pg-boss polls at most every 0.5 s; below that we wake its fetch loops ourselves (see below).
    const pollSeconds = Math.max(0.5, config.pollIntervalMs / 1000);
    await boss.work<SyncJobData>(
      SYNC_QUEUE,
      {
        batchSize: config.batchSize,
        localConcurrency: config.concurrency,
        pollingIntervalSeconds: pollSeconds,
        notifyPollingIntervalSeconds: pollSeconds,
        burstWhenBatchFull: true,
      },
      (jobs) => this.handle(jobs),
    );
    if (this.stopping.signal.aborted) return;
    if (config.pollIntervalMs < 500) {
      // The fast poll: wake every fetch loop of ours so it fetches now instead of sleeping out
      // pg-boss's 0.5 s minimum. A loop busy with a batch fetches again as soon as it is done.
      this.timers.push(setInterval(() => this.wakeFetchLoops(), config.pollIntervalMs));
    }
    this.consuming = true;
  }

  private wakeFetchLoops(): void {
    const boss = this.boss!;
    for (const w of boss.getWipData()) if (w.name === SYNC_QUEUE) boss.notifyWorker(w.id);
  }

  /**
   * Every pollIntervalMs: moves the sync outbox's committed rows to pg-boss (SyncQueue.relayAll, a
   * batch per transaction), then wakes the fetch loops if it moved any.
   * Every worker relays; their batches never overlap (SKIP LOCKED).
   */
  private relayOutbox(): Promise<void> {
    this.relaying ??= (async () => {
      try {
        const moved = await this.queue!.relayAll(() => this.stopping.signal.aborted);
        if (moved && this.consuming) this.wakeFetchLoops();
      } catch (err) {
        this.onError(err as Error, 'outbox relay');
      } finally {
        this.relaying = undefined;
      }
    })();
    return this.relaying;
  }

  private async announce(): Promise<void> {
    await announceShapes(this.pool!);
    this.announcedAt = Date.now();
  }

  /**
   * Every FOLLOW_EVERY_MS: says that this release runs (every ANNOUNCE_EVERY_MS), builds this
   * release's projection tables that wait for it (then starts taking jobs), or follows the tables
   * of the other releases running beside it (shared/src/sync/shapes.ts).
   */
  private keepShapes(): Promise<void> {
    this.shapeWork ??= (async () => {
      try {
        const pool = this.pool!;
        if (Date.now() - this.announcedAt >= ANNOUNCE_EVERY_MS) await this.announce();
        if (this.consuming) {
          await followShapes(pool, { logger: this.log, onCommitted: (changes) => this.publisher?.publish(changes) });
          return;
        }
        const built = await buildShapes(pool, {
          logger: this.log,
          signal: this.stopping.signal,
          onProgress: (p) => (this.building = [describePending({ ...p, state: 'building' })]),
        });
        const pending = await pendingShapes(pool);
        this.building = pending.map(describePending);
        if (!pending.length && !this.stopping.signal.aborted) {
          this.log.info({ built: built.built }, "this release's projection tables are built: taking sync jobs");
          await this.consume();
        }
      } catch (err) {
        this.onError(err as Error, 'projection versions');
      } finally {
        this.shapeWork = undefined;
      }
    })();
    return this.shapeWork;
  }

  /**
   * Graceful stop: takes no more jobs, lets the batches in hand finish (up to shutdownTimeoutMs),
   * then closes every connection. `clean` is false when a batch had to be abandoned: its
   * transaction rolls back and pg-boss retries its jobs.
   */
  stop(): Promise<{ clean: boolean }> {
    this.stopped ??= this.doStop();
    return this.stopped;
  }

  private async doStop(): Promise<{ clean: boolean }> {
    await this.starting?.catch(() => undefined);
    if (this.state === 'created') {
      this.state = 'stopped';
      return { clean: true };
    }
    this.state = 'stopping';
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    // A build stops after its chunk in hand (committed: the next start continues from there).
    this.stopping.abort();
    await this.shapeWork;
    await this.relaying;
    this.log.info({ inFlight: this.inFlight }, 'stopping: finishing the batch in hand, taking no more');
    // pg-boss stops fetching, waits for running handlers up to the timeout, then fails (for retry)
    // the jobs of any handler still running, and closes its pool.
    try {
      await this.boss?.stop({ graceful: true, timeout: this.config.shutdownTimeoutMs, close: true });
    } catch (err) {
      this.log.error({ err }, 'pg-boss did not stop cleanly');
    }
    const clean = this.inFlight === 0;
    if (!clean) {
      this.log.error({ inFlight: this.inFlight }, 'shutdown timeout: abandoning the batch in hand (its jobs will be retried)');
      this.processor?.abortAll();
    }
    await this.publisher?.close();
    await this.pool?.end();
    this.state = 'stopped';
    this.log.info({ clean }, 'projection worker stopped');
    return { clean };
  }

  status(): WorkerStatus {
    const s = this.stats;
    return {
      status: this.state,
      instance: this.instance,
      startedAt: s.startedAt?.toISOString() ?? null,
      lastBatchAt: s.lastBatchAt?.toISOString() ?? null,
      batches: s.batches,
      jobsCompleted: s.jobsCompleted,
      jobsFailed: s.jobsFailed,
      entitiesSynced: s.entitiesSynced,
      dbUnreachableSince: s.dbUnreachableSince?.toISOString() ?? null,
      lastError: s.lastError,
      building: this.building,
    };
  }

  /** Healthy and taking sync jobs (not while this release's projection tables are being built). */
  ready(now = Date.now()): boolean {
    return this.healthy(now) && this.consuming;
  }

  /** Alive and able to work: running, and the database not unreachable for longer than allowed. */
  healthy(now = Date.now()): boolean {
    if (this.state !== 'running') return false;
    const since = this.stats.dbUnreachableSince;
    return !since || now - since.getTime() < this.config.unhealthyAfterMs;
  }

  private async handle(jobs: SyncJob[]): Promise<void> {
    const slotIndex = this.freeSlots.pop() ?? this.config.concurrency;
    const slot = `${this.instance}/${slotIndex}`;
    this.inFlight += 1;
    const started = performance.now();
    try {
      const outcome = await this.processor!.process(jobs, slot);
      const s = this.stats;
      s.batches += 1;
      s.jobsCompleted += outcome.completed.length;
      s.jobsFailed += outcome.failed.length;
      s.entitiesSynced += outcome.entities;
      if (outcome.completed.length) s.lastBatchAt = new Date();
      this.metrics.batchJobs.observe(jobs.length);
      this.metrics.batchEntities.observe(outcome.entities);
      for (const ms of outcome.lagsMs) this.metrics.projectionLag.observe(ms / 1000);
      this.markDb(null);
      this.log.debug(
        {
          jobs: jobs.length,
          completed: outcome.completed.length,
          failed: outcome.failed.length,
          entities: outcome.entities,
          ms: Math.round(performance.now() - started),
          refreshMs: Object.fromEntries(ENTITY_TYPES.map((t) => [t, Math.round(outcome.timings[t] ?? 0)])),
          settleMs: outcome.timings.settle,
        },
        'batch settled',
      );
      this.options.onBatch?.(outcome);
    } catch (err) {
      // Only transient failures get here (the database is away). pg-boss fails the batch for retry,
      // or, if it cannot reach the database either, the heartbeat lapses and another pass retries it.
      this.onError(err as Error, 'batch');
      throw err;
    } finally {
      this.inFlight -= 1;
      if (slotIndex < this.config.concurrency) this.freeSlots.push(slotIndex);
    }
  }

  private onError(err: Error, source: string): void {
    this.stats.lastError = `${source}: ${err?.message ?? String(err)}`;
    if (isTransient(err)) this.markDb(err);
    this.log.error({ err, source }, 'worker error (continuing)');
  }

  private markDb(err: unknown): void {
    if (err) this.stats.dbUnreachableSince ??= new Date();
    else this.stats.dbUnreachableSince = null;
  }

  private async checkDatabase(): Promise<void> {
    try {
      await this.pool?.query('SELECT 1');
      this.markDb(null);
    } catch (err) {
      this.markDb(err);
      this.log.warn({ err }, 'database check failed');
    }
  }

  private async deleteOldLag(): Promise<void> {
    try {
      const deleted = await deleteOldLag(this.pool!, this.config.lagRetentionHours * 3600);
      if (deleted) this.log.info({ deleted }, 'old lag samples deleted');
    } catch (err) {
      this.log.warn({ err }, 'could not delete old lag samples');
    }
  }

  /** Deletes the events older than EVENT_RETENTION_DAYS (several workers may: each deletes what is left). */
  private async pruneEvents(): Promise<void> {
    try {
      const deleted = await pruneEvents(this.pool!, this.config.eventRetentionDays);
      if (deleted) this.log.info({ deleted, retentionDays: this.config.eventRetentionDays }, 'old events deleted');
    } catch (err) {
      this.log.warn({ err }, 'could not delete old events');
    }
  }
}

export function createWorker(config: WorkerConfig, options: WorkerOptions = {}): ProjectionWorker {
  return new ProjectionWorker(config, options);
}
