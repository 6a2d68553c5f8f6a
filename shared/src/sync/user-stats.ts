import type pg from 'pg';
import type { Queryable } from '../db/pool';
import { MODEL, type Entity, type EntityType } from '../model';
import { countedJoins, groupsOf, keptCountsOf } from './documents';

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

/**
 * Each kept count's bound: a count with a condition (published posts) is part of the count of the
 * same rows without it (posts), and stays within it.
 */
const BOUND = new Map<string, string>(
  groupsOf(OWNER).flatMap((g) =>
    g.items.flatMap((i) => {
      if (i.field.kind !== 'count' || !i.field.kept || !i.field.where) return [];
      const whole = g.items.find((w) => w.field.kind === 'count' && w.field.kept && !w.field.where);
      return whole && whole.field.kind === 'count' ? [[i.field.kept, whole.field.kept!] as [string, string]] : [];
    }),
  ),
);

/** What a command changes in one user's kept counts, by document field (postCount: +1, ...). */
export interface CountChange {
  id: string;
  counts: Partial<Record<string, number>>;
}

/** The new value of a kept column, given the change of each column as `delta(column)`. */
const applied = (row: string, delta: (column: string) => string) => (k: { column: string }) => {
  const bound = BOUND.get(k.column);
  const value = `${row}${k.column} + ${delta(k.column)}`;
  return `${k.column} = greatest(0, ${bound ? `least(${value}, ${row}${bound} + ${delta(bound)})` : value})`;
};
const param = (column: string) => `$${KEPT.findIndex((k) => k.column === column) + 2}`;

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
         SELECT id, ${KEPT.map((k) => `sum(${k.column})::int AS ${k.column}`).join(', ')}
           FROM unnest($1::uuid[], ${KEPT.map((_k, i) => `$${i + 2}::int[]`).join(', ')}) AS c(id, ${KEPT.map((k) => k.column).join(', ')})
          GROUP BY id),
       locked AS MATERIALIZED (
         SELECT ${STATS.key} FROM ${STATS.table} WHERE ${STATS.key} = ANY($1::uuid[]) ORDER BY ${STATS.key} FOR NO KEY UPDATE)
  UPDATE ${STATS.table} s
     SET ${KEPT.map(applied('s.', (column) => `change.${column}`)).join(',\n         ')}
    FROM locked JOIN change ON change.id = locked.${STATS.key}
   WHERE s.${STATS.key} = locked.${STATS.key} AND s.${STATS.key} = ANY($1::uuid[])`;

/**
 * APPLY for one user (a create, an update, a delete without comments: most commands): the same
 * change as one update by key. APPLY's grouping, locking CTE and generic plan cost about three times
 * as much for a single row.
 */
const APPLY_ONE = `
  UPDATE ${STATS.table}
     SET ${KEPT.map(applied('', param)).join(',\n         ')}
   WHERE ${STATS.key} = $1`;

const FIELDS = new Set(KEPT.map((k) => k.field));

/** Sends the changes on the caller's connection (and transaction); nothing is sent when there are none. */
export function applyCountChanges(client: Queryable, changes: readonly CountChange[]): Promise<unknown> | undefined {
  for (const c of changes) {
    for (const field of Object.keys(c.counts)) if (!FIELDS.has(field)) throw new Error(`${field} is not a kept count of ${OWNER.name}`);
  }
  const real = changes.filter((c) => KEPT.some((k) => c.counts[k.field]));
  if (!real.length) return undefined;
  if (real.length === 1) {
    const [one] = real as [CountChange];
    return client.query(APPLY_ONE, [one.id, ...KEPT.map((k) => one.counts[k.field] ?? 0)]);
  }
  return client.query(APPLY, [real.map((c) => c.id), ...KEPT.map((k) => real.map((c) => c.counts[k.field] ?? 0))]);
}

/**
 * The counts of the users in $1 ('ids'), in another array expression (an SQL string other than
 * 'ids' and 'all') or of every user with a row ('all'), from the rows.
 */
const counted = (scope: string) => {
  const ids = scope === 'ids' ? '$1::uuid[]' : scope;
  return `
  SELECT s.${STATS.key} AS id, ${KEPT.map((k) => `${k.counted} AS ${k.column}`).join(', ')}
    FROM ${STATS.table} s
    ${countedJoins(OWNER, `s.${STATS.key}`, scope === 'all' ? 'true' : `$via = ANY(${ids})`)}
   ${scope === 'all' ? '' : `WHERE s.${STATS.key} = ANY(${ids})`}`;
};

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
export const WRONG_KEPT_COUNTS = wrongKeptCounts('all');

/** WRONG_KEPT_COUNTS among the users of an SQL array expression (a chunk of the online verify), or of all. */
export function wrongKeptCounts(ids: string): string {
  return `
  SELECT s.${STATS.key} AS id
    FROM (${counted(ids)}) counted
    JOIN ${STATS.table} s ON s.${STATS.key} = counted.id
   WHERE ${DIFFERS}`;
}

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
