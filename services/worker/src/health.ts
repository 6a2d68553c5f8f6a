import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OPERATOR_UNAUTHORIZED, operatorTokenMatches, type Logger } from '@blog/shared';
import type { ProjectionWorker } from './worker';

export interface HealthServer {
  /** The port it listens on (the real one when 0 was asked for). */
  port: number;
  close(): Promise<void>;
}

/**
 * GET /health: 200 while the worker runs and its database answers, 503 when it is starting,
 * stopping, or the database has been unreachable for longer than WORKER_UNHEALTHY_AFTER_MS.
 * GET /ready: the same, and 503 while the worker builds this release's projection tables (it
 * takes sync jobs once they are built; `building` in the body says how far it is). The
 * body is the worker's status either way ({ status, lastBatchAt, jobsCompleted, ... }); its last
 * error (`lastError`) only with `Authorization: Bearer <OPERATOR_TOKEN>`.
 * GET /metrics: the worker's Prometheus metrics; with an operator token (OPERATOR_TOKEN), only
 * for `Authorization: Bearer <token>` (401 otherwise). /health stays open.
 */
export function startHealthServer(
  worker: ProjectionWorker,
  port: number,
  logger: Logger,
  options: { operatorToken?: string } = {},
): Promise<HealthServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/metrics') {
      if (options.operatorToken && !operatorTokenMatches(req.headers.authorization, options.operatorToken)) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
        res.end(OPERATOR_UNAUTHORIZED);
        return;
      }
      // Prometheus exposition format.
      worker.metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': worker.metrics.registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          logger.error({ err }, 'metrics failed');
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: 'metrics unavailable' }));
        },
      );
      return;
    }
    if (req.method !== 'GET' || (path !== '/health' && path !== '/ready')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'not found; try GET /health, GET /ready or GET /metrics' }));
      return;
    }
    // /ready also waits for this release's projection tables to be built (status.building).
    const healthy = path === '/ready' ? worker.ready() : worker.healthy();
    // The last error's text may name internal addresses (connect ECONNREFUSED 10.0.0.5:5432): it is
    // in the log, and here only for callers with the operator token.
    const { lastError, ...status } = worker.status();
    const operator = options.operatorToken !== undefined && operatorTokenMatches(req.headers.authorization, options.operatorToken);
    res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ healthy, ...status, ...(operator ? { lastError } : {}) }));
  });
  // Health checks are short; do not let a keep-alive connection hold shutdown up.
  server.keepAliveTimeout = 1000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      const actual = (server.address() as AddressInfo).port;
      logger.info({ port: actual }, 'health endpoint listening (GET /health)');
      resolve({
        port: actual,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
