#!/usr/bin/env node
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { z } from 'zod';
import { boolVar, intVar, parseEnv } from '../config/env';
import { openDatabase, readDatabaseConfig, type OpenedDatabase } from '../db/database';
import { repoRoot } from '../db/paths';
import { prepareDatabase } from '../db/prepare';
import { createLogger } from '../log/logger';
import { EXIT, runCli } from './run';

/**
 * `npm start`: the whole service on one machine. Brings up the database (embedded unless
 * DATABASE_URL is set), migrates, seeds an empty database, then runs the API and the worker as
 * separate processes and prints where the API is. Ctrl-C (or SIGTERM) stops the services first and
 * the database last.
 */
const startEnv = z.object({
  PORT: intVar(8000, 1, 65535),
  WORKER_HEALTH_PORT: intVar(8001, 0, 65535),
  SEED_WHEN_EMPTY: boolVar(true),
  // How long the services get to finish in-flight work after Ctrl-C before they are killed.
  SHUTDOWN_TIMEOUT_MS: intVar(15_000, 100, 600_000),
  // How long the API may take to answer /health after it was spawned.
  STARTUP_TIMEOUT_MS: intVar(60_000, 1000, 600_000),
});

const SERVICES = [
  { name: 'api', main: path.join(repoRoot, 'services', 'api', 'dist', 'main.js') },
  { name: 'worker', main: path.join(repoRoot, 'services', 'worker', 'dist', 'main.js') },
] as const;

runCli(async () => {
  const env = parseEnv(startEnv);
  const dbConfig = readDatabaseConfig();
  const logger = createLogger('blog-start');
  const children = new Map<string, ChildProcess>();
  const state: { db?: OpenedDatabase } = {};
  let stopping: Promise<number> | undefined;

  const stop = (code: number): Promise<number> => {
    stopping ??= (async () => {
      logger.info('stopping');
      await Promise.all([...children.values()].map((child) => terminate(child, env.SHUTDOWN_TIMEOUT_MS)));
      await state.db?.close();
      return code;
    })();
    return stopping;
  };
  const done = new Promise<number>((resolve) => {
    process.on('SIGINT', () => void stop(EXIT.ok).then(resolve));
    process.on('SIGTERM', () => void stop(EXIT.ok).then(resolve));
  });

  const db = await openDatabase(dbConfig, logger);
  state.db = db;
  if (stopping) return done;
  await prepareDatabase(db.url, { seedWhenEmpty: env.SEED_WHEN_EMPTY, logger });
  if (stopping) return done;

  for (const service of SERVICES) {
    const child = spawn(process.execPath, [service.main], {
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: db.url, PORT: String(env.PORT), WORKER_HEALTH_PORT: String(env.WORKER_HEALTH_PORT) },
    });
    children.set(service.name, child);
    child.on('exit', (code, signal) => {
      children.delete(service.name);
      if (!stopping) {
        logger.error({ service: service.name, code, signal }, 'service exited unexpectedly; stopping the rest');
        void stop(EXIT.failure).then((c) => process.exit(c));
      }
    });
  }

  const ready = await waitForHealth(`http://127.0.0.1:${env.PORT}/health`, env.STARTUP_TIMEOUT_MS, () => Boolean(stopping));
  if (stopping) return done;
  if (!ready) {
    logger.error(`the API did not answer /health within ${env.STARTUP_TIMEOUT_MS} ms`);
    return stop(EXIT.failure);
  }
  process.stdout.write(`API ready at http://localhost:${env.PORT}/graphql (Ctrl-C stops everything)\n`);
  return done;
});

async function waitForHealth(url: string, timeoutMs: number, cancelled: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cancelled()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** SIGTERM, then SIGKILL if the process has not exited within the timeout. */
function terminate(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
