import { z } from 'zod';
import { intVar, optionalPgUrl, optionalString, parseEnv } from '../config/env';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';
import { EmbeddedPostgres } from './embedded';
import { defaultEmbeddedDataDir, rootFallbackDataDir } from './paths';
import { connectClient } from './pool';

export const databaseEnvSchema = z.object({
  DATABASE_URL: optionalPgUrl(),
  EMBEDDED_PG_DIR: optionalString(),
  EMBEDDED_PG_PORT: intVar(55432, 1, 65535),
  EMBEDDED_PG_PASSWORD: optionalString(),
  EMBEDDED_PG_DATABASE: optionalString(),
});

export type DatabaseConfig = z.infer<typeof databaseEnvSchema>;

export function readDatabaseConfig(env: Record<string, string | undefined> = process.env): DatabaseConfig {
  return parseEnv(databaseEnvSchema, env);
}

export interface OpenedDatabase {
  /** Where to connect: DATABASE_URL, or the embedded server's URL. */
  url: string;
  /** The embedded server, when one was started (or reused) for this process. */
  embedded?: EmbeddedPostgres;
  /** Stops the embedded server if this process started it. */
  close(): Promise<void>;
}

/**
 * Connects to DATABASE_URL when given; otherwise starts the embedded PostgreSQL. Either way the
 * database named in the URL is created when it does not exist yet.
 */
export async function openDatabase(config: DatabaseConfig, logger: Logger = silentLogger): Promise<OpenedDatabase> {
  if (config.DATABASE_URL) {
    await ensureDatabaseExists(config.DATABASE_URL, logger);
    return { url: config.DATABASE_URL, close: async () => undefined };
  }
  const embedded = new EmbeddedPostgres({
    dataDir: config.EMBEDDED_PG_DIR ?? defaultEmbeddedDataDir,
    // A folder the user chose is used or refused, never swapped for another.
    ...(config.EMBEDDED_PG_DIR ? {} : { fallbackDataDir: rootFallbackDataDir('postgres') }),
    port: config.EMBEDDED_PG_PORT,
    password: config.EMBEDDED_PG_PASSWORD ?? 'postgres',
    logger,
  });
  await embedded.start();
  const url = embedded.url(config.EMBEDDED_PG_DATABASE ?? 'blog');
  try {
    await ensureDatabaseExists(url, logger);
  } catch (err) {
    await embedded.stop().catch(() => undefined);
    throw err;
  }
  return { url, embedded, close: () => embedded.stop() };
}

/** The same URL pointing at another database on the same server. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export function databaseName(url: string): string {
  return decodeURIComponent(new URL(url).pathname.replace(/^\//, '')) || 'postgres';
}

/** Creates the URL's database when missing (connecting to the server's `postgres` database). */
export async function ensureDatabaseExists(url: string, logger: Logger = silentLogger): Promise<void> {
  const name = databaseName(url);
  const admin = await connectClient({ connectionString: withDatabase(url, 'postgres') });
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (rowCount) return;
    try {
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
      logger.info({ database: name }, 'database created');
    } catch (err) {
      // 42P04 duplicate_database: another process created it at the same moment.
      if ((err as { code?: string }).code !== '42P04') throw err;
    }
  } finally {
    await admin.end();
  }
}
