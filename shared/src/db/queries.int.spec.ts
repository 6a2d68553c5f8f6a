import { testDatabaseUrl } from '../../test/helpers';
import { createPool } from './pool';

/**
 * The one wrapper of `query` on our pools (queries.ts): every statement is reported to
 * onStatement, and with `prepare` a parameterized statement without a name of its own becomes a
 * named prepared statement (one name per text, the same on every connection).
 */
describe('the query wrapper', () => {
  test('prepare names parameterized statements once per text; others run as they are; onStatement sees every one', async () => {
    const seen: string[] = [];
    const pool = createPool(testDatabaseUrl(), { applicationName: 'blog-test', max: 1, prepare: true, onStatement: (t) => seen.push(t) });
    try {
      const byId = 'SELECT $1::int + 1 AS n';
      expect((await pool.query<{ n: number }>(byId, [1])).rows).toEqual([{ n: 2 }]);
      expect((await pool.query<{ n: number }>({ text: byId, values: [2] })).rows).toEqual([{ n: 3 }]);
      await pool.query({ name: 'own_name', text: 'SELECT $1::text AS s', values: ['x'] });
      await pool.query({ name: '', text: 'SELECT $1::text AS unnamed', values: ['y'] });
      await pool.query('SELECT 1 AS plain');
      const { rows } = await pool.query<{ name: string; statement: string }>(
        'SELECT name, statement FROM pg_prepared_statements ORDER BY name',
      );
      // The catalog query itself has no parameters: not named either.
      expect(rows).toEqual([
        { name: 'blog_auto_1', statement: byId },
        { name: 'own_name', statement: 'SELECT $1::text AS s' },
      ]);
      expect(seen).toEqual([
        byId,
        byId,
        'SELECT $1::text AS s',
        'SELECT $1::text AS unnamed',
        'SELECT 1 AS plain',
        'SELECT name, statement FROM pg_prepared_statements ORDER BY name',
      ]);
    } finally {
      await pool.end();
    }
  });

  test('without prepare nothing is named', async () => {
    const pool = createPool(testDatabaseUrl(), { applicationName: 'blog-test', max: 1 });
    try {
      await pool.query('SELECT $1::int AS n', [1]);
      expect((await pool.query('SELECT name FROM pg_prepared_statements')).rows).toEqual([]);
    } finally {
      await pool.end();
    }
  });
});
