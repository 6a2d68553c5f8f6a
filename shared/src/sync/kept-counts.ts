import type pg from 'pg';
import type { SqlPart } from '../db/compose';
import type { Queryable } from '../db/pool';
import { entityOf, MODEL, type Entity, type EntityType } from '../model';
import { countedJoins, groupsOf, keptCountsOf } from './documents';

/**
 * Kept counts (a count field declared `kept`, shared/src/model/declare.ts): a user's posts and
 * comments, a post's comments. Each lives in its entity's counts table (tb_user_stats, migration
 * 003; tb_post_stats, migration 007), kept by the commands by the difference they make, in their
 * own transaction, and merged into the entity by reads (keptCountSql). No document holds them, so a
 * new comment changes one counter and refreshes no post or user document.
 *
 * The counts are checked against the rows by `sync verify` (wrongKeptCounts: the entity is
 * reported stale) and set from the rows again by `sync verify --repair` and `sync rebuild`
 * (recountKeptCounts).
 *
 * Races. A command changes a counts row with UPDATE, which waits for (and then adds to) any other
 * transaction's change of that row: additions never get lost. A recount locks the rows first, then
 * counts in a second statement, whose snapshot contains every change committed before the locks
 * were granted; a command that wrote its row but had not yet changed the count is not counted, and
 * adds its change after the recount. So neither can undo the other.
 *
 * Hot rows. A row's lock is held from the UPDATE to COMMIT: the commands send their count changes
 * last, so that many writers commenting on one post wait for each other for one counter update and
 * the commit, not for their whole transaction.
 *
 * Lock order. Everything that locks both projection rows and counts rows locks the projection rows
 * first (in SYNC_ORDER) and the counts rows after them (each table's rows in key order): the
 * commands, the rebuild's chunks, repair and SyncEngine.all(). Two of them never wait for each
 * other in a cycle (a chunk recounting posts first, then claiming them, and a command that has
 * claimed a post and then updates its count, would).
 */
interface Owner {
  entity: Entity;
  table: string;
  key: string;
  kept: { field: string; column: string; counted: string }[];
  /** A count with a condition (published posts) stays within the count of the same rows without it (posts). */
  bound: Map<string, string>;
  apply: string;
  applyOne: string;
}

function owner(entity: Entity): Owner {
  const { table, key } = entity.keptCounts!;
  const kept = keptCountsOf(entity);
  const bound = new Map<string, string>(
    groupsOf(entity, 'kept').flatMap((g) =>
      g.items.flatMap((i) => {
        if (i.field.kind !== 'count' || !i.field.kept || !i.field.where) return [];
        const whole = g.items.find((w) => w.field.kind === 'count' && w.field.kept && !w.field.where);
        return whole && whole.field.kind === 'count' ? [[i.field.kept, whole.field.kept!] as [string, string]] : [];
      }),
    ),
  );
  /** The new value of a kept column, given the change of each column as `delta(column)`. */
  const applied = (row: string, delta: (column: string) => string) => (k: { column: string }) => {
    const limit = bound.get(k.column);
    const value = `${row}${k.column} + ${delta(k.column)}`;
    return `${k.column} = greatest(0, ${limit ? `least(${value}, ${row}${limit} + ${delta(limit)})` : value})`;
  };
  const param = (column: string) => `$${kept.findIndex((k) => k.column === column) + 2}`;
  return {
    entity,
    table,
    key,
    kept,
    bound,
    // Locks the rows in key order (so two commands never deadlock on them), then adds the changes. A
    // row that is missing is left missing: reads count the rows instead (keptCountSql). Counts that
    // were already wrong (rows written behind the API's back) are kept within their bounds rather
    // than failing the command: verify finds them, repair recounts them. The keys are matched with
    // `= ANY($1)` on both sides so that the primary key is used (a join with the unnested changes
    // was planned as a scan of the whole table).
    apply: `
  WITH change AS (
         SELECT id, ${kept.map((k) => `sum(${k.column})::int AS ${k.column}`).join(', ')}
           FROM unnest($1::uuid[], ${kept.map((_k, i) => `$${i + 2}::int[]`).join(', ')}) AS c(id, ${kept.map((k) => k.column).join(', ')})
          GROUP BY id),
       locked AS MATERIALIZED (
         SELECT ${key} FROM ${table} WHERE ${key} = ANY($1::uuid[]) ORDER BY ${key} FOR NO KEY UPDATE)
  UPDATE ${table} s
     SET ${kept.map(applied('s.', (column) => `change.${column}`)).join(',\n         ')}
    FROM locked JOIN change ON change.id = locked.${key}
   WHERE s.${key} = locked.${key} AND s.${key} = ANY($1::uuid[])`,
    // The same change for one row (most commands), as one update by key: the grouping, locking CTE
    // and generic plan of `apply` cost about three times as much for a single row.
    applyOne: `
  UPDATE ${table}
     SET ${kept.map(applied('', param)).join(',\n         ')}
   WHERE ${key} = $1`,
  };
}

