import pg from 'pg';
import { testDatabaseUrl } from '@blog/shared/test/helpers';
import { PgCountingProxy } from './pg-proxy';

/**
 * The counting proxy against a real PostgreSQL: every protocol path a system under test uses
 * (simple queries with one or several statements, unnamed and named extended-protocol statements,
 * transactions, errors) is counted exactly, and captured statements replay as they were sent.
 */
describe('PgCountingProxy', () => {
  let proxy: PgCountingProxy;
  let client: pg.Client;

  beforeAll(async () => {
    const url = new URL(testDatabaseUrl());
    proxy = new PgCountingProxy(url.hostname, Number(url.port || 5432));
    await proxy.listen();
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    client = new pg.Client({ connectionString: url.toString(), application_name: 'proxy-test' });
    await client.connect();
  });

  afterAll(async () => {
    await client.end();
    await proxy.close();
  });

  test('a simple query is one statement and one round trip', async () => {
    proxy.reset();
    await client.query('SELECT 1');
    expect(proxy.snapshot()).toEqual({ statements: 1, errors: 0, roundTrips: 1, byApplication: { 'proxy-test': 1 } });
  });

  test('several statements in one simple query are counted one by one', async () => {
    proxy.reset();
    await client.query('SELECT 1; SELECT 2; SELECT 3');
    expect(proxy.snapshot()).toMatchObject({ statements: 3, roundTrips: 1 });
  });

  test('parameterized and prepared statements are counted per execution and captured with their parameters', async () => {
    proxy.reset({ capture: true });
    await client.query('SELECT $1::int + 1 AS n', [41]);
    for (let i = 0; i < 3; i++) {
      await client.query({ name: 'proxy_test_named', text: 'SELECT $1::text || $2::text AS s', values: ['a', i === 1 ? null : String(i)] });
    }
    expect(proxy.snapshot()).toMatchObject({ statements: 4, roundTrips: 4, errors: 0 });
    // The named statement is parsed once, bound three times: each execution is captured with its text.
    expect(proxy.capturedStatements()).toEqual([
      { application: 'proxy-test', text: 'SELECT $1::int + 1 AS n', params: ['41'] },
      { application: 'proxy-test', text: 'SELECT $1::text || $2::text AS s', params: ['a', '0'] },
      { application: 'proxy-test', text: 'SELECT $1::text || $2::text AS s', params: ['a', null] },
      { application: 'proxy-test', text: 'SELECT $1::text || $2::text AS s', params: ['a', '2'] },
    ]);
  });

  test('BEGIN and COMMIT are statements; a failing statement is an error, not a statement', async () => {
    await client.query('CREATE TEMP TABLE proxy_t (n int PRIMARY KEY)');
    proxy.reset();
    await client.query('BEGIN');
    await client.query('INSERT INTO proxy_t SELECT generate_series(1, 3)');
    await client.query('COMMIT');
    await expect(client.query('INSERT INTO proxy_t VALUES (1)')).rejects.toThrow(/duplicate key/);
    expect(proxy.snapshot()).toMatchObject({ statements: 3, errors: 1, roundTrips: 4 });
  });

  test('large results and many rows pass through unchanged', async () => {
    proxy.reset();
    const { rows } = await client.query<{ s: string }>("SELECT repeat('x', 1000000) AS s FROM generate_series(1, 3)");
    expect(rows.map((r) => r.s.length)).toEqual([1_000_000, 1_000_000, 1_000_000]);
    expect(proxy.snapshot().statements).toBe(1);
  });

  test('a pool of connections through the proxy is counted as a whole', async () => {
    const url = new URL(testDatabaseUrl());
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    const pool = new pg.Pool({ connectionString: url.toString(), max: 4, application_name: 'proxy-pool' });
    try {
      await Promise.all(Array.from({ length: 8 }, () => pool.query('SELECT 1')));
      proxy.reset();
      await Promise.all(Array.from({ length: 20 }, (_, i) => pool.query('SELECT $1::int', [i])));
      expect(proxy.snapshot()).toMatchObject({ statements: 20, roundTrips: 20, byApplication: { 'proxy-pool': 20 } });
    } finally {
      await pool.end();
    }
  });
});
