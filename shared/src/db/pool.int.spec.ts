import { testDatabaseUrl, testPool } from '../../test/helpers';
import { isRetryablePgError } from './errors';
import { connectClient, createPool, isPipelined, sendWithCommit, withTransaction } from './pool';

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

/**
 * withTransaction({ genericPlans: true }): prepared statements in the transaction use a generic
 * plan (planned once per connection), and the setting ends with the transaction, committed or not.
 */
test('generic plans for one transaction only, committed or rolled back', async () => {
  const pool = testPool(1);
  try {
    const mode = async (client: { query: (text: string) => Promise<{ rows: { plan_cache_mode: string }[] }> }) =>
      (await client.query('SHOW plan_cache_mode')).rows[0]!.plan_cache_mode;
    const statement = { name: 'pool_spec_by_id', text: 'SELECT count(*)::int AS n FROM pg_class WHERE oid = ANY($1::oid[])' };
    const inside = await withTransaction(
      pool,
      async (client) => {
        for (let i = 0; i < 3; i += 1) await client.query({ ...statement, values: [[1259, 1247]] });
        const { rows } = await client.query<{ generic_plans: number; custom_plans: number }>(
          'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1',
          [statement.name],
        );
        return { mode: await mode(client), plans: rows[0] };
      },
      { genericPlans: true },
    );
    expect(inside).toEqual({ mode: 'force_generic_plan', plans: { generic_plans: 3, custom_plans: 0 } });
    expect(await mode(pool)).toBe('auto');
    await expect(
      withTransaction(
        pool,
        async () => {
          throw new Error('rolled back');
        },
        { genericPlans: true },
      ),
    ).rejects.toThrow('rolled back');
    expect(await mode(pool)).toBe('auto');
    expect(await withTransaction(pool, (client) => mode(client))).toBe('auto');
  } finally {
    await pool.end();
  }
});

/**
 * Pipeline mode (createPool's default): a statement handed to sendWithCommit() is sent with the
 * COMMIT, in the same write. It commits with the transaction when it succeeds; when it fails, the
 * transaction is rolled back whole (PostgreSQL answers that COMMIT with ROLLBACK, not an error) and
 * withTransaction raises the statement's own error.
 */
describe('sendWithCommit', () => {
  const table = 'pool_spec_settle';
  let pool: ReturnType<typeof testPool>;
  beforeAll(async () => {
    pool = testPool(2);
    await pool.query(`CREATE TABLE ${table} (n int PRIMARY KEY)`);
  });
  afterAll(() => pool.end());
  const stored = async () => (await pool.query<{ n: number }>(`SELECT n FROM ${table} ORDER BY n`)).rows.map((r) => r.n);

  test('a statement sent with the COMMIT commits with the transaction, and is sent only then', async () => {
    let sentAt = '';
    const handedOver = await withTransaction(pool, async (client) => {
      expect(isPipelined(client)).toBe(true);
      await client.query(`INSERT INTO ${table} VALUES (1)`);
      const kept = sendWithCommit(client, () => {
        sentAt = 'with the commit';
        return client.query(`INSERT INTO ${table} VALUES ($1)`, [2]);
      });
      expect(sentAt).toBe('');
      return kept;
    });
    expect(handedOver).toBe(true);
    expect(sentAt).toBe('with the commit');
    expect(await stored()).toEqual([1, 2]);
  });

  test('a failing one rolls the whole transaction back and its error is raised', async () => {
    await expect(
      withTransaction(pool, async (client) => {
        await client.query(`INSERT INTO ${table} VALUES (10)`);
        // Duplicate key: fails only once PostgreSQL runs it, right before the COMMIT.
        sendWithCommit(client, () => client.query(`INSERT INTO ${table} VALUES ($1)`, [1]));
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await stored()).toEqual([1, 2]);
    // The connection is clean for the next transaction.
    await withTransaction(pool, (client) => client.query(`INSERT INTO ${table} VALUES (3)`));
    expect(await stored()).toEqual([1, 2, 3]);
  });

  test('a failure after the hand-over rolls back, and the statement is never sent', async () => {
    let sent = false;
    await expect(
      withTransaction(pool, async (client) => {
        sendWithCommit(client, () => {
          sent = true;
          return client.query(`INSERT INTO ${table} VALUES ($1)`, [20]);
        });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(sent).toBe(false);
    expect(await stored()).toEqual([1, 2, 3]);
  });

  test('outside withTransaction, or without pipelining, the caller sends and awaits the statement itself', async () => {
    const client = await pool.connect();
    try {
      expect(sendWithCommit(client, () => Promise.resolve())).toBe(false);
    } finally {
      client.release();
    }
    const plain = createPool(testDatabaseUrl(), { applicationName: 'blog-test', max: 1, pipeline: false });
    try {
      const handedOver = await withTransaction(plain, async (client) => {
        expect(isPipelined(client)).toBe(false);
        return sendWithCommit(client, () => client.query(`INSERT INTO ${table} VALUES (4)`));
      });
      expect(handedOver).toBe(false);
    } finally {
      await plain.end();
    }
    expect(await stored()).toEqual([1, 2, 3]);
  });
});
