import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import pino, { type Logger } from 'pino';
import { withDatabase } from '../src/db/database';
import { createPool, GuardedSocket } from '../src/db/pool';

/** This test file's own database (created by the test environment from the migrated template). */
export function testDatabaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url || !process.env.BLOG_TEST_DATABASE) {
    throw new Error('No test database: run tests through jest with the shared test environment.');
  }
  return url;
}

/** A pool on this file's database; end it in afterAll (the environment fails files that don't). */
export function testPool(max = 5): pg.Pool {
  return createPool(testDatabaseUrl(), { applicationName: 'blog-test', max });
}

/**
 * An extra, empty database on the test server (not from the template), for tests of migrations.
 * Named like the environment's databases so that a crashed run's leftovers are cleaned up.
 */
export async function createEmptyDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = process.env.BLOG_TEST_ADMIN_URL;
  if (!adminUrl) throw new Error('BLOG_TEST_ADMIN_URL unset: the test harness global setup did not run.');
  const name = `blog_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdminClient(adminUrl, (c) => c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`));
  return {
    url: withDatabase(adminUrl, name),
    drop: () =>
      withAdminClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`)).then(() => undefined),
  };
}

async function withAdminClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'blog-test-admin' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Path of a built file; tests of command-line tools run the compiled JavaScript, as users do. */
export function builtFile(...segments: string[]): string {
  const file = path.join(__dirname, '..', '..', ...segments);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run \`npm run build\` first (npm test does it through turbo).`);
  }
  return file;
}

/**
 * Counts the writes the pools' connections (GuardedSocket) hand to the kernel from now on, each
 * one system call: statements issued in the same turn of the event loop count once. Every pool's
 * connections in the process count: watch work on one pool with nothing else running. Setting
 * `writes` (to 0) starts the count again.
 */
export function watchSocketWrites(): { writes: number } {
  let base = GuardedSocket.flushes;
  return {
    get writes() {
      return GuardedSocket.flushes - base;
    },
    set writes(value: number) {
      base = GuardedSocket.flushes - value;
    },
  };
}

export interface LogLine {
  level: number;
  msg?: string;
  [key: string]: unknown;
}

/** pino's number for each level name. */
export const LOG_LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** A logger that keeps every line it writes (parsed), for tests of what a service logs. */
export function recordingLogger(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` now. */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A port on 127.0.0.1 where nothing listens, for tests of a peer that is down. Below 1024: a
 * process asking for any free port (listen on port 0, as the tests' servers do) is given one of the
 * ephemeral range, never these, so no other test can start listening there meanwhile, as it can on
 * a port freePort found free a moment ago.
 */
export async function refusingPort(): Promise<number> {
  for (let port = 1; port < 1024; port += 1) if (!(await acceptsConnections(port))) return port;
  throw new Error('every port below 1024 of 127.0.0.1 accepts connections');
}
