import {
  lagPercentiles24h,
  operatorTokenMatches,
  SYNC_QUEUE,
  syncQueueDepth,
  type Logger,
  type Migrator,
  type ServiceMetrics,
} from '@blog/shared';
import express from 'express';
import type pg from 'pg';
import { notReadyFrom, schemaNotReady, type NotReady } from '../readiness';

/**
 * Operator endpoints: /health (the process is alive), /ready (the database answers, our migrations
 * are all applied and pg-boss's schema is installed, the API has finished starting, and the read
 * replica answers when one is configured; 503 otherwise), /metrics (JSON below, always from the
 * primary: the queue and the command side live there, and comparing tb_* with tv_* counts on a
 * replica would mix sync lag with replication lag).
 *
 * /ready is open to anyone (load balancers, kubelets), so its 503 says only a generic reason
 * ("database unavailable", "migrations pending"...; readiness.ts): the detail (an address, a user, a
 * file name) goes to the log, once each time it changes, and to callers with the operator token.
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
  databaseReadUrl?: string;
  migrator: Migrator;
  /** Whether the API has finished starting (pg-boss started: readiness.ts, SchemaGate). */
  started: () => boolean;
  operatorToken?: string;
  logger: Logger;
  metrics: ServiceMetrics;
}): express.Router {
  const router = express.Router();

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const readiness = async (): Promise<NotReady | undefined> => {
    try {
      await deps.pool.query('SELECT 1');
    } catch (err) {
      return notReadyFrom(err, deps.databaseUrl);
    }
    if (deps.readPool && deps.readPool !== deps.pool) {
      try {
        await deps.readPool.query('SELECT 1');
      } catch (err) {
        const problem = notReadyFrom(err, deps.databaseReadUrl ?? '', 'read replica unavailable');
        return { ...problem, detail: `the read replica (DATABASE_READ_URL) does not answer: ${problem.detail}` };
      }
    }
    try {
      const missing = await schemaNotReady(deps.pool, deps.migrator);
      if (missing) return missing;
    } catch (err) {
      return notReadyFrom(err, deps.databaseUrl);
    }
    if (!deps.started()) return { reason: 'starting', detail: 'pg-boss has not started yet' };
    return undefined;
  };

  // The last problem logged: each one is logged when it appears, not at every probe.
  let reported: string | undefined;
  router.get('/ready', async (req, res) => {
    const problem = await withTimeout(readiness(), READY_TIMEOUT_MS, {
      reason: 'database unavailable',
      detail: `the database did not answer within ${READY_TIMEOUT_MS} ms`,
    });
    const key = problem && `${problem.reason}: ${problem.detail}`;
    if (key !== reported) {
      if (problem) deps.logger.warn({ reason: problem.reason, detail: problem.detail }, `not ready: ${key}`);
      else if (reported) deps.logger.info('ready again');
      reported = key;
    }
    if (!problem) {
      res.json({ status: 'ready' });
      return;
    }
    const operator = deps.operatorToken !== undefined && operatorTokenMatches(req.headers.authorization, deps.operatorToken);
    res.status(503).json({ status: 'unavailable', reason: problem.reason, ...(operator ? { detail: problem.detail } : {}) });
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
          outbox: depth.outbox,
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

/** The promise's value, or `late` when it takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number, late: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(late), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
