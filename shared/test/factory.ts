import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { EntityType } from '../src/model';
import { keptCountSql } from '../src/sync/kept-counts';

/**
 * Inserts command-side rows for tests, with fresh ids so tests never collide. Set-based: one
 * statement per table whatever the count.
 */
export interface UserRow {
  id: string;
  username: string;
  email: string;
  fullName: string;
}

let counter = 0;
const unique = () => `${Date.now().toString(36)}${(counter++).toString(36)}${randomUUID().slice(0, 4)}`;

export async function insertUsers(db: pg.ClientBase | pg.Pool, n: number, overrides: Partial<UserRow> = {}): Promise<UserRow[]> {
  const users = Array.from({ length: n }, () => {
    const tag = unique();
    return {
      id: randomUUID(),
      username: `u_${tag}`.slice(0, 30),
      email: `${tag}@example.test`,
      fullName: `User ${tag}`,
      ...overrides,
    };
  });
  await db.query(
    `INSERT INTO tb_user (id, username, email, full_name)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[])`,
    [users.map((u) => u.id), users.map((u) => u.username), users.map((u) => u.email), users.map((u) => u.fullName)],
  );
  return users;
}

/**
 * Posts spread over `authors` (round robin); returns their ids in creation order. Their times are 1 ms
 * apart and end at now(), never in the future: a write made just after sets `updated_at = now()`, which
 * must not be earlier than `created_at` (the tb_*_timestamps checks).
 */
export async function insertPosts(
  db: pg.ClientBase | pg.Pool,
  authors: readonly string[],
  n: number,
  options: { published?: boolean; contentBytes?: number; content?: string } = {},
): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  const content = options.content ?? 'x'.repeat(options.contentBytes ?? 40);
  await db.query(
    `INSERT INTO tb_post (id, author_id, title, content, published, created_at, updated_at)
     SELECT id, author_id, 'Post ' || ord, $3, $4, now() - ($5::int - ord) * interval '1 millisecond',
            now() - ($5::int - ord) * interval '1 millisecond'
       FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS t(id, author_id, ord)`,
    [ids, ids.map((_, i) => authors[i % authors.length]), content, options.published ?? true, n],
  );
  return ids;
}

/** Comments on `posts` by `authors` (both round robin); returns their ids. */
export async function insertComments(
  db: pg.ClientBase | pg.Pool,
  posts: readonly string[],
  authors: readonly string[],
  n: number,
): Promise<string[]> {
  const ids = Array.from({ length: n }, () => randomUUID());
  await db.query(
    `INSERT INTO tb_comment (id, post_id, author_id, content, created_at, updated_at)
     SELECT id, post_id, author_id, 'Comment ' || ord, now() - ($4::int - ord) * interval '1 millisecond',
            now() - ($4::int - ord) * interval '1 millisecond'
       FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) WITH ORDINALITY AS t(id, post_id, author_id, ord)`,
    [ids, ids.map((_, i) => posts[i % posts.length]), ids.map((_, i) => authors[(i + 1) % authors.length]), n],
  );
  return ids;
}

/** The tv_* document of one entity, or undefined. */
export async function projection<T = Record<string, unknown>>(
  db: pg.ClientBase | pg.Pool,
  table: string,
  id: string,
): Promise<T | undefined> {
  const { rows } = await db.query<{ data: T }>(`SELECT data FROM ${table} WHERE id = $1`, [id]);
  return rows[0]?.data;
}

/** A kept count as reads see it (keptCountSql: the counts row, else the rows counted in tv_*). */
export async function keptCount(db: pg.ClientBase | pg.Pool, type: EntityType, field: string, id: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT ${keptCountSql(type, field, '$1::uuid')} AS n`, [id]);
  return rows[0]!.n;
}
