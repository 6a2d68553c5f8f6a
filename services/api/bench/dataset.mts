import shared from '@blog/shared';
import type pg from 'pg';

/**
 * The benchmark's data set, written set-based straight into tb_* (one INSERT ... SELECT per table),
 * then projected into tv_* by the sync engine's full rebuild. Sizes are a parameter; the default is
 * 10,000 posts of ~3 KB with 10 comments each, 1,000 users, plus the seed's fixed rows.
 *
 * Text is random hex (md5 of random()), so it compresses like prose rather than like a repeated
 * string: the documents are TOASTed and decompressed on read, as real ones would be.
 */
export interface DatasetSize {
  users: number;
  posts: number;
  commentsPerPost: number;
  /** Approximate characters of post content. */
  contentChars: number;
}

export const DEFAULT_SIZE: DatasetSize = { users: 1000, posts: 10_000, commentsPerPost: 10, contentChars: 3000 };

export async function datasetMatches(pool: pg.Pool, size: DatasetSize): Promise<boolean> {
  const { rows } = await pool.query<{ posts: number; comments: number; tv_posts: number; tv_comments: number }>(
    `SELECT (SELECT count(*) FROM tb_post)::int AS posts, (SELECT count(*) FROM tb_comment)::int AS comments,
            (SELECT count(*) FROM tv_post)::int AS tv_posts, (SELECT count(*) FROM tv_comment)::int AS tv_comments`,
  );
  const r = rows[0]!;
  return r.posts >= size.posts && r.comments >= size.posts * size.commentsPerPost && r.tv_posts === r.posts && r.tv_comments === r.comments;
}

export async function insertDataset(client: pg.ClientBase, size: DatasetSize): Promise<void> {
  const chunks = Math.ceil(size.contentChars / 33);
  await client.query(
    `INSERT INTO tb_user (id, email, username, full_name, bio, created_at, updated_at)
     SELECT gen_random_uuid(), 'bench' || i || '@example.com', 'bench_' || i, 'Bench User ' || i,
            CASE WHEN i % 3 = 0 THEN NULL ELSE 'Writes benchmarks, entry ' || i END,
            timestamptz '2024-02-01' + i * interval '1 minute', timestamptz '2024-02-01' + i * interval '1 minute'
       FROM generate_series(1, $1::int) AS i`,
    [size.users],
  );
  await client.query(
    `WITH authors AS (SELECT array_agg(id ORDER BY id) AS ids FROM tb_user)
     INSERT INTO tb_post (id, author_id, title, content, published, created_at, updated_at)
     SELECT gen_random_uuid(), authors.ids[1 + (i % array_length(authors.ids, 1))],
            'Benchmark post number ' || i,
            (SELECT string_agg(md5(random()::text || i || j), ' ') FROM generate_series(1, $2::int) AS j),
            i % 5 <> 0,
            timestamptz '2024-03-01' + i * interval '1 minute', timestamptz '2024-03-01' + i * interval '1 minute'
       FROM generate_series(1, $1::int) AS i, authors`,
    [size.posts, chunks],
  );
  await client.query(
    `WITH authors AS (SELECT array_agg(id ORDER BY id) AS ids FROM tb_user)
     INSERT INTO tb_comment (id, post_id, author_id, content, created_at, updated_at)
     SELECT gen_random_uuid(), p.id, authors.ids[1 + ((n * 7 + k) % array_length(authors.ids, 1))],
            'Comment ' || k || ': ' || md5(random()::text) || ' ' || md5(random()::text) || ' ' || md5(random()::text),
            p.created_at + k * interval '1 second', p.created_at + k * interval '1 second'
       FROM (SELECT id, created_at, row_number() OVER (ORDER BY id) AS n FROM tb_post) p,
            generate_series(1, $1::int) AS k, authors`,
    [size.commentsPerPost],
  );
  // Counts rows for every user and post, as those created through the API have.
  await shared.createAllKeptCounts(client);
}
