import type pg from 'pg';
import { insertComments, insertPosts, insertUsers } from '../../../test/factory';
import { testPool } from '../../../test/helpers';
import { SyncEngine } from '../engine';

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
});