const OWNERS = new Map<EntityType, Owner>(MODEL.filter((e) => e.keptCounts).map((e) => [e.name, owner(e)]));

function ownerOf(type: EntityType): Owner {
  const found = OWNERS.get(type);
  if (!found) throw new Error(`${type} keeps no counts (its declaration has no keptCounts)`);
  return found;
}

/** The entity types that keep counts, in the order their rows are locked. */
export const KEPT_COUNT_OWNERS: readonly EntityType[] = [...OWNERS.keys()];

/** What a command changes in one entity's kept counts, by document field ({ type: 'user', id, counts: { postCount: 1 } }). */
export interface CountChange {
  type: EntityType;
  id: string;
  counts: Partial<Record<string, number>>;
}

/**
 * The changes that change something, by entity type in KEPT_COUNT_OWNERS order. Throws on a field
 * that is not a kept count of its entity.
 */
function changesByOwner(changes: readonly CountChange[]): [Owner, CountChange[]][] {
  for (const c of changes) {
    const o = ownerOf(c.type);
    for (const field of Object.keys(c.counts)) {
      if (!o.kept.some((k) => k.field === field)) throw new Error(`${field} is not a kept count of ${c.type}`);
    }
  }
  return [...OWNERS].flatMap(([type, o]): [Owner, CountChange[]][] => {
    const real = changes.filter((c) => c.type === type && o.kept.some((k) => c.counts[k.field]));
    return real.length ? [[o, real]] : [];
  });
}

/** The parameters of `applyOne`. */
const oneRow = (o: Owner, one: CountChange): unknown[] => [one.id, ...o.kept.map((k) => one.counts[k.field] ?? 0)];

/**
 * Sends the changes on the caller's connection (and transaction), one statement per entity type
 * that has any, in KEPT_COUNT_OWNERS order; undefined when there are none. Throws (before sending
 * anything) on a field that is not a kept count of its entity.
 */
export function applyCountChanges(client: Queryable, changes: readonly CountChange[]): Promise<unknown> | undefined {
  const sent = changesByOwner(changes).map(([o, real]) =>
    real.length === 1
      ? client.query(o.applyOne, oneRow(o, real[0]!))
      : client.query(o.apply, [real.map((c) => c.id), ...o.kept.map((k) => real.map((c) => c.counts[k.field] ?? 0))]),
  );
  if (!sent.length) return undefined;
  const all = Promise.all(sent);
  // Every statement's failure is observed; the first is raised.
  all.catch(() => undefined);
  return all;
}

/** `applyOne` as a CTE that returns its row, run after the CTE `previous` when given (countChangeParts). */
const applyOneCtes = new Map<string, string>();
function applyOneCte(o: Owner, previous: string | undefined): string {
  const key = `${o.table}/${previous ?? ''}`;
  let sql = applyOneCtes.get(key);
  if (!sql) {
    sql = `${o.applyOne}${previous ? ` AND (SELECT count(*) FROM ${previous}) >= 0` : ''}\n  RETURNING 1`;
    applyOneCtes.set(key, sql);
  }
  return sql;
}

/**
 * The same changes as parts of a command's one statement (a CTE `counts_<type>` per entity type,
 * RETURNING 1), or undefined when an entity type has more than one row to change (then
 * applyCountChanges). The types' rows are locked in KEPT_COUNT_OWNERS order, as applyCountChanges
 * locks them: each CTE after the first reads the one before it, so it runs after it.
 */
export function countChangeParts(changes: readonly CountChange[]): SqlPart[] | undefined {
  const byOwner = changesByOwner(changes);
  if (byOwner.some(([, real]) => real.length > 1)) return undefined;
  let previous: string | undefined;
  return byOwner.map(([o, [one]]) => {
    const name = `counts_${o.entity.name}`;
    const part: SqlPart = { ctes: [[name, applyOneCte(o, previous)]], values: oneRow(o, one!) };
    previous = name;
    return part;
  });
}

/** The counts of the rows whose keys are in `ids` (an SQL array expression) or of every row ('all'), counted from the rows. */
const counted = (o: Owner, ids: string) => `
  SELECT s.${o.key} AS id, ${o.kept.map((k) => `${k.counted} AS ${k.column}`).join(', ')}
    FROM ${o.table} s
    ${countedJoins(o.entity, `s.${o.key}`, ids === 'all' ? 'true' : `$via = ANY(${ids})`)}
   ${ids === 'all' ? '' : `WHERE s.${o.key} = ANY(${ids})`}`;

