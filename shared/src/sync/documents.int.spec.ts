import type pg from 'pg';
import { insertComments, insertPosts, insertUsers } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { entityOf } from '../model';
import { documentsSql } from './documents';
import { SyncEngine } from './engine';
import { FEW_IDS } from './scope';

/** The documents derived from the declarations (shared/src/model), entity by entity. */
let pool: pg.Pool;
let sync: SyncEngine;
beforeAll(() => {
  pool = testPool();
  sync = new SyncEngine(pool);
});
afterAll(() => pool.end());

describe('user projection', () => {
  it('has exactly the documented keys and values', async () => {
    const [u, other] = await insertUsers(pool, 2);
    await pool.query(
      "UPDATE tb_user SET bio = 'Writes about databases', created_at = '2024-05-01T08:00:00.123Z', " +
        "updated_at = '2024-05-02T09:30:00.456Z' WHERE id = $1",
      [u!.id],
    );
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
    });
    // Its counts are kept in tb_user_stats and merged in by reads, never in the document.
    expect(rows[0].created_at.toISOString()).toBe('2024-05-01T08:00:00.123Z');
  });

  it('a user without a bio has a null bio', async () => {
    const [u] = await insertUsers(pool, 1);
    const preview = await sync.preview('user', [u!.id]);
    expect(preview.get(u!.id)).toMatchObject({ bio: null });
    expect(Object.keys(preview.get(u!.id)!).sort()).toEqual(
      ['bio', 'createdAt', 'email', 'fullName', 'id', 'updatedAt', 'username'].sort(),
    );
  });

  it('the same documents for a few ids, many ids and all rows, and a batch past FEW_IDS writes them', async () => {
    const users = await insertUsers(pool, FEW_IDS + 8);
    const ids = users.map((u) => u.id);
    const posts = await insertPosts(pool, ids, 120, { published: true });
    await insertPosts(pool, ids.slice(0, 5), 15, { published: false });
    await insertComments(pool, posts, ids, 300);
    const documents = async (scope: 'few' | 'ids' | 'all') => {
      const { rows } = await pool.query<{ id: string; data: Record<string, unknown> }>(
        `SELECT id, data FROM (${documentsSql(entityOf('user'), scope)}) d` +
          `${scope === 'all' ? ' WHERE id = ANY($1::uuid[])' : ''} ORDER BY id`,
        [ids],
      );
      return rows;
    };
    const few = await documents('few');
    expect(few).toHaveLength(ids.length);
    expect(new Set(few.map((r) => r.data.id))).toEqual(new Set(ids));
    expect(await documents('ids')).toEqual(few);
    expect(await documents('all')).toEqual(few);
    // Through the engine: a batch larger than FEW_IDS is written with the grouped form.
    await sync.users(ids);
    const { rows } = await pool.query<{ id: string; data: Record<string, unknown> }>(
      'SELECT id, data FROM tv_user WHERE id = ANY($1::uuid[]) ORDER BY id',
      [ids],
    );
    expect(rows).toEqual(few);
  });
});

describe('post projection', () => {
  it('embeds the author and the tags; its comments and their count are not in it (merged in by reads)', async () => {
    const [author, c1, c2] = await insertUsers(pool, 3);
    const [post] = await insertPosts(pool, [author!.id], 1, { published: false });
    await pool.query(
      "UPDATE tb_post SET title = 'Hello', content = 'World', created_at = '2024-03-01T10:00:00Z', " +
        "updated_at = '2024-03-01T10:00:00Z' WHERE id = $1",
      [post],
    );
    // Inserted newest first, to show the order comes from created_at, not insertion order.
    const { rows: comments } = await pool.query<{ id: string }>(
      `INSERT INTO tb_comment (post_id, author_id, content, created_at, updated_at) VALUES
         ($1, $2, 'second', '2024-03-01T12:00:00Z', '2024-03-01T12:00:00Z'),
         ($1, $3, 'first',  '2024-03-01T11:00:00.5Z', '2024-03-01T11:00:00.5Z')
       RETURNING id`,
      [post, c1!.id, c2!.id],
    );
    await sync.posts([post!]);
    const { rows } = await pool.query('SELECT data, author_id, published FROM tv_post WHERE id = $1', [post]);
    expect(rows[0]).toMatchObject({ author_id: author!.id, published: false });
    expect(rows[0].data).toEqual({
      id: post,
      title: 'Hello',
      content: 'World',
      published: false,
      createdAt: '2024-03-01T10:00:00.000Z',
      updatedAt: '2024-03-01T10:00:00.000Z',
      author: { id: author!.id, username: author!.username, fullName: author!.fullName },
      tags: [],
    });
    expect(comments).toHaveLength(2);
  });

  it('a post without tags has an empty list of them', async () => {
    const [author] = await insertUsers(pool, 1);
    const [post] = await insertPosts(pool, [author!.id], 1);
    const doc = (await sync.preview('post', [post!])).get(post!);
    expect(doc).toMatchObject({ published: true, tags: [] });
    expect(Object.keys(doc!).sort()).toEqual(['author', 'content', 'createdAt', 'id', 'published', 'tags', 'title', 'updatedAt'].sort());
  });
});

describe('comment projection', () => {
  it('embeds its author and its post (id and title)', async () => {
    const [postAuthor, commenter] = await insertUsers(pool, 2);
    const [post] = await insertPosts(pool, [postAuthor!.id], 1);
    const [comment] = await insertComments(pool, [post!], [postAuthor!.id], 1); // authored by authors[1 % 1]
    await pool.query(
      "UPDATE tb_comment SET author_id = $2, content = 'Nice post', created_at = '2024-06-01T00:00:00Z', " +
        "updated_at = '2024-06-02T00:00:00Z' WHERE id = $1",
      [comment, commenter!.id],
    );
    await sync.comments([comment!]);
    const { rows } = await pool.query('SELECT data, post_id, author_id FROM tv_comment WHERE id = $1', [comment]);
    const { rows: title } = await pool.query('SELECT title FROM tb_post WHERE id = $1', [post]);
    expect(rows[0]).toMatchObject({ post_id: post, author_id: commenter!.id });
    expect(rows[0].data).toEqual({
      id: comment,
      postId: post,
      content: 'Nice post',
      createdAt: '2024-06-01T00:00:00.000Z',
      updatedAt: '2024-06-02T00:00:00.000Z',
      author: { id: commenter!.id, username: commenter!.username, fullName: commenter!.fullName },
      post: { id: post, title: title[0].title },
    });
  });

  it('renders timestamps in UTC whatever the session time zone', async () => {
    const [u] = await insertUsers(pool, 1);
    const [post] = await insertPosts(pool, [u!.id], 1);
    const [comment] = await insertComments(pool, [post!], [u!.id], 1);
    await pool.query("UPDATE tb_comment SET created_at = '2024-06-01T00:00:00Z' WHERE id = $1", [comment]);
    const client = await pool.connect();
    try {
      await client.query("SET TIME ZONE 'Asia/Kolkata'");
      const doc = (await sync.preview('comment', [comment!], client)).get(comment!);
      expect(doc).toMatchObject({ createdAt: '2024-06-01T00:00:00.000Z' });
    } finally {
      await client.query('RESET TIME ZONE');
      client.release();
    }
  });
});
