import type pg from 'pg';
import type { Queryable } from '../db/pool';
import { MODEL, type Entity, type EntityType } from '../model';
import { countedJoins, keptCountsOf } from './documents';

/**
 * Each user's counts (posts, published posts, comments) in tb_user_stats (migration 003), kept by
 * the commands so that refreshing a user reads one row instead of counting everything they wrote.
 *
 * The commands apply the difference they make (applyCountChanges), in their own transaction. The
 * counts are checked against the rows by `sync verify` (whose documents are computed from the rows)
 * and set from the rows again by `sync verify --repair` and `sync all` (recountUserStats).
 *
 * Races. A command changes its user's row with UPDATE, which waits for (and then adds to) any
 * other transaction's change of that row: additions never get lost. A recount locks the rows first,
 * then counts in a second statement, whose snapshot contains every change committed before the locks
 * were granted; a command that wrote its post but had not yet changed the count is not counted, and
 * adds its change after the recount. So neither can undo the other.
 */
export interface CountChange {
  userId: string;
  posts?: number;
  publishedPosts?: number;
  comments?: number;
}

/**
 * Locks the users' rows in id order (so two commands never deadlock on them), then adds the
 * changes. A user without a row is left without one: the projection counts their rows instead.
 * Counts that were already wrong (rows written behind the API's back) are kept within their bounds
 * rather than failing the command: verify finds them, repair recounts them.
 * The ids are matched with `= ANY($1)` on both sides so that the primary key is used (a join with
 * the unnested changes was planned as a scan of the whole table).
 */
const APPLY = `
  WITH change AS (
         SELECT user_id, sum(posts)::int AS posts, sum(published)::int AS published, sum(comments)::int AS comments
           FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[]) AS c(user_id, posts, published, comments)
          GROUP BY user_id),
       locked AS MATERIALIZED (
         SELECT user_id FROM tb_user_stats WHERE user_id = ANY($1::uuid[]) ORDER BY user_id FOR NO KEY UPDATE)
  UPDATE tb_user_stats s
     SET post_count = greatest(0, s.post_count + change.posts),
         published_post_count = greatest(0, least(s.published_post_count + change.published, s.post_count + change.posts)),
         comment_count = greatest(0, s.comment_count + change.comments)
    FROM locked JOIN change USING (user_id)
   WHERE s.user_id = locked.user_id AND s.user_id = ANY($1::uuid[])`;

/**
 * APPLY for one user (a create, an update, a delete without comments: most commands): the same
 * change as one update by key. APPLY's grouping, locking CTE and generic plan cost about three times
 * as much for a single row.
 */
const APPLY_ONE = `
  UPDATE tb_user_stats
     SET post_count = greatest(0, post_count + $2),
         published_post_count = greatest(0, least(published_post_count + $3, post_count + $2)),
         comment_count = greatest(0, comment_count + $4)
   WHERE user_id = $1`;

/** Sends the changes on the caller's connection (and transaction); nothing is sent when there are none. */
export function applyCountChanges(client: Queryable, changes: readonly CountChange[]): Promise<unknown> | undefined {
  const real = changes.filter((c) => c.posts || c.publishedPosts || c.comments);
  if (!real.length) return undefined;
  if (real.length === 1) {
    const [one] = real as [CountChange];
    return client.query(APPLY_ONE, [one.userId, one.posts ?? 0, one.publishedPosts ?? 0, one.comments ?? 0]);
  }
  return client.query(APPLY, [
    real.map((c) => c.userId),
    real.map((c) => c.posts ?? 0),
    real.map((c) => c.publishedPosts ?? 0),
    real.map((c) => c.comments ?? 0),
  ]);
}

/** The entity whose counts the commands keep (its declaration's keptCounts): the users. */
const OWNER: Entity = (() => {
  const owners = MODEL.filter((e) => e.keptCounts);
  if (owners.length !== 1) throw new Error(`user-stats.ts keeps the counts of one entity; declared on ${owners.length}`);
  return owners[0]!;
})();
const KEPT = keptCountsOf(OWNER);

