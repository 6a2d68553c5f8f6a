import type pg from 'pg';
import { withTransaction } from '../db/pool';
import { SyncEngine } from '../sync/engine';
import { planSync } from '../sync/dependencies';
import { createKeptCounts, recountKeptCounts } from '../sync/kept-counts';
import { SEED_COMMENTS, SEED_POSTS } from './data';
import { insertSeedRows, type SeedResult } from './seed';

/**
 * Inserts the sample data and syncs what it inserted, in one transaction: the seed's rows and their
 * projections appear together. A second run inserts nothing and therefore syncs nothing.
 *
 * Kept counts: the users and posts it inserts get rows counted from theirs; users and posts that
 * existed already and get a post or comment back (one deleted since an earlier seed) are recounted,
 * as the insert bypasses the commands that keep their counts.
 */
export async function seed(pool: pg.Pool, sync = new SyncEngine(pool)): Promise<SeedResult> {
  return withTransaction(pool, async (client) => {
    const inserted = await insertSeedRows(client);
    await createKeptCounts(client, 'user', inserted.users);
    await createKeptCounts(client, 'post', inserted.posts);
    await recountKeptCounts(client, 'user', existingAuthorsOf(inserted));
    await recountKeptCounts(client, 'post', existingPostsOf(inserted));
    await sync.refreshIn(client, await planSync(client, { user: inserted.users, post: inserted.posts, comment: inserted.comments }));
    return inserted;
  });
}

/** The authors of the inserted posts and comments that this run did not insert itself. */
function existingAuthorsOf(inserted: SeedResult): string[] {
  const posts = new Set(inserted.posts);
  const comments = new Set(inserted.comments);
  const authors = new Set<string>([
    ...SEED_POSTS.filter((p) => posts.has(p.id)).map((p) => p.authorId),
    ...SEED_COMMENTS.filter((c) => comments.has(c.id)).map((c) => c.authorId),
  ]);
  for (const user of inserted.users) authors.delete(user);
  return [...authors];
}

/** The posts of the inserted comments that this run did not insert itself. */
function existingPostsOf(inserted: SeedResult): string[] {
  const comments = new Set(inserted.comments);
  const posts = new Set<string>(SEED_COMMENTS.filter((c) => comments.has(c.id)).map((c) => c.postId));
  for (const post of inserted.posts) posts.delete(post);
  return [...posts];
}

/** True when tb_user has no rows (a new database): `npm start` seeds only then. */
export async function isEmpty(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM tb_user) AS empty');
  return rows[0]?.empty ?? true;
}
