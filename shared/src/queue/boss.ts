import { PgBoss } from 'pg-boss';
import { QUEUE_SCHEMA } from './install';

export interface BossOptions {
  url: string;
  applicationName: string;
  /** Connections in pg-boss's own pool. */
  max?: number;
  /**
   * Producers (the API) set false: they only enqueue; queue maintenance (expiring, archiving,
   * dead-lettering) is the worker's job.
   */
  maintenance: boolean;
  /** Hold a LISTEN connection so notify-enabled queues wake workers at once (workers only). */
  listen?: boolean;
  /**
   * Seconds between maintenance passes (maintenance instances only): how soon the jobs of a worker
   * that died are noticed (heartbeat lost) and retried. pg-boss's default is 60.
   */
  superviseIntervalSeconds?: number;
  /** Name in pg-boss's instance registry. */
  instanceName?: string;
}

/** A pg-boss instance configured for this project. Call start() before use and stop() after. */
export function createBoss(options: BossOptions): PgBoss {
  return new PgBoss({
    connectionString: options.url,
    schema: QUEUE_SCHEMA,
    application_name: options.applicationName,
    max: options.max ?? 4,
    // The schema is created by `migrate up` (installQueueSchema); services never migrate it.
    migrate: false,
    createSchema: false,
    supervise: options.maintenance,
    schedule: false,
    useListenNotify: options.listen ?? false,
    ...(options.superviseIntervalSeconds
      ? { superviseIntervalSeconds: options.superviseIntervalSeconds, monitorIntervalSeconds: options.superviseIntervalSeconds }
      : {}),
    ...(options.instanceName ? { instanceName: options.instanceName } : {}),
    // Tracing across the queue: pg-boss stores the trace context of the span that enqueues a job
    // (the mutation's), and the span of the batch that processes it links back to it. Free until an
    // OpenTelemetry SDK is registered (see shared/src/telemetry/tracing.ts).
    openTelemetry: { propagateContext: true },
  });
}