/** The kept counts in `s` differ from those of `counted`. */
const differs = (o: Owner) =>
  `(${o.kept.map((k) => `s.${k.column}`).join(', ')}) IS DISTINCT FROM (${o.kept.map((k) => `counted.${k.column}`).join(', ')})`;

const fix = (o: Owner, scope: 'ids' | 'all') => `
  WITH counted AS (${counted(o, scope === 'ids' ? '$1::uuid[]' : 'all')})
  UPDATE ${o.table} s
     SET ${o.kept.map((k) => `${k.column} = counted.${k.column}`).join(', ')}
    FROM counted
   WHERE s.${o.key} = counted.id
     AND ${differs(o)}
  RETURNING s.${o.key} AS id`;

/**
 * The ids of an entity whose kept counts differ from its rows, as `id`, among `ids` (an SQL array
 * expression: a chunk of the online verify) or all: part of `sync verify`, which reports them as
 * stale, so that `--repair` recounts them.
 */
export function wrongKeptCounts(type: EntityType, ids = 'all'): string {
  const o = ownerOf(type);
  return `
  SELECT s.${o.key} AS id
    FROM (${counted(o, ids)}) counted
    JOIN ${o.table} s ON s.${o.key} = counted.id
   WHERE ${differs(o)}`;
}

/**
 * Sets the kept counts of these rows of `type` (or of all) from the rows they count, in the
 * caller's transaction; returns the ids whose counts were wrong. 'all' locks the counts table until
 * the caller commits: commands that change those counts wait for it.
 */
export async function recountKeptCounts(client: pg.ClientBase, type: EntityType, ids: readonly string[] | 'all'): Promise<string[]> {
  const o = ownerOf(type);
  if (ids === 'all') {
    await client.query(`LOCK TABLE ${o.table} IN SHARE ROW EXCLUSIVE MODE`);
    const { rows } = await client.query<{ id: string }>(fix(o, 'all'));
    return rows.map((r) => r.id);
  }
  if (!ids.length) return [];
  await client.query(`SELECT ${o.key} FROM ${o.table} WHERE ${o.key} = ANY($1::uuid[]) ORDER BY ${o.key} FOR NO KEY UPDATE`, [ids]);
  const { rows } = await client.query<{ id: string }>(fix(o, 'ids'), [ids]);
  return rows.map((r) => r.id);
}

/**
 * Gives these rows of `type` (or every row without one) a counts row counted from the rows (the
 * seed, bulk loads). Not for rows that commands may be writing for at the same time: a command that
 * changed no counts row (there was none) would not be counted.
 */
export async function createKeptCounts(client: Queryable, type: EntityType, ids: readonly string[] | 'all'): Promise<void> {
  const o = ownerOf(type);
  if (ids !== 'all' && !ids.length) return;
  await client.query(
    `INSERT INTO ${o.table} (${o.key}, ${o.kept.map((k) => k.column).join(', ')})
     SELECT e.id, ${o.kept.map((k) => k.counted).join(', ')}
       FROM ${o.entity.table} e
       ${countedJoins(o.entity, 'e.id', '($1::uuid[] IS NULL OR $via = ANY($1::uuid[]))')}
      WHERE $1::uuid[] IS NULL OR e.id = ANY($1::uuid[])
     ON CONFLICT (${o.key}) DO NOTHING`,
    [ids === 'all' ? null : ids],
  );
}

/**
 * The SQL of a kept count's value for the entity whose id is the SQL `id` (a uuid), for reads: its
 * counts row, or, for an entity without one (rows inserted by other means than the commands), the
 * rows counted in the other entity's projection table (the `via` and `where` columns are plain
 * columns of it, a check of the model).
 */
export function keptCountSql(type: EntityType, field: string, id: string): string {
  const o = ownerOf(type);
  const k = o.kept.find((x) => x.field === field);
  const declared = o.entity.fields[field];
  if (!k || declared?.kind !== 'count') throw new Error(`${field} is not a kept count of ${type}`);
  const counted = entityOf(declared.entity);
  return (
    `coalesce((SELECT ${k.column} FROM ${o.table} WHERE ${o.key} = ${id}), ` +
    `(SELECT count(*) FROM ${counted.view} x WHERE x.${declared.via} = ${id}${declared.where ? ` AND x.${declared.where}` : ''}))::int`
  );
}

/** createKeptCounts for every row of every entity that keeps counts (data sets loaded in bulk). */
export async function createAllKeptCounts(client: Queryable): Promise<void> {
  for (const type of KEPT_COUNT_OWNERS) await createKeptCounts(client, type, 'all');
}
