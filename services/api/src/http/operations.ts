import {
  defaultMigrationsDir,
  lagPercentiles24h,
  Migrator,
  queueSchemaInstalled,
  SYNC_QUEUE,
  syncQueueDepth,
  type Logger,
  type ServiceMetrics,
} from '@blog/shared';
import express from 'express';
import type pg from 'pg';

/**
 * Operator endpoints: /health (the process is alive), /ready (the database answers, our migrations
 * are all applied and pg-boss's schema is installed, and the read replica answers when one is
 * configured; 503 otherwise), /metrics (JSON below, always from the primary: the queue and the
 * command side live there, and comparing tb_* with tv_* counts on a replica would mix sync lag
 * with replication lag).
 */
const READY_TIMEOUT_MS = 3000;

/**
 * /metrics JSON. sync_metrics_24h is the seed's shape (success_rate in percent; null averages and
 * rates when there was no sync); entity_counts are the rows of the command side and
 * projection_counts those of the query side (a difference is sync lag). The queue depth and the
 * projection lag percentiles come from the same functions the worker uses (shared/src/queue/depth.ts,
 * shared/src/sync/lag.ts).
 */
const METRICS_SQL = `
  WITH s AS (
    SELECT entity_type, duration_ms, success FROM sync_log WHERE created_at >= now() - interval '24 hours'
  )
  SELECT json_build_object(
    'sync_metrics_24h', json_build_object(
      'overall', (SELECT json_build_object(
          'total_syncs', count(*),
          'avg_duration_ms', round(avg(duration_ms)::numeric, 3),
          'success_rate', round(100.0 * count(*) FILTER (WHERE success) / nullif(count(*), 0), 2))
        FROM s),
      'by_entity', (SELECT coalesce(json_agg(json_build_object(
          'entity_type', entity_type,
          'total_syncs', total,
          'avg_duration_ms', round(avg_ms::numeric, 3),
          'max_duration_ms', round(max_ms::numeric, 3),
          'success_rate', round(100.0 * ok / total, 2),
          'failures', total - ok) ORDER BY entity_type), '[]'::json)
        FROM (SELECT entity_type, count(*) AS total, avg(duration_ms) AS avg_ms, max(duration_ms) AS max_ms,
                     count(*) FILTER (WHERE success) AS ok
                FROM s GROUP BY entity_type) g)),
    'entity_counts', json_build_object(
      'users', (SELECT count(*) FROM tb_user),
      'posts', (SELECT count(*) FROM tb_post),
      'comments', (SELECT count(*) FROM tb_comment)),
    'projection_counts', json_build_object(
      'users', (SELECT count(*) FROM tv_user),
      'posts', (SELECT count(*) FROM tv_post),
      'comments', (SELECT count(*) FROM tv_comment))
  ) AS metrics`;

export function operationsRouter(deps: {
  pool: pg.Pool;
  readPool?: pg.Pool;
  databaseUrl: string;
  logger: Logger;
  metrics: ServiceMetrics;
}): express.Router {
  const router = express.Router();
  const migrator = new Migrator(deps.databaseUrl, { dir: defaultMigrationsDir });

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/ready', async (_req, res) => {
    try {
      await withTimeout(
        (async () => {
          await deps.pool.query('SELECT 1');
          if (deps.readPool && deps.readPool !== deps.pool) {
            await deps.readPool.query('SELECT 1').catch((err: unknown) => {
              throw new Error(`the read replica (DATABASE_READ_URL) does not answer: ${err instanceof Error ? err.message : String(err)}`);
            });
          }
          await migrator.checkOn(deps.pool);
          if (!(await queueSchemaInstalled(deps.pool))) throw new Error('the pg-boss schema is not installed (run `npm run migrate`)');
        })(),
        READY_TIMEOUT_MS,
      );
      res.json({ status: 'ready' });
    } catch (err) {
      res.status(503).json({ status: 'unavailable', reason: err instanceof Error ? err.message : String(err) });
    }
  });

  router.get('/metrics', async (_req, res, next) => {
    try {
      const [{ rows }, depth, lag] = await Promise.all([
        deps.pool.query<{ metrics: Record<string, unknown> }>(METRICS_SQL),
        syncQueueDepth(deps.pool),
        lagPercentiles24h(deps.pool),
      ]);
      res.json({
        ...rows[0]!.metrics,
        queue: {
          name: SYNC_QUEUE,
          ready: depth.ready,
          scheduled: depth.scheduled,
          retrying: depth.retrying,
          active: depth.active,
          dead_letters: depth.deadLetters,
        },
        projection_lag_24h: lag,
      });
    } catch (err) {
      next(err);
    }
  });

  // Prometheus exposition format (the JSON /metrics above is the seed's and stays as it is).
  router.get('/metrics/prometheus', async (_req, res, next) => {
    try {
      const text = await deps.metrics.registry.metrics();
      res.type(deps.metrics.registry.contentType).send(text);
    } catch (err) {
      next(err);
    }
  });

  return router;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the database did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