/** The entity type whose documents read the kept counts: the engine applies a command's count changes right before refreshing it. */
export const COUNTS_OWNER: EntityType = OWNER.name;
const STATS = OWNER.keptCounts!;

/** The counts of the users in $1 ('ids') or of every user with a row ('all'), from the rows. */
const counted = (scope: 'ids' | 'all') => `
  SELECT s.${STATS.key} AS id, ${KEPT.map((k) => `${k.counted} AS ${k.column}`).join(', ')}
    FROM ${STATS.table} s
    ${countedJoins(OWNER, `s.${STATS.key}`, scope === 'ids' ? '$via = ANY($1::uuid[])' : 'true')}
   ${scope === 'ids' ? `WHERE s.${STATS.key} = ANY($1::uuid[])` : ''}`;

/** The kept counts in `s` differ from those of `counted`. */
const DIFFERS = `(${KEPT.map((k) => `s.${k.column}`).join(', ')}) IS DISTINCT FROM (${KEPT.map((k) => `counted.${k.column}`).join(', ')})`;

const fix = (scope: 'ids' | 'all') => `
  WITH counted AS (${counted(scope)})
  UPDATE ${STATS.table} s
     SET ${KEPT.map((k) => `${k.column} = counted.${k.column}`).join(', ')}
    FROM counted
   WHERE s.${STATS.key} = counted.id
     AND ${DIFFERS}
  RETURNING s.${STATS.key} AS id`;

/**
 * The users whose kept counts differ from their rows, as `id`: part of `sync verify`, which reports
 * them as stale users (a wrong count that no refresh has copied into tv_user yet is not visible in
 * the documents), so that `--repair` recounts them.
 */
export const WRONG_KEPT_COUNTS = `
  SELECT s.${STATS.key} AS id
    FROM (${counted('all')}) counted
    JOIN ${STATS.table} s ON s.${STATS.key} = counted.id
   WHERE ${DIFFERS}`;

const LOCK_IDS = `SELECT ${STATS.key} FROM ${STATS.table} WHERE ${STATS.key} = ANY($1::uuid[]) ORDER BY ${STATS.key} FOR NO KEY UPDATE`;
const LOCK_ALL = `LOCK TABLE ${STATS.table} IN SHARE ROW EXCLUSIVE MODE`;

/**
 * Sets the counts of these users (or of all) from the rows, in the caller's transaction; returns the
 * users whose counts were wrong. 'all' locks the table until the caller commits: commands that
 * change counts wait for it.
 */
export async function recountUserStats(client: pg.ClientBase, users: readonly string[] | 'all'): Promise<string[]> {
  if (users === 'all') {
    await client.query(LOCK_ALL);
    const { rows } = await client.query<{ id: string }>(fix('all'));
    return rows.map((r) => r.id);
  }
  if (!users.length) return [];
  await client.query(LOCK_IDS, [users]);
  const { rows } = await client.query<{ id: string }>(fix('ids'), [users]);
  return rows.map((r) => r.id);
}

/**
 * Gives these users rows counted from theirs (the seed, bulk loads). Not for users that commands may
 * be writing for at the same time: a command that changed no row (there was none) would not be counted.
 */
export async function createUserStats(client: Queryable, users: readonly string[] | 'all'): Promise<void> {
  if (users !== 'all' && !users.length) return;
  await client.query(
    `INSERT INTO ${STATS.table} (${STATS.key}, ${KEPT.map((k) => k.column).join(', ')})
     SELECT u.id, ${KEPT.map((k) => k.counted).join(', ')}
       FROM ${OWNER.table} u
       ${countedJoins(OWNER, 'u.id', '($1::uuid[] IS NULL OR $via = ANY($1::uuid[]))')}
      WHERE $1::uuid[] IS NULL OR u.id = ANY($1::uuid[])
     ON CONFLICT (${STATS.key}) DO NOTHING`,
    [users === 'all' ? null : users],
  );
}
