import type pg from 'pg';
import { insertComments, insertPosts, insertUsers } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { SyncEngine } from './engine';

describe('comment projection', () => {
  let pool: pg.Pool;
  let sync: SyncEngine;
  beforeAll(() => {
    pool = testPool();
    sync = new SyncEngine(pool);
  });
  afterAll(() => pool.end());

  it('embeds its author and its post (id and title)', async () => {
    const [postAuthor, commenter] = await insertUsers(pool, 2);
    const [post] = await insertPosts(pool, [postAuthor!.id], 1);
    const [comment] = await insertComments(pool, [post!], [postAuthor!.id], 1); // authored by authors[1 % 1]
    await pool.query(
      "UPDATE tb_comment SET author_id = $2, content = 'Nice post', created_at = '2024-06-01T00:00:00Z', updated_at = '2024-06-02T00:00:00Z' WHERE id = $1",
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
