import { testDatabaseUrl, testPool, watchSocketWrites } from '../../test/helpers';
import { isRetryablePgError } from './errors';
import { commitNow, connectClient, createPool, GENERIC_PLANS, inTransaction, isPipelined, withTransaction } from './pool';

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
 * node-postgres decodes the server's messages inside the socket's 'data' event; a message it cannot
 * decode (here a value longer than Node's largest string, 0x1fffffe8 characters) used to throw
 * there, an uncaught exception that ended the process. The pools' sockets (GuardedSocket) turn it
 * into the failure of the statement; the connection is replaced.
 */
test('an answer node-postgres cannot decode fails its statement, not the process; the pool carries on', async () => {
  const pool = testPool(2);
  try {
    const failure = await pool.query("SELECT repeat(repeat('x', 1000000), 600) AS x").then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(failure?.message).toMatch(
      /^Could not read the database's answer \(Cannot create a string longer than 0x1fffffe8 characters\); the connection was closed\.$/,
    );
    expect((await pool.query<{ ok: number }>('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  } finally {
    await pool.end();
  }
}, 120_000);

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
 * withTransaction({ settings: GENERIC_PLANS }): prepared statements in the transaction use a generic
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
      { settings: GENERIC_PLANS },
    );
    expect(inside).toEqual({ mode: 'force_generic_plan', plans: { generic_plans: 3, custom_plans: 0 } });
    expect(await mode(pool)).toBe('auto');
    await expect(
      withTransaction(
        pool,
        async () => {
          throw new Error('rolled back');
        },
        { settings: GENERIC_PLANS },
      ),
    ).rejects.toThrow('rolled back');
    expect(await mode(pool)).toBe('auto');
    expect(await withTransaction(pool, (client) => mode(client))).toBe('auto');
  } finally {
    await pool.end();
  }
});

test(
  "transaction settings are the code's words: anything else is refused before BEGIN is sent, " + 'and the connection stays usable',
  async () => {
    const pool = testPool(1);
    const client = await pool.connect();
    try {
      await expect(inTransaction(client, async () => 1, { settings: { work_mem: "'64MB'; DROP TABLE x" } })).rejects.toThrow(
        /not a transaction setting: work_mem/,
      );
      expect(
        await inTransaction(
          client,
          async () => (await client.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]!.s,
          {
            settings: { synchronous_commit: 'off' },
          },
        ),
      ).toBe('off');
      expect((await client.query<{ s: string }>("SELECT current_setting('synchronous_commit') AS s")).rows[0]!.s).toBe('on');
    } finally {
      client.release();
      await pool.end();
    }
  },
);

/**
 * Pipeline mode (createPool's default): a withTransaction() callback may send COMMIT itself, right
 * behind the statements it sent, without waiting for their answers (commitNow). When one of them
 * fails, PostgreSQL answers that COMMIT with ROLLBACK (not an error): nothing is written and
 * withTransaction raises the statement's own error.
 */
