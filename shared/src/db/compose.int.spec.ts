import { testPool } from '../../test/helpers';
import { composeStatement } from './compose';

describe('composeStatement', () => {
  const pool = testPool(1);
  afterAll(() => pool.end());

  it("numbers each part's parameters after the parts before it, and runs as one statement", async () => {
    const statement = composeStatement(
      [
        { ctes: [['a', 'SELECT $1::int AS x, $2::text AS y']], values: [1, 'one'] },
        {
          ctes: [
            ['b', 'SELECT $1::int AS x'],
            ['c', 'SELECT x + $2::int AS x FROM b'],
          ],
          values: [10, 5],
        },
      ],
      { sql: 'SELECT a.x, a.y, b.x AS bx, c.x AS cx, $1::text AS z FROM a, b, c', values: ['main'] },
    );
    expect(statement.values).toEqual([1, 'one', 10, 5, 'main']);
    expect(statement.text).toContain('c AS (SELECT x + $4::int AS x FROM b)');
    const { rows } = await pool.query(statement.text, statement.values);
    expect(rows).toEqual([{ x: 1, y: 'one', bx: 10, cx: 15, z: 'main' }]);
  });

  it('gives one shape the same text each time, and parts whose parameters differ in number their own', () => {
    const part = (values: unknown[]) => ({ ctes: [['a', 'SELECT $1::int AS x']] as [string, string][], values });
    const main = { sql: 'SELECT x, $1::int AS y FROM a', values: [2] };
    const first = composeStatement([part([1])], main);
    const again = composeStatement([part([7])], main);
    expect(again.text).toBe(first.text);
    expect(again.values).toEqual([7, 2]);
    // The same texts and as many values in all, shared out differently: each part's parameters
    // follow the values of the parts before it.
    const w = (values: unknown[]) => ({ ctes: [['w', 'SELECT $1::int']] as [string, string][], values });
    const wider = composeStatement([w([1, 2]), part([3])], main);
    const narrower = composeStatement([w([1]), part([3, 4])], main);
    expect(wider.text).toContain('a AS (SELECT $3::int AS x)');
    expect(narrower.text).toContain('a AS (SELECT $2::int AS x)');
    expect(wider.text.replace('$3::int AS x', '$2::int AS x')).toBe(narrower.text);
  });

  it('writes nothing when a later part fails: the statement is applied whole or not at all', async () => {
    await pool.query('CREATE TABLE compose_probe (n int NOT NULL)');
    const statement = composeStatement(
      [
        { ctes: [['first', 'INSERT INTO compose_probe (n) VALUES ($1) RETURNING n']], values: [1] },
        { ctes: [['second', 'INSERT INTO compose_probe (n) VALUES ($1) RETURNING n']], values: [null] },
      ],
      { sql: 'SELECT 1', values: [] },
    );
    await expect(pool.query(statement.text, statement.values)).rejects.toMatchObject({ code: '23502' });
    expect((await pool.query('SELECT count(*)::int AS n FROM compose_probe')).rows[0].n).toBe(0);
    await pool.query('DROP TABLE compose_probe');
  });
});
