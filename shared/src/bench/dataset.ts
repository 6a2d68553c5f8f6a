import type pg from 'pg';
import { createAllKeptCounts } from '../sync/kept-counts';

export interface DatasetSize {
  users: number;
  posts: number;
  comments: number;
  /** Approximate size of each post's content, in bytes. */
  postBytes: number;
}

/**
 * Generates a realistic blog into tb_* with a handful of set-based statements (generate_series),
 * deterministic for a given size: every post has an author, comments spread over posts and users.
 * Timestamps increase with the row number, so "newest" is well defined.
 */
export async function generateDataset(db: pg.ClientBase | pg.Pool, size: DatasetSize): Promise<void> {
  await db.query(
    `INSERT INTO tb_user (id, email, username, full_name, bio, created_at, updated_at)
     SELECT md5('user' || i)::uuid, 'user' || i || '@bench.example', 'user_' || i, 'Bench User ' || i,
            CASE WHEN i % 3 = 0 THEN NULL ELSE 'Bio of user ' || i END,
            timestamptz '2024-01-01' + i * interval '1 second', timestamptz '2024-01-01' + i * interval '1 second'
       FROM generate_series(1, $1::int) i`,
    [size.users],
  );
  await db.query(
    `INSERT INTO tb_post (id, author_id, title, content, published, created_at, updated_at)
     SELECT md5('post' || i)::uuid, md5('user' || (1 + i % $2::int))::uuid, 'Post number ' || i,
            repeat('Lorem ipsum dolor sit amet, consectetur adipiscing elit. ', greatest(1, $3::int / 57)),
            i % 10 <> 0,
            timestamptz '2024-02-01' + i * interval '1 second', timestamptz '2024-02-01' + i * interval '1 second'
       FROM generate_series(1, $1::int) i`,
    [size.posts, size.users, size.postBytes],
  );
  await db.query(
    `INSERT INTO tb_comment (id, post_id, author_id, content, created_at, updated_at)
     SELECT md5('comment' || i)::uuid, md5('post' || (1 + i % $2::int))::uuid, md5('user' || (1 + (i * 7) % $3::int))::uuid,
            'Comment ' || i || ': interesting point about explicit sync.',
            timestamptz '2024-03-01' + i * interval '1 second', timestamptz '2024-03-01' + i * interval '1 second'
       FROM generate_series(1, $1::int) i`,
    [size.comments, size.posts, size.users],
  );
  // Counts rows for every user and post, as those created through the API have.
  await createAllKeptCounts(db);
  await db.query('ANALYZE tb_user, tb_user_stats, tb_post, tb_post_stats, tb_comment');
}
