import {
  assertMigrationsCurrent,
  describeConnectionError,
  announceShapes,
  ANNOUNCE_EVERY_MS,
  describePending,
  pendingShapes,
  isRetryablePgError,
  queueSchemaInstalled,
  type Logger,
  type Migrator,
} from '@blog/shared';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';

/**
 * Whether the API can serve, and why not. `reason` is what anyone may be told (/ready answers it to
 * unauthenticated callers: no address, user or file name in it); `detail` is for the logs and for
 * callers with the operator token.
 */
export interface NotReady {
  reason: NotReadyReason;
  detail: string;
}

export type NotReadyReason =
  | 'database unavailable'
  | 'read replica unavailable'
  | 'migrations pending'
  | 'migrations do not match this build'
  | 'projections building'
  | 'starting'
  | 'readiness check failed';

/** A failure of a readiness query as a NotReady: the database away, or something else. */
export function notReadyFrom(err: unknown, url: string, reason: NotReadyReason = 'database unavailable'): NotReady {
  const detail = describeConnectionError(err, url) ?? (err instanceof Error ? err.message : String(err));
  return { reason: isRetryablePgError(err) || describeConnectionError(err, url) ? reason : 'readiness check failed', detail };
}

/**
 * What the database lacks for this build, or undefined when it has it all: our migrations applied
 * and unedited, pg-boss's schema installed, and the projection tables of this release's versions
 * of the documents built (shared/src/sync/shapes.ts: while the workers build a new version, the
 * previous release serves). Up to three statements on the caller's pool.
 */
export async function schemaNotReady(pool: pg.Pool, migrator: Migrator): Promise<NotReady | undefined> {
  const states = await migrator.statusOn(pool);
  try {
    assertMigrationsCurrent(states);
  } catch (err) {
    const behind = states.every((s) => s.state === 'applied' || s.state === 'pending');
    return { reason: behind ? 'migrations pending' : 'migrations do not match this build', detail: (err as Error).message };
  }
  if (!(await queueSchemaInstalled(pool))) {
    return { reason: 'migrations pending', detail: 'the pg-boss schema is not installed (run `npm run migrate`)' };
  }
  const pending = await pendingShapes(pool);
  if (pending.some((p) => p.state === 'missing')) return { reason: 'migrations pending', detail: pending.map(describePending).join('; ') };
  if (pending.length) return { reason: 'projections building', detail: pending.map(describePending).join('; ') };
  return undefined;
}

/** How often a waiting API looks again whether its database has been migrated. */
export const SCHEMA_RETRY_MS = 2000;

/**
 * The part of the API's start that needs the database's schema: pg-boss (which checks its own
 * schema when it starts). Against a database not migrated yet, or whose projection tables for this
 * release are still being built, the API starts all the same (its /health answers, /ready says
 * "migrations pending" or "projections building" and GraphQL answers 503), and this gate looks
 * again every SCHEMA_RETRY_MS until they are there, then starts pg-boss: no restart needed (the
 * Kubernetes migrate Job may run after the API's pods have started). Once open, it says every
 * ANNOUNCE_EVERY_MS that this release runs.
 *
 * A database that cannot be reached at all at start (refused, unknown host, wrong password, no such
 * database) is not waited for: `open` throws, saying what happened, and the process exits.
 */
export class SchemaGate {
  private started = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private announcing: NodeJS.Timeout | undefined;
  private waitingFor: string | undefined;
  private waitingOn: NotReadyReason | undefined;

  constructor(private readonly deps: { pool: pg.Pool; boss: PgBoss; migrator: Migrator; url: string; logger: Logger; retryMs?: number }) {}

  /** pg-boss started: the API can serve GraphQL. */
  get open(): boolean {
    return this.started;
  }

  /** What the API waits for while it is not open (for its 503 answers). */
  get waitingReason(): string {
    return this.waitingOn === 'projections building'
      ? 'The API is waiting for the workers to build its projection tables (a new version of the documents). Try again shortly.'
      : 'The API is waiting for its database to be migrated. Try again shortly.';
  }

  /** The first try, at start: resolves once started, or once waiting for the migrations. */
  async start(): Promise<void> {
    try {
      await this.deps.pool.query('SELECT 1');
    } catch (err) {
      const described = describeConnectionError(err, this.deps.url);
      throw new Error(described ? `cannot use DATABASE_URL: ${described}` : `the database does not answer: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (await this.tryStart()) return;
    this.deps.logger.warn(
      { reason: this.waitingFor },
      this.waitingOn === 'projections building'
        ? `the workers are building this release's projection tables (${this.waitingFor}): ` +
            `GraphQL and /ready answer 503 until they are done; looking again every ${this.retryMs / 1000} s`
        : `the database is not migrated yet (${this.waitingFor}): ` +
            `GraphQL and /ready answer 503 until \`npm run migrate\` has run on it; looking again every ${this.retryMs / 1000} s`,
    );
    this.schedule();
  }

  /** Stops looking; stops pg-boss if it was started. */
  async close(options: { timeoutMs: number; graceful: boolean }): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.announcing);
    await this.deps.boss.stop({ graceful: options.graceful, close: true, timeout: options.timeoutMs });
  }

  private get retryMs(): number {
    return this.deps.retryMs ?? SCHEMA_RETRY_MS;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.tryStart().then(
        (started) => {
          if (started) this.deps.logger.info('the database is ready for this release: pg-boss started, the API serves GraphQL');
          else if (!this.closed) this.schedule();
        },
        (err: unknown) => {
          // The database went away meanwhile, or pg-boss refused: said once per change, then retried.
          const detail = describeConnectionError(err, this.deps.url) ?? (err as Error).message;
          if (detail !== this.waitingFor) this.deps.logger.warn({ err }, `still waiting for the database: ${detail}`);
          this.waitingFor = detail;
          if (!this.closed) this.schedule();
        },
      );
    }, this.retryMs);
  }

  /**
   * Starts pg-boss unless migrations are pending (false, and why in waitingFor). A history that
   * does not match this build (an edited or unknown migration) does not hold the start back, as
   * it never did: /ready reports it.
   */
  private async tryStart(): Promise<boolean> {
    if (this.closed) return false;
    const missing = await schemaNotReady(this.deps.pool, this.deps.migrator);
    if (missing?.reason === 'migrations pending' || missing?.reason === 'projections building') {
      this.waitingFor = missing.detail;
      this.waitingOn = missing.reason;
      return false;
    }
    try {
      await this.deps.boss.start();
    } catch (err) {
      const described = describeConnectionError(err, this.deps.url);
      throw new Error(`pg-boss could not start: ${described ?? (err as Error).message}`, { cause: err });
    }
    if (this.closed) {
      await this.deps.boss.stop({ graceful: false, close: true });
      return false;
    }
    this.started = true;
    this.announce();
    this.announcing = setInterval(() => this.announce(), ANNOUNCE_EVERY_MS);
    this.announcing.unref();
    return true;
  }

  /**
   * Says that a process of this release runs: the workers of another release running beside it
   * follow what this API writes INLINE into this release's tables (shared/src/sync/shapes.ts).
   */
  private announce(): void {
    announceShapes(this.deps.pool).catch((err: unknown) =>
      this.deps.logger.warn({ err }, 'could not announce the versions of the documents this release runs'),
    );
  }
}
