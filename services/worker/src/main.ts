// First: tracing must be set up before the modules it instruments are loaded.
import { tracing } from './instrument';
import { backoffMs, ConfigError, createLogger, EXIT, portInUseMessage } from '@blog/shared';
import { readWorkerEnv, workerConfigFromEnv } from './env';
import { startHealthServer } from './health';
import { createWorker } from './worker';

/**
 * The worker process: `node services/worker/dist/main.js` (or `npm start -w @blog/worker`).
 * Exits 0 after a graceful stop (SIGTERM/SIGINT), 1 when the shutdown timeout forced it to abandon
 * a batch or on a fatal error, 2 on invalid configuration.
 */
const TRACE_FLUSH_MS = 2000;

async function main(): Promise<void> {
  let env;
  try {
    env = readWorkerEnv();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const config = workerConfigFromEnv(env);
  const logger = createLogger(config.name, env.LOG_LEVEL.toLowerCase());
  tracing.reportTo(logger);
  const worker = createWorker(config, { logger });
  const health = await startHealthServer(
    worker,
    config.healthPort,
    logger,
    config.operatorToken ? { operatorToken: config.operatorToken } : {},
  ).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // A second worker next to `npm start` (whose worker holds 8001): a configuration problem, said in one line.
    process.stderr.write(`blog-worker: ${portInUseMessage(config.healthPort, 'WORKER_HEALTH_PORT')}\n`);
    process.exit(EXIT.usage);
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutdown requested');
    // A last resort if something hangs past the timeout (the worker's own stop honours it).
    setTimeout(() => {
      logger.error('shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + 5000).unref();
    void worker
      .stop()
      .then(async ({ clean }) => {
        await health.close();
        // Buffered spans are flushed, for at most TRACE_FLUSH_MS (a collector may be unreachable).
        await Promise.race([tracing.shutdown().catch(() => undefined), new Promise((r) => setTimeout(r, TRACE_FLUSH_MS).unref())]);
        process.exit(clean ? 0 : 1);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  // The database may not be up yet (compose starts everything at once): keep trying.
  for (let attempt = 1; !stopping; attempt++) {
    try {
      await worker.start();
      return;
    } catch (err) {
      const waitMs = backoffMs(attempt, 500, 30_000);
      logger.error({ err, attempt, retryInMs: waitMs }, 'could not start the worker; retrying');
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`worker failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
