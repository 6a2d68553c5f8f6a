// First: tracing must be set up before the modules it instruments are loaded.
import { tracing } from './instrument';
import { ConfigError, createLogger, reportReady } from '@blog/shared';
import { createApp, type ApiApp } from './app';
import { loadConfig, type ApiConfig } from './env';
import { PersistedListError } from './limits/persisted';

/**
 * The API process: reads its configuration once, starts, prints where it is, and shuts down
 * gracefully on SIGINT/SIGTERM (a second signal changes nothing; the shutdown timeout force-exits).
 */
const logger = createLogger('blog-api');
tracing.reportTo(logger);
const TRACE_FLUSH_MS = 2000;

/** Exits once the log lines are out (stdout may be a pipe, written asynchronously). */
function exit(code: number): void {
  // Spans still buffered are flushed, for at most TRACE_FLUSH_MS (a collector may be unreachable).
  void Promise.race([tracing.shutdown().catch(() => undefined), new Promise((r) => setTimeout(r, TRACE_FLUSH_MS).unref())]).finally(() =>
    logger.flush(() => process.exit(code)),
  );
}

async function main(): Promise<void> {
  let config: ApiConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`blog-api: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }

  const state: { app?: ApiApp } = {};
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.info({ signal }, 'already shutting down');
      return;
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    void (state.app?.close() ?? Promise.resolve()).then(
      () => {
        logger.info('stopped');
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  const app = await createApp(config, { logger, tracing: tracing.enabled });
  state.app = app;
  if (stopping) {
    await app.close();
    return;
  }
  logger.info(
    { url: `${app.url}/graphql`, defaultSyncMode: config.defaultSyncMode, authMode: config.auth.mode },
    `API ready at ${app.url}/graphql (GraphiQL in a browser; /health, /ready, /metrics)`,
  );
  // To `npm start`, when it started this process: it prints the URL (the real port when PORT=0).
  reportReady('api', app.url);
}

main().catch((err: unknown) => {
  if (err instanceof PersistedListError) {
    // Found while starting, before any connection: a configuration problem, said in one line.
    process.stderr.write(`blog-api: ${err.message}\n`);
    exit(2);
    return;
  }
  logger.error({ err }, `the API failed to start: ${err instanceof Error ? err.message : String(err)}`);
  exit(1);
});