describe('commitNow', () => {
  const table = 'pool_spec_commit_now';
  let pool: ReturnType<typeof testPool>;
  beforeAll(async () => {
    pool = testPool(2);
    await pool.query(`CREATE TABLE ${table} (n int PRIMARY KEY)`);
  });
  afterAll(() => pool.end());
  const stored = async () => (await pool.query<{ n: number }>(`SELECT n FROM ${table} ORDER BY n`)).rows.map((r) => r.n);

  test('COMMIT goes out behind statements not yet answered, and commits them', async () => {
    const order: string[] = [];
    const committedEarly = await withTransaction(pool, async (client) => {
      expect(isPipelined(client)).toBe(true);
      const insert = client.query(`INSERT INTO ${table} VALUES ($1), ($2) RETURNING n`, [1, 2]).then((r) => {
        order.push('insert answered');
        return r;
      });
      const sent = commitNow(client);
      order.push('commit sent');
      expect((await insert).rows).toEqual([{ n: 1 }, { n: 2 }]);
      return sent;
    });
    expect(committedEarly).toBe(true);
    expect(order).toEqual(['commit sent', 'insert answered']);
    expect(await stored()).toEqual([1, 2]);
  });

  test('a statement that fails before the early COMMIT rolls the whole transaction back, with its own error', async () => {
    await expect(
      withTransaction(pool, async (client) => {
        await client.query(`INSERT INTO ${table} VALUES (10)`);
        const duplicate = client.query(`INSERT INTO ${table} VALUES ($1)`, [1]); // fails once PostgreSQL runs it
        commitNow(client);
        await duplicate;
      }),
    ).rejects.toThrow(/duplicate key/);
    expect(await stored()).toEqual([1, 2]);
    // The connection is clean for the next transaction.
    await withTransaction(pool, (client) => client.query(`INSERT INTO ${table} VALUES (3)`));
    expect(await stored()).toEqual([1, 2, 3]);
  });

  test('a failure the callback did not wait for still fails the transaction: its COMMIT was a ROLLBACK', async () => {
    await expect(
      withTransaction(pool, async (client) => {
        client.query(`INSERT INTO ${table} VALUES ($1)`, [1]).catch(() => undefined);
        commitNow(client);
      }),
    ).rejects.toThrow(/rolled back at COMMIT/);
    expect(await stored()).toEqual([1, 2, 3]);
  });

  test('outside withTransaction, or without pipelining, nothing is sent and the transaction commits as usual', async () => {
    const client = await pool.connect();
    try {
      expect(commitNow(client)).toBe(false);
    } finally {
      client.release();
    }
    const plain = createPool(testDatabaseUrl(), { applicationName: 'blog-test', max: 1, pipeline: false });
    try {
      const committedEarly = await withTransaction(plain, async (client) => {
        expect(isPipelined(client)).toBe(false);
        await client.query(`INSERT INTO ${table} VALUES (4)`);
        return commitNow(client);
      });
      expect(committedEarly).toBe(false);
    } finally {
      await plain.end();
    }
    expect(await stored()).toEqual([1, 2, 3, 4]);
  });
});

