import type pg from 'pg';
import { insertComments, insertPosts, insertUsers, keptCount } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { SyncEngine } from './engine';
import { applyCountChanges, createKeptCounts, recountKeptCounts, wrongKeptCounts, type CountChange } from './kept-counts';

/**
 * applyCountChanges has two statements: one update by key for a single user (most commands) and a
 * grouped, locking one for several. Both must add the same way and keep the same bounds: no count
 * below zero, no more published posts than posts.
 */
describe('applyCountChanges', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = testPool(2);
  });
  afterAll(() => pool.end());

  async function withCounts(counts: [number, number, number][]): Promise<string[]> {
    const users = await insertUsers(pool, counts.length);
    await pool.query(
      `INSERT INTO tb_user_stats (user_id, post_count, published_post_count, comment_count)
       SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[])`,
      [users.map((u) => u.id), counts.map((c) => c[0]), counts.map((c) => c[1]), counts.map((c) => c[2])],
    );
    return users.map((u) => u.id);
  }

  async function kept(ids: string[]): Promise<[number, number, number][]> {
    const { rows } = await pool.query<{ p: number; pp: number; c: number }>(
      `SELECT post_count AS p, published_post_count AS pp, comment_count AS c
         FROM unnest($1::uuid[]) WITH ORDINALITY AS i(id, n) JOIN tb_user_stats ON user_id = i.id ORDER BY i.n`,
      [ids],
    );
    return rows.map((r) => [r.p, r.pp, r.c]);
  }

  // [before, change, after] for one user: a plain addition, and changes past the bounds.
  const cases: [[number, number, number], CountChange['counts'], [number, number, number]][] = [
    [[3, 2, 5], { postCount: 1, publishedPostCount: 1, commentCount: 2 }, [4, 3, 7]],
    [[0, 0, 0], { postCount: -1, publishedPostCount: -1, commentCount: -1 }, [0, 0, 0]],
    [[2, 2, 1], { postCount: -1 }, [1, 1, 1]],
    [[1, 0, 0], { publishedPostCount: 3 }, [1, 1, 0]],
  ];

  test.each(cases)('one user: %j %j -> %j', async (before, change, after) => {
    const [id] = await withCounts([before]);
    await applyCountChanges(pool, [{ type: 'user', id: id!, counts: change }]);
    expect(await kept([id!])).toEqual([after]);
  });

  test('several users (and one user twice) in one statement, with the same bounds', async () => {
    const ids = await withCounts(cases.map((c) => c[0]));
    const changes = cases.map((c, i) => ({ type: 'user' as const, id: ids[i]!, counts: c[1] }));
    // The first user's change split in two: the grouped statement adds them up.
    await applyCountChanges(pool, [
      ...changes.slice(1),
      { type: 'user', id: ids[0]!, counts: { postCount: 1, publishedPostCount: 1 } },
      { type: 'user', id: ids[0]!, counts: { commentCount: 2 } },
    ]);
    expect(await kept(ids)).toEqual(cases.map((c) => c[2]));
  });

  test('nothing is sent for changes that change nothing', () => {
    expect(
      applyCountChanges(pool, [
        { type: 'user', id: '00000000-0000-0000-0000-000000000000', counts: {} },
        { type: 'post', id: 'x', counts: { commentCount: 0 } },
      ]),
    ).toBeUndefined();
    expect(() => applyCountChanges(pool, [{ type: 'user', id: 'x', counts: { karma: 1 } }])).toThrow('karma is not a kept count of user');
    expect(() => applyCountChanges(pool, [{ type: 'comment', id: 'x', counts: { likes: 1 } }])).toThrow('comment keeps no counts');
  });
});

describe('kept counts as reads see them (keptCountSql)', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = testPool(2);
  });
  afterAll(() => pool.end());

  it("a post's comment count: its counts row when it has one, else its comments counted in tv_comment", async () => {
    const [u] = await insertUsers(pool, 1);
    const [post] = await insertPosts(pool, [u!.id], 1);
    await insertComments(pool, [post!], [u!.id], 3);
    // No projection yet and no counts row: nothing counted.
    expect(await keptCount(pool, 'post', 'commentCount', post!)).toBe(0);
    // The post's sync reaches its comments (they embed its title): now they are in tv_comment.
    await new SyncEngine(pool).syncChanges({ post: [post!] });
    expect(await keptCount(pool, 'post', 'commentCount', post!)).toBe(3);
    await createKeptCounts(pool, 'post', [post!]);
    await applyCountChanges(pool, [{ type: 'post', id: post!, counts: { commentCount: 2 } }]);
    expect(await keptCount(pool, 'post', 'commentCount', post!)).toBe(5);
    // verify's check finds the row that differs from the rows; a recount sets it back.
    const { rows } = await pool.query<{ id: string }>(wrongKeptCounts('post'));
    expect(rows.map((r) => r.id)).toContain(post);
    await withTransaction(pool, (client) => recountKeptCounts(client, 'post', [post!]));
    expect(await keptCount(pool, 'post', 'commentCount', post!)).toBe(3);
  });
});
