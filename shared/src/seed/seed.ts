import type pg from 'pg';
import { SEED_COMMENTS, SEED_POSTS, SEED_USERS } from './data';

export interface SeedResult {
  /** Ids of the rows this run inserted (rows that already existed are left untouched). */
  users: string[];
  posts: string[];
  comments: string[];
}

/**
 * Inserts the fixed sample data into tb_* in one transaction; rows that exist are left alone, so a
 * second run inserts nothing. Returns what was inserted: the change set to sync.
 * One set-based INSERT per table (unnest of parallel arrays), not a row at a time.
 */
export async function insertSeedRows(client: pg.ClientBase): Promise<SeedResult> {
  const users = await client.query<{ id: string }>(
    `INSERT INTO tb_user (id, email, username, full_name, bio, created_at, updated_at)
     SELECT id, email, username, full_name, bio, created_at, created_at
       FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
            AS t(id, email, username, full_name, bio, created_at)
     ON CONFLICT DO NOTHING
     RETURNING id`,
    [
      SEED_USERS.map((u) => u.id),
      SEED_USERS.map((u) => u.email),
      SEED_USERS.map((u) => u.username),
      SEED_USERS.map((u) => u.fullName),
      SEED_USERS.map((u) => u.bio),
      SEED_USERS.map((u) => u.createdAt),
    ],
  );
  const posts = await client.query<{ id: string }>(
    `INSERT INTO tb_post (id, author_id, title, content, published, created_at, updated_at)
     SELECT id, author_id, title, content, true, created_at, created_at
       FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
            AS t(id, author_id, title, content, created_at)
     ON CONFLICT DO NOTHING
     RETURNING id`,
    [
      SEED_POSTS.map((p) => p.id),
      SEED_POSTS.map((p) => p.authorId),
      SEED_POSTS.map((p) => p.title),
      SEED_POSTS.map((p) => p.content),
      SEED_POSTS.map((p) => p.createdAt),
    ],
  );
  const comments = await client.query<{ id: string }>(
    `INSERT INTO tb_comment (id, post_id, author_id, content, created_at, updated_at)
     SELECT id, post_id, author_id, content, created_at, created_at
       FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[])
            AS t(id, post_id, author_id, content, created_at)
     ON CONFLICT DO NOTHING
     RETURNING id`,
    [
      SEED_COMMENTS.map((c) => c.id),
      SEED_COMMENTS.map((c) => c.postId),
      SEED_COMMENTS.map((c) => c.authorId),
      SEED_COMMENTS.map((c) => c.content),
      SEED_COMMENTS.map((c) => c.createdAt),
    ],
  );
  return {
    users: users.rows.map((r) => r.id),
    posts: posts.rows.map((r) => r.id),
    comments: comments.rows.map((r) => r.id),
  };
}
