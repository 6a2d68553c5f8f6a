import { testDatabaseUrl, testPool } from '../../test/helpers';
import { isRetryablePgError } from './errors';
import { connectClient } from './pool';

/**
 * A connection the server drops while the client is lent out of the pool (a transaction between
 * two statements; a server restart or a network cut) must not crash the process: pg-pool listens
 * for errors only on idle clients. The error surfaces as a retryable failure of the next statement,
 * the dead connection is discarded on release, and the pool carries on.
 */
test('a checked-out client whose connection is terminated: no crash, a retryable error, the pool carries on', async () => {
  const pool = testPool(3);
  const admin = testPool(1);
  try {
    const client = await pool.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    // Give the termination time to reach the idle client (it emits 'error' then).
    await new Promise((r) => setTimeout(r, 300));
    const failure = await client.query('SELECT 1').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(Error);
    expect(isRetryablePgError(failure)).toBe(true);
    client.release();
    expect((await pool.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  } finally {
    await admin.end();
    await pool.end();
  }
});

/**
 * The single connections of migrations, roles and database creation (the API's /ready runs a
 * migration check on every probe, so a database restart can end one at any moment): a connection
 * the server ends while the client waits between two statements must not crash the process.
 */
test('a single connection (connectClient) ended by the server: no crash, the next statement fails', async () => {
  const admin = testPool(1);
  const client = await connectClient({ connectionString: testDatabaseUrl(), application_name: 'blog-connect-client-test' });
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
    // Without a listener, the 'error' event the client emits now is an uncaught exception.
    await new Promise((r) => setTimeout(r, 300));
    await expect(client.query('SELECT 1')).rejects.toThrow(/terminat|not queryable/i);
  } finally {
    await client.end().catch(() => undefined);
    await admin.end();
  }
});
