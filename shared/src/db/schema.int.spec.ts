import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { insertPosts, insertUsers } from '../../test/factory';
import { testPool } from '../../test/helpers';

describe('schema 001', () => {
  let pool: pg.Pool;
  let author: string;
  let post: string;
  beforeAll(async () => {
    pool = testPool();
    author = (await insertUsers(pool, 1))[0]!.id;
    [post] = (await insertPosts(pool, [author], 1)) as [string];
  });
  afterAll(() => pool.end());

  it('has no triggers anywhere (sync is explicit)', async () => {
    // Foreign keys are implemented with internal triggers; those are not ours and are excluded.
    const { rows } = await pool.query('SELECT tgname, tgrelid::regclass::text AS tbl FROM pg_trigger WHERE NOT tgisinternal');
    expect(rows).toEqual([]);
    const { rows: fns } = await pool.query(
      'SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace ' +
        "WHERE n.nspname = 'public' AND prorettype = 'trigger'::regtype",
    );
    expect(fns).toEqual([]);
  });

  it('has the indexes the read paths and the metrics need', async () => {
    const { rows } = await pool.query<{ indexname: string }>("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'");
    const names = rows.map((r) => r.indexname);
    expect(names).toEqual(
      expect.arrayContaining([
        'tv_post_created_idx',
        'tv_post_published_created_idx',
        'tv_post_author_created_idx',
        'tv_comment_post_created_idx',
        'tv_user_created_idx',
        'sync_log_created_idx',
        'sync_log_entity_created_idx',
        'tb_user_email_key',
        'tb_user_username_key',
      ]),
    );
  });

  const fresh = () => randomUUID().slice(0, 8);
  type Case = { name: string; sql: () => [string, unknown[]]; code: string; constraint?: string };
  const cases: Case[] = [
    {
      name: 'empty title',
      sql: () => ['INSERT INTO tb_post (author_id, title, content) VALUES ($1, $2, $3)', [author, '', 'body']],
      code: '23514',
      constraint: 'tb_post_title_length',
    },
    {
      name: 'blank title',
      sql: () => ['INSERT INTO tb_post (author_id, title, content) VALUES ($1, $2, $3)', [author, '   ', 'body']],
      code: '23514',
      constraint: 'tb_post_title_length',
    },
    {
      name: 'title over 300 chars',
      sql: () => ['INSERT INTO tb_post (author_id, title, content) VALUES ($1, $2, $3)', [author, 't'.repeat(301), 'body']],
      code: '23514',
      constraint: 'tb_post_title_length',
    },
    {
      name: 'empty post content',
      sql: () => ['INSERT INTO tb_post (author_id, title, content) VALUES ($1, $2, $3)', [author, 'T', '']],
      code: '23514',
      constraint: 'tb_post_content_length',
    },
    {
      name: 'null title',
      sql: () => ['INSERT INTO tb_post (author_id, title, content) VALUES ($1, NULL, $2)', [author, 'body']],
      code: '23502',
    },
    {
      name: 'post by unknown author',
      sql: () => ['INSERT INTO tb_post (author_id, title, content) VALUES ($1, $2, $3)', [randomUUID(), 'T', 'body']],
      code: '23503',
      constraint: 'tb_post_author_id_fkey',
    },
    {
      name: 'email without @',
      sql: () => ['INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', ['nobody.example.com', `u_${fresh()}`, 'N']],
      code: '23514',
      constraint: 'tb_user_email_format',
    },
    {
      name: 'email without domain dot',
      sql: () => ['INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', ['a@b', `u_${fresh()}`, 'N']],
      code: '23514',
      constraint: 'tb_user_email_format',
    },
    {
      name: 'email with spaces',
      sql: () => ['INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', ['a b@c.de', `u_${fresh()}`, 'N']],
      code: '23514',
      constraint: 'tb_user_email_format',
    },
    {
      name: 'username with a space',
      sql: () => ['INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', [`${fresh()}@x.io`, 'bad name', 'N']],
      code: '23514',
      constraint: 'tb_user_username_format',
    },
    {
      name: 'username too short',
      sql: () => ['INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', [`${fresh()}@x.io`, 'ab', 'N']],
      code: '23514',
      constraint: 'tb_user_username_format',
    },
    {
      name: 'blank full name',
      sql: () => ['INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', [`${fresh()}@x.io`, `u_${fresh()}`, ' ']],
      code: '23514',
      constraint: 'tb_user_full_name_length',
    },
    {
      name: 'bio over 2000 chars',
      sql: () => [
        'INSERT INTO tb_user (email, username, full_name, bio) VALUES ($1, $2, $3, $4)',
        [`${fresh()}@x.io`, `u_${fresh()}`, 'N', 'b'.repeat(2001)],
      ],
      code: '23514',
      constraint: 'tb_user_bio_length',
    },
    {
      name: 'empty comment',
      sql: () => ['INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, $3)', [post, author, '']],
      code: '23514',
      constraint: 'tb_comment_content_length',
    },
    {
      name: 'comment on unknown post',
      sql: () => ['INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, $3)', [randomUUID(), author, 'hi']],
      code: '23503',
      constraint: 'tb_comment_post_id_fkey',
    },
    {
      name: 'updated before created',
      sql: () => ["UPDATE tb_post SET updated_at = created_at - interval '1 day' WHERE id = $1", [post]],
      code: '23514',
      constraint: 'tb_post_timestamps',
    },
    {
      name: 'deleting a post that has comments',
      sql: () => [
        'WITH c AS (INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, $3)) DELETE FROM tb_post WHERE id = $1',
        [post, author, 'keep me'],
      ],
      code: '23503',
      constraint: 'tb_comment_post_id_fkey',
    },
  ];

  it.each(cases)('rejects $name', async ({ sql, code, constraint }) => {
    const [text, values] = sql();
    const err = await pool.query(text, values).then(
      () => undefined,
      (e: { code?: string; constraint?: string }) => e,
    );
    expect(err).toMatchObject({ code, ...(constraint ? { constraint } : {}) });
  });

  it('treats emails and usernames as unique regardless of case', async () => {
    const u = (await insertUsers(pool, 1))[0]!;
    await expect(
      pool.query('INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', [u.email.toUpperCase(), `u_${fresh()}`, 'N']),
    ).rejects.toMatchObject({ code: '23505', constraint: 'tb_user_email_key' });
    await expect(
      pool.query('INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, $3)', [
        `${fresh()}@x.io`,
        u.username.toUpperCase(),
        'N',
      ]),
    ).rejects.toMatchObject({ code: '23505', constraint: 'tb_user_username_key' });
  });

  it('accepts a valid row of each kind', async () => {
    const email = `${fresh()}@example.org`;
    const { rows } = await pool.query(
      `WITH u AS (INSERT INTO tb_user (email, username, full_name) VALUES ($1, $2, 'Valid Person') RETURNING id),
            p AS (INSERT INTO tb_post (author_id, title, content) SELECT id, 'Title', 'Body' FROM u RETURNING id, author_id)
       INSERT INTO tb_comment (post_id, author_id, content) SELECT id, author_id, 'Nice' FROM p RETURNING id`,
      [email, `ok_${fresh()}`],
    );
    expect(rows).toHaveLength(1);
  });
});
