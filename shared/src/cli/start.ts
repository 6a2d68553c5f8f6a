#!/usr/bin/env node
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { z } from 'zod';
import { boolVar, intVar, parseEnv } from '../config/env';
import { openDatabase, readDatabaseConfig, type OpenedDatabase } from '../db/database';
import { repoRoot } from '../db/paths';
import { prepareDatabase } from '../db/prepare';
import { createLogger } from '../log/logger';
import { assertPortFree } from '../net/free-port';
import { EXIT, isReadyMessage, runCli } from './run';

/**
 * `npm start`: the whole service on one machine. Brings up the database (embedded unless
 * DATABASE_URL is set), migrates, seeds an empty database, then runs the API and the worker as
 * separate processes and prints where the API is, once the API it started says it listens (over
 * the IPC channel: an answer on the port from another process does not count). Ctrl-C (or SIGTERM)
 * stops the services first and the database last.
 */
const startEnv = z.object({
  // 0: the API picks a free port and reports it.
  PORT: intVar(8000, 0, 65535),
  WORKER_HEALTH_PORT: intVar(8001, 0, 65535),
  SEED_WHEN_EMPTY: boolVar(true),
  // How long the services get to finish in-flight work after Ctrl-C before they are killed.
  SHUTDOWN_TIMEOUT_MS: intVar(15_000, 100, 600_000),
  // How long the API may take to listen after it was spawned.
  STARTUP_TIMEOUT_MS: intVar(60_000, 1000, 600_000),
});

const SERVICES = [
  { name: 'api', main: path.join(repoRoot, 'services', 'api', 'dist', 'main.js') },
  { name: 'worker', main: path.join(repoRoot, 'services', 'worker', 'dist', 'main.js') },
] as const;

runCli(async () => {
  const env = parseEnv(startEnv);
  const dbConfig = readDatabaseConfig();
  // Before the database starts: a port held by another process (a second `npm start`) stops us at once.
  await assertPortFree(env.PORT, 'PORT');
  await assertPortFree(env.WORKER_HEALTH_PORT, 'WORKER_HEALTH_PORT');
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
      // The IPC channel carries the API's ReadyMessage.
      stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
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

  const api = children.get('api');
  const apiUrl = api && (await waitForReady(api, env.STARTUP_TIMEOUT_MS));
  if (stopping) return done;
  if (!apiUrl) {
    logger.error(`the API did not report that it listens within ${env.STARTUP_TIMEOUT_MS} ms`);
    return stop(EXIT.failure);
  }
  // Where the database is, and a command that starts one more worker beside these (pasted as is).
  const workerMain = shellQuote(SERVICES.find((s) => s.name === 'worker')!.main);
  process.stdout.write(
    `API ready at ${apiUrl}/graphql (Ctrl-C stops everything)\n` +
      (db.embedded
        ? `DATABASE_URL=${db.url} (the embedded PostgreSQL; data in ${db.embedded.dataDir})\n` +
          `More workers (another terminal): DATABASE_URL=${shellQuote(db.url)} WORKER_HEALTH_PORT=0 node ${workerMain}\n`
        : `DATABASE_URL=${withoutPassword(db.url)} (yours)\n` +
          `More workers (another terminal): DATABASE_URL=<the same URL> WORKER_HEALTH_PORT=0 node ${workerMain}\n`),
  );
  return done;
});

/** The URL the child reports in its ReadyMessage; undefined when it exits or the time runs out first. */
function waitForReady(child: ChildProcess, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const finish = (url: string | undefined) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(url);
    };
    const onMessage = (message: unknown) => {
      if (isReadyMessage(message)) finish(message.url);
    };
    const onExit = () => finish(undefined);
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** The URL with its password replaced by `***` (a server of the user's own: not echoed). */
function withoutPassword(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/** A shell word for POSIX shells: single-quoted unless it only has safe characters. */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
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
