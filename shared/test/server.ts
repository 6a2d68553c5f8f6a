import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgres } from '../src/db/embedded';
import { repoRoot, rootFallbackDataDir } from '../src/db/paths';

/**
 * Which PostgreSQL server the tests use, in order: DATABASE_URL; a server answering on
 * 127.0.0.1:5432 as `postgres`; else an embedded one started for this run.
 */
export async function resolveTestServer(): Promise<{ adminUrl: string; embedded?: EmbeddedPostgres }> {
  if (process.env.DATABASE_URL) return { adminUrl: process.env.DATABASE_URL };
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (await answers(local)) return { adminUrl: local };
  const embedded = new EmbeddedPostgres({
    dataDir: path.join(repoRoot, '.data', 'test-postgres'),
    fallbackDataDir: rootFallbackDataDir('test-postgres'),
    port: Number(process.env.TEST_EMBEDDED_PG_PORT ?? 55433),
    password: 'postgres',
  });
  try {
    await embedded.start();
  } catch (err) {
    throw new Error(
      'Tests need PostgreSQL and none was found: DATABASE_URL is unset, nothing answers on 127.0.0.1:5432, ' +
        `and the embedded server could not start (${(err as Error).message}). ` +
        'Start PostgreSQL (for example: pg_ctlcluster 15 main start) or set DATABASE_URL=postgres://user@host:port/postgres.',
      { cause: err },
    );
  }
  return { adminUrl: embedded.url('postgres'), embedded };
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
