import type pg from 'pg';
import { testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { planSync } from '../sync/dependencies';
import { SyncEngine } from '../sync/engine';
import { applyCountChanges } from '../sync/kept-counts';
import { keptCount } from '../../test/factory';
import { SEED_COMMENTS, SEED_POSTS, SEED_USERS } from './data';
import { isEmpty, seed } from './run';

/** Everything the seed could touch, as comparable text. */
async function snapshot(pool: pg.Pool): Promise<string> {
  const tables = ['tb_user', 'tb_post', 'tb_comment', 'tv_user', 'tv_post', 'tv_comment'];
  const parts = [];
  for (const t of tables) {
    const { rows } = await pool.query(`SELECT to_jsonb(x) AS r FROM ${t} x ORDER BY id`);
    parts.push(JSON.stringify(rows));
  }
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM sync_log');
  parts.push(String(rows[0].n));
  return parts.join('\n');
}

describe('seed', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = testPool();
  });
  afterAll(() => pool.end());

  it('inserts the fixed users, posts and comments and their projections, once', async () => {
    expect(await isEmpty(pool)).toBe(true);
    const first = await seed(pool);
    expect(first.users.sort()).toEqual(SEED_USERS.map((u) => u.id).sort());
    expect(first.posts.sort()).toEqual(SEED_POSTS.map((p) => p.id).sort());
    expect(first.comments.sort()).toEqual(SEED_COMMENTS.map((c) => c.id).sort());
    expect(await isEmpty(pool)).toBe(false);

    const { rows } = await pool.query(
      "SELECT data->>'username' AS username, s.published_post_count AS published, s.comment_count AS comments " +
        "FROM tv_user JOIN tb_user_stats s ON s.user_id = id ORDER BY data->>'username'",
    );
    expect(rows).toEqual([
      { username: 'alice', published: 2, comments: 1 },
      { username: 'bob', published: 1, comments: 1 },
      { username: 'charlie', published: 0, comments: 2 },
    ]);
    const titles = await pool.query(
      "SELECT data->>'title' AS title, s.comment_count AS n FROM tv_post JOIN tb_post_stats s ON s.post_id = id ORDER BY created_at",
    );
    expect(titles.rows).toEqual([
      { title: 'Getting Started with FraiseQL', n: 2 },
      { title: 'Why CQRS Matters', n: 1 },
      { title: 'Explicit Sync vs Triggers', n: 1 },
    ]);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  });

  it('changes nothing when run a second time', async () => {
    const before = await snapshot(pool);
    const again = await seed(pool);
    expect(again).toEqual({ users: [], posts: [], comments: [] });
    expect(await snapshot(pool)).toBe(before);
  });

  it('keeps the counts right when it puts back a comment deleted since, by a user that exists, on a post that exists', async () => {
    const bob = SEED_USERS[1].id;
    const sample = SEED_COMMENTS.find((c) => c.authorId === bob)!;
    const sync = new SyncEngine(pool);
    // As the API's commands do: the row, the kept count and the sync in one transaction.
    const command = (sql: string, params: unknown[], comments: number, changed: string, post: string) =>
      withTransaction(pool, async (c) => {
        await c.query(sql, params);
        await applyCountChanges(c, [
          { type: 'user', id: bob, counts: { commentCount: comments } },
          { type: 'post', id: post, counts: { commentCount: comments } },
        ]);
        await sync.refreshIn(c, await planSync(c, { comment: [changed] }));
      });
    const added = '00000000-0000-0000-00ee-000000000001';
    await command(
      "INSERT INTO tb_comment (id, post_id, author_id, content) VALUES ($1, $2, $3, 'One more')",
      [added, SEED_POSTS[0].id, bob],
      1,
      added,
      SEED_POSTS[0].id,
    );
    await command('DELETE FROM tb_comment WHERE id = $1', [sample.id], -1, sample.id, sample.postId);
    const onSamplePost = await keptCount(pool, 'post', 'commentCount', sample.postId);
    const kept = async () =>
      (await pool.query<{ n: number }>('SELECT comment_count AS n FROM tb_user_stats WHERE user_id = $1', [bob])).rows[0]!.n;
    expect(await kept()).toBe(1);

    expect(await seed(pool)).toEqual({ users: [], posts: [], comments: [sample.id] });
    expect(await kept()).toBe(2);
    expect(await keptCount(pool, 'user', 'commentCount', bob)).toBe(2);
    // The post it is put back on is recounted too.
    expect(await keptCount(pool, 'post', 'commentCount', sample.postId)).toBe(onSamplePost + 1);
    expect((await sync.verify()).total).toBe(0);
  });
});
