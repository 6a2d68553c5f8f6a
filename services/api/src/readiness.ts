import {
  assertMigrationsCurrent,
  describeConnectionError,
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
  | 'starting'
  | 'readiness check failed';

/** A failure of a readiness query as a NotReady: the database away, or something else. */
export function notReadyFrom(err: unknown, url: string, reason: NotReadyReason = 'database unavailable'): NotReady {
  const detail = describeConnectionError(err, url) ?? (err instanceof Error ? err.message : String(err));
  return { reason: isRetryablePgError(err) || describeConnectionError(err, url) ? reason : 'readiness check failed', detail };
}

/**
 * What the database lacks for this build, or undefined when it has it all: our migrations applied
 * and unedited, and pg-boss's schema installed. One or two statements on the caller's pool.
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
  return undefined;
}

/** How often a waiting API looks again whether its database has been migrated. */
export const SCHEMA_RETRY_MS = 2000;

/**
 * The part of the API's start that needs the database's schema: pg-boss (which checks its own
 * schema when it starts). Against a database not migrated yet, the API starts all the same (its
 * /health answers, /ready says "migrations pending" and GraphQL answers 503), and this gate looks
 * again every SCHEMA_RETRY_MS until the migrations have run, then starts pg-boss: no restart needed
 * (the Kubernetes migrate Job may run after the API's pods have started).
 *
 * A database that cannot be reached at all at start (refused, unknown host, wrong password, no such
 * database) is not waited for: `open` throws, saying what happened, and the process exits.
 */
export class SchemaGate {
  private started = false;
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private waitingFor: string | undefined;

  constructor(
    private readonly deps: { pool: pg.Pool; boss: PgBoss; migrator: Migrator; url: string; logger: Logger; retryMs?: number },
  ) {}

  /** pg-boss started: the API can serve GraphQL. */
  get open(): boolean {
    return this.started;
  }

  /** The first try, at start: resolves once started, or once waiting for the migrations. */
  async start(): Promise<void> {
    try {
      await this.deps.pool.query('SELECT 1');
    } catch (err) {
      const described = describeConnectionError(err, this.deps.url);
      throw new Error(described ? `cannot use DATABASE_URL: ${described}` : `the database does not answer: ${(err as Error).message}`, { cause: err });
    }
    if (await this.tryStart()) return;
    this.deps.logger.warn(
      { reason: this.waitingFor },
      `the database is not migrated yet (${this.waitingFor}): GraphQL and /ready answer 503 until \`npm run migrate\` has run on it; looking again every ${this.retryMs / 1000} s`,
    );
    this.schedule();
  }

  /** Stops looking; stops pg-boss if it was started. */
  async close(options: { timeoutMs: number; graceful: boolean }): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.deps.boss.stop({ graceful: options.graceful, close: true, timeout: options.timeoutMs });
  }

  private get retryMs(): number {
    return this.deps.retryMs ?? SCHEMA_RETRY_MS;
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      void this.tryStart().then(
        (started) => {
          if (started) this.deps.logger.info('the database has been migrated: pg-boss started, the API serves GraphQL');
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
    if (missing?.reason === 'migrations pending') {
      this.waitingFor = missing.detail;
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
    return true;
  }
}
