import { enumVar, intVar, optionalString, parseEnv, unsetIfEmpty } from '@blog/shared';
import { z } from 'zod';

/**
 * The worker's configuration, read and validated once at start-up (services/worker/README.md
 * documents every variable).
 */
export const workerEnvSchema = z.object({
  DATABASE_URL: z
    .string({ error: 'is required (postgres://user:password@host:port/database)' })
    .refine((v) => /^postgres(ql)?:\/\//.test(v), { error: 'must be a postgres:// or postgresql:// URL' }),
  // Jobs per batch. Each job is one write's plan; a batch of 100 becomes one sync per entity type.
  WORKER_BATCH_SIZE: intVar(100, 1, 10_000),
  // Batches this process runs at once, each on its own connection.
  WORKER_CONCURRENCY: intVar(1, 1, 64),
  // How often an idle worker looks for due jobs (QUEUED ones, DEFERRED ones coming due, retries)
  // and relays the sync outbox to pg-boss.
  WORKER_POLL_INTERVAL_MS: intVar(50, 10, 60_000),
  // SIGTERM/SIGINT: how long the batch in hand gets to finish before the process gives up on it.
  WORKER_SHUTDOWN_TIMEOUT_MS: intVar(10_000, 100, 600_000),
  // Seconds between pg-boss maintenance passes: how soon the jobs of a worker that died are retried.
  WORKER_SUPERVISE_INTERVAL_SECONDS: intVar(10, 1, 3600),
  // How long lag samples are kept (the API reports the last 24 h).
  WORKER_LAG_RETENTION_HOURS: intVar(48, 1, 24 * 365),
  // Days the event log keeps an event; 0 keeps them for ever.
  EVENT_RETENTION_DAYS: intVar(90, 0, 36_500),
  WORKER_HEALTH_PORT: intVar(8001, 0, 65535),
  // /health answers 503 once the database has been unreachable this long.
  WORKER_UNHEALTHY_AFTER_MS: intVar(30_000, 1000, 3_600_000),
  // Name in pg_stat_activity and in pg-boss's instance registry (default: blog-worker).
  WORKER_NAME: optionalString(),
  // When set, GET /metrics on the health port needs `Authorization: Bearer <OPERATOR_TOKEN>`.
  OPERATOR_TOKEN: z.preprocess(unsetIfEmpty, z.string().min(16, { error: 'must be at least 16 characters' }).optional()),
  LOG_LEVEL: enumVar(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], 'info'),
});

export type WorkerEnv = z.infer<typeof workerEnvSchema>;

export interface WorkerConfig {
  databaseUrl: string;
  batchSize: number;
  concurrency: number;
  pollIntervalMs: number;
  shutdownTimeoutMs: number;
  superviseIntervalSeconds: number;
  lagRetentionHours: number;
  /** Events older than this many days are deleted; 0: never. */
  eventRetentionDays: number;
  healthPort: number;
  unhealthyAfterMs: number;
  name: string;
  /** Bearer token required by GET /metrics, when set. */
  operatorToken?: string;
}

export function readWorkerEnv(env: Record<string, string | undefined> = process.env): WorkerEnv {
  return parseEnv(workerEnvSchema, env);
}

export function workerConfigFromEnv(env: WorkerEnv): WorkerConfig {
  return {
    databaseUrl: env.DATABASE_URL,
    batchSize: env.WORKER_BATCH_SIZE,
    concurrency: env.WORKER_CONCURRENCY,
    pollIntervalMs: env.WORKER_POLL_INTERVAL_MS,
    shutdownTimeoutMs: env.WORKER_SHUTDOWN_TIMEOUT_MS,
    superviseIntervalSeconds: env.WORKER_SUPERVISE_INTERVAL_SECONDS,
    lagRetentionHours: env.WORKER_LAG_RETENTION_HOURS,
    eventRetentionDays: env.EVENT_RETENTION_DAYS,
    healthPort: env.WORKER_HEALTH_PORT,
    unhealthyAfterMs: env.WORKER_UNHEALTHY_AFTER_MS,
    name: env.WORKER_NAME ?? 'blog-worker',
    ...(env.OPERATOR_TOKEN ? { operatorToken: env.OPERATOR_TOKEN } : {}),
  };
}
