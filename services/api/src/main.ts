import express from 'express';
import { createLogger, createPool, intVar, Migrator, defaultMigrationsDir, parseEnv } from '@blog/shared';
import { z } from 'zod';

// Placeholder until the GraphQL API lands: answers /health and /ready.
const env = parseEnv(z.object({ PORT: intVar(8000, 1, 65535), DATABASE_URL: z.string({ error: 'is required' }) }));
const logger = createLogger('blog-api');
const pool = createPool(env.DATABASE_URL, { applicationName: 'blog-api', max: 4 });
const app = express();
app.get('/health', (_req, res) => {
  res.json({ status: 'ok' });
});
app.get('/ready', async (_req, res) => {
  try {
    await pool.query('SELECT 1');
    await new Migrator(env.DATABASE_URL, { dir: defaultMigrationsDir }).check();
    res.json({ status: 'ready' });
  } catch (err) {
    res.status(503).json({ status: 'unavailable', reason: (err as Error).message });
  }
});
const server = app.listen(env.PORT, () => logger.info({ port: env.PORT }, 'api listening'));
const shutdown = () => {
  server.close(() => void pool.end().then(() => process.exit(0)));
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
