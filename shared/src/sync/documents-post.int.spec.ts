import type pg from 'pg';
import { insertPosts, insertUsers } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { SyncEngine } from './engine';

describe('post projection', () => {
  let pool: pg.Pool;
  let sync: SyncEngine;
  beforeAll(() => {
    pool = testPool();
    sync = new SyncEngine(pool);
  });
  afterAll(() => pool.end());

  it('embeds the author and the comments, oldest first, each with its author', async () => {
    const [author, c1, c2] = await insertUsers(pool, 3);
    const [post] = await insertPosts(pool, [author!.id], 1, { published: false });
    await pool.query(
      "UPDATE tb_post SET title = 'Hello', content = 'World', created_at = '2024-03-01T10:00:00Z', updated_at = '2024-03-01T10:00:00Z' WHERE id = $1",
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
      commentCount: 2,
      comments: [
        {
          id: comments[1]!.id,
          content: 'first',
          createdAt: '2024-03-01T11:00:00.500Z',
          author: { id: c2!.id, username: c2!.username, fullName: c2!.fullName },
        },
        {
          id: comments[0]!.id,
          content: 'second',
          createdAt: '2024-03-01T12:00:00.000Z',
          author: { id: c1!.id, username: c1!.username, fullName: c1!.fullName },
        },
      ],
      tags: [],
    });
  });

  it('a post with no comments has commentCount 0 and an empty list', async () => {
    const [author] = await insertUsers(pool, 1);
    const [post] = await insertPosts(pool, [author!.id], 1);
    const doc = (await sync.preview('post', [post!])).get(post!);
    expect(doc).toMatchObject({ commentCount: 0, comments: [], published: true, tags: [] });
    expect(Object.keys(doc!).sort()).toEqual(
      ['author', 'commentCount', 'comments', 'content', 'createdAt', 'id', 'published', 'tags', 'title', 'updatedAt'].sort(),
    );
  });
});
