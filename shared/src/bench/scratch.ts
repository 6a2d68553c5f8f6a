import pg from 'pg';
import { openDatabase, readDatabaseConfig, withDatabase, type OpenedDatabase } from '../db/database';
import { prepareDatabase } from '../db/prepare';

/**
 * A throw-away database for a benchmark run, on the server DATABASE_URL points at (or the embedded
 * one): created, migrated, and dropped by `drop()`.
 */
export async function scratchDatabase(name: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const server: OpenedDatabase = await openDatabase(readDatabaseConfig());
  const dbName = `${name}_${process.pid}`;
  const adminUrl = withDatabase(server.url, 'postgres');
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  await admin(`CREATE DATABASE "${dbName}"`);
  const url = withDatabase(server.url, dbName);
  await prepareDatabase(url, { seedWhenEmpty: false });
  return {
    url,
    drop: async () => {
      await admin(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
      await server.close();
    },
  };
}
