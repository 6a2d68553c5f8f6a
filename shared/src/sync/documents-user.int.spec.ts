import type pg from 'pg';
import { insertComments, insertPosts, insertUsers } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { SyncEngine } from './engine';
import { FEW_IDS } from './scope';
import { entityOf } from '../model';
import { documentsSql } from './documents';

describe('user projection', () => {
  let pool: pg.Pool;
  let sync: SyncEngine;
  beforeAll(() => {
    pool = testPool();
    sync = new SyncEngine(pool);
  });
  afterAll(() => pool.end());

  it('has exactly the documented keys and values', async () => {
    const [u, other] = await insertUsers(pool, 2);
    await pool.query("UPDATE tb_user SET bio = 'Writes about databases', created_at = '2024-05-01T08:00:00.123Z', updated_at = '2024-05-02T09:30:00.456Z' WHERE id = $1", [u!.id]);
    const published = await insertPosts(pool, [u!.id], 2, { published: true });
    await insertPosts(pool, [u!.id], 1, { published: false });
    // three comments by u (authors rotate: the factory gives comment i to authors[(i+1) % n])
    await insertComments(pool, published, [other!.id, u!.id], 6);
    await sync.users([u!.id]);
    const { rows } = await pool.query('SELECT data, created_at FROM tv_user WHERE id = $1', [u!.id]);
    expect(rows[0].data).toEqual({
      id: u!.id,
      email: u!.email,
      username: u!.username,
      fullName: u!.fullName,
      bio: 'Writes about databases',
      createdAt: '2024-05-01T08:00:00.123Z',
      updatedAt: '2024-05-02T09:30:00.456Z',
      postCount: 3,
      publishedPostCount: 2,
      commentCount: 3,
    });
    expect(rows[0].created_at.toISOString()).toBe('2024-05-01T08:00:00.123Z');
  });

  it('a user with no posts and no comments has zero counts and a null bio', async () => {
    const [u] = await insertUsers(pool, 1);
    const preview = await sync.preview('user', [u!.id]);
    expect(preview.get(u!.id)).toMatchObject({ bio: null, postCount: 0, publishedPostCount: 0, commentCount: 0 });
    expect(Object.keys(preview.get(u!.id)!).sort()).toEqual(
      ['bio', 'commentCount', 'createdAt', 'email', 'fullName', 'id', 'postCount', 'publishedPostCount', 'updatedAt', 'username'].sort(),
    );
  });

  it('counts the same per user (a few ids) as grouped (many ids), and a batch past FEW_IDS gets the same documents', async () => {
    const users = await insertUsers(pool, FEW_IDS + 8);
    const ids = users.map((u) => u.id);
    const posts = await insertPosts(pool, ids, 120, { published: true });
    await insertPosts(pool, ids.slice(0, 5), 15, { published: false });
    await insertComments(pool, posts, ids, 300);
    const documents = async (scope: 'few' | 'ids' | 'all') => {
      const { rows } = await pool.query<{ id: string; data: Record<string, unknown> }>(
        `SELECT id, data FROM (${documentsSql(entityOf('user'), scope)}) d${scope === 'all' ? ' WHERE id = ANY($1::uuid[])' : ''} ORDER BY id`,
        [ids],
      );
      return rows;
    };
    const few = await documents('few');
    expect(few).toHaveLength(ids.length);
    expect(few.some((r) => Number(r.data.postCount) > 0 && Number(r.data.commentCount) > 0)).toBe(true);
    expect(await documents('ids')).toEqual(few);
    expect(await documents('all')).toEqual(few);
    // Through the engine: a batch larger than FEW_IDS is written with the grouped form.
    await sync.users(ids);
    const { rows } = await pool.query<{ id: string; data: Record<string, unknown> }>('SELECT id, data FROM tv_user WHERE id = ANY($1::uuid[]) ORDER BY id', [ids]);
    expect(rows).toEqual(few);
  });
});