describe('beginWithFirstStatement', () => {
  const table = 'pool_spec_begin_early';
  let pool: ReturnType<typeof testPool>;
  beforeAll(async () => {
    pool = testPool(1);
    await pool.query(`CREATE TABLE ${table} (n int PRIMARY KEY)`);
  });
  afterAll(() => pool.end());
  const stored = async () => (await pool.query<{ n: number }>(`SELECT n FROM ${table} ORDER BY n`)).rows.map((r) => r.n);

  /** The socket writes of the pool's one connection while `run` runs. */
  async function writesDuring(run: () => Promise<unknown>): Promise<number> {
    const client = await pool.connect(); // opened before counting
    client.release();
    const watch = watchSocketWrites();
    await run();
    return watch.writes;
  }

  test('BEGIN, the statements sent before the first wait and an early COMMIT leave in one write', async () => {
    const writes = await writesDuring(() =>
      withTransaction(
        pool,
        async (client) => {
          const insert = client.query(`INSERT INTO ${table} VALUES ($1), ($2)`, [1, 2]);
          commitNow(client);
          await insert;
        },
        { beginWithFirstStatement: true },
      ),
    );
    expect({ writes, stored: await stored() }).toEqual({ writes: 1, stored: [1, 2] });
    // Waiting for an answer ends the turn: two statements with a wait between them are two writes, then COMMIT.
    const waited = await writesDuring(() =>
      withTransaction(
        pool,
        async (client) => {
          await client.query(`INSERT INTO ${table} VALUES ($1)`, [3]);
          await client.query(`INSERT INTO ${table} VALUES ($1)`, [4]);
        },
        { beginWithFirstStatement: true },
      ),
    );
    expect({ waited, stored: await stored() }).toEqual({ waited: 3, stored: [1, 2, 3, 4] });
  });

  const abortedBegin =
    'a BEGIN that fails (a connection left in an aborted transaction): its error, and what was sent behind it is not written';
  test(abortedBegin, async () => {
    const client = await pool.connect();
    await client.query('BEGIN');
    await client.query('SELECT 1/0').catch(() => undefined);
    client.release(); // aborted, as a buggy caller might leave it
    await expect(
      withTransaction(pool, async (c) => void (await c.query(`INSERT INTO ${table} VALUES ($1)`, [5])), { beginWithFirstStatement: true }),
    ).rejects.toMatchObject({ code: '25P02' });
    expect(await stored()).toEqual([1, 2, 3, 4]);
    // The ROLLBACK after the failure left the connection usable.
    await withTransaction(pool, async (c) => void (await c.query(`INSERT INTO ${table} VALUES ($1)`, [5])), {
      beginWithFirstStatement: true,
    });
    expect(await stored()).toEqual([1, 2, 3, 4, 5]);
  });

  const together =
    'statements sent together, each its own result; a failing one gets its error, the ones behind it 25P02, nothing is written';
  test(together, async () => {
    const named = { name: 'pool_spec_batch_insert', text: `INSERT INTO ${table} VALUES ($1) RETURNING n` };
    const client = await pool.connect(); // opened before counting
    client.release();
    const writes = watchSocketWrites();
    const rows = await withTransaction(
      pool,
      async (c) => {
        const results = [
          c.query<{ n: number }>({ ...named, values: [6] }),
          c.query<{ n: number; m: string }>({ text: 'SELECT $1::int AS n, $2::text AS m', values: [8, 'eight'] }),
          c.query<{ n: number }>({ ...named, values: [7] }), // the name's second use, while its Parse is in flight
          c.query<{ n: number }>({ text: `SELECT n FROM ${table} WHERE n = ANY($1::int[]) ORDER BY n`, values: [[6, 7]] }),
        ];
        commitNow(c);
        return (await Promise.all(results)).map((r) => r.rows);
      },
      { beginWithFirstStatement: true },
    );
    expect({ rows, writes: writes.writes }).toEqual({
      rows: [[{ n: 6 }], [{ n: 8, m: 'eight' }], [{ n: 7 }], [{ n: 6 }, { n: 7 }]],
      writes: 1,
    });

    writes.writes = 0;
    const outcomes: PromiseSettledResult<unknown>[] = [];
    await expect(
      withTransaction(
        pool,
        async (c) => {
          const sent = [c.query({ ...named, values: [9] }), c.query('SELECT 1 / $1::int', [0]), c.query({ ...named, values: [10] })];
          commitNow(c);
          outcomes.push(...(await Promise.allSettled(sent)));
          await Promise.all(sent);
        },
        { beginWithFirstStatement: true },
      ),
    ).rejects.toMatchObject({ code: '22012' });
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : (o.reason as { code?: string }).code))).toEqual(['ok', '22012', '25P02']);
    // The transaction in one write, then the ROLLBACK.
    expect(writes.writes).toBe(2);
    expect(await stored()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  test('a value node-postgres cannot serialize fails its statement, and the transaction writes nothing', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await withTransaction(
      pool,
      async (c) => void (await c.query({ name: 'pool_spec_batch_json', text: 'SELECT $1::jsonb AS j', values: [{}] })),
      {
        beginWithFirstStatement: true,
      },
    );
    await expect(
      withTransaction(
        pool,
        async (c) => {
          const first = c.query(`INSERT INTO ${table} VALUES ($1)`, [11]);
          const bad = c.query({ name: 'pool_spec_batch_json', text: 'SELECT $1::jsonb AS j', values: [circular] });
          await Promise.all([first, bad]);
        },
        { beginWithFirstStatement: true },
      ),
    ).rejects.toThrow(/circular/i);
    expect(await stored()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});
