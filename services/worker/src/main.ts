import http from 'node:http';
import { createLogger, createPool, intVar, parseEnv } from '@blog/shared';
import { z } from 'zod';

// Placeholder until the projection worker lands: connects and answers /health.
const env = parseEnv(z.object({ WORKER_HEALTH_PORT: intVar(8001, 0, 65535), DATABASE_URL: z.string({ error: 'is required' }) }));
const logger = createLogger('blog-worker');
const pool = createPool(env.DATABASE_URL, { applicationName: 'blog-worker', max: 2 });
const server = http.createServer((req, res) => {
  res.writeHead(req.url === '/health' ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify(req.url === '/health' ? { status: 'ok' } : { error: 'not found' }));
});
server.listen(env.WORKER_HEALTH_PORT, () => logger.info({ port: env.WORKER_HEALTH_PORT }, 'worker health listening'));
const shutdown = () => {
  server.close(() => void pool.end().then(() => process.exit(0)));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
