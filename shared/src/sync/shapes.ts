import type pg from 'pg';
import { inTransaction, withTransaction, type Queryable } from '../db/pool';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';
import { MODEL, type ColumnType, type Entity } from '../model';
import { estimateRows, refreshChunk, DEFAULT_REBUILD_CHUNK } from './rebuild';
import { statementsFor } from './statements';
import type { Changes } from './feed';

/**
 * Versions of the documents' shapes, changed without downtime (migration 009, table sync_shape).
 *
 * Each version of an entity's documents lives in a table of its own (declare.ts, projectionTable),
 * and a process reads and writes only the tables of the versions its code declares. So no reader
 * ever meets a table holding two shapes: the tables of the previous release hold its shape, those
 * of the new release theirs. A deploy that raises a version:
 *
 *   1. `npm run migrate` (of the new release) creates the new table beside the previous version's,
 *      as a copy of its structure (indexes and grants included), and adds its row, 'building'
 *      (prepareShapes).
 *   2. Its workers fill it in chunks, each a short transaction with the claim protocol of every
 *      refresh (rebuild.ts, refreshChunk), resumable from the last committed chunk (buildShapes);
 *      `npm run sync -- shapes --build` does the same in the foreground with a progress bar.
 *      Meanwhile its own syncs (INLINE commands, worker batches) write the new table as they write
 *      any projection.
 *   3. Once built and caught up, the row becomes 'ready': the new release's API serves from then on
 *      (until then its /ready and GraphQL answer 503, "projections building"), and the old release's
 *      keeps serving its own table, complete and of one shape, until it is stopped.
 *
 * While two releases run, each one's syncs write only its own tables. Each release therefore
 * follows the others (followShapes): the rows that another version's table took since the last pass
 * (its synced_at) are checked against this version's documents and refreshed where they differ, and
 * rows whose source is gone are removed. A row is thus at most a pass (FOLLOW_EVERY_MS) behind in
 * the table of the release that did not do the write, as a projection is behind its write in QUEUED
 * mode. The tables of versions no longer run are dropped by `npm run sync -- shapes --drop-old`.
 */

/** One version's row in sync_shape. */
export interface ShapeRow {
  entity_type: string;
  version: number;
  table_name: string;
  state: 'building' | 'ready';
  created_at: Date;
  ready_at: Date | null;
  last_id: string | null;
  rows_done: number;
  rows_total: number;
  followed_to: Date | null;
  seen_at: Date | null;
}

const ROW_COLUMNS =
  'entity_type, version, table_name, state, created_at, ready_at, last_id, ' +
  'rows_done::float8 AS rows_done, rows_total::float8 AS rows_total, followed_to, seen_at';

/** How often a worker follows the other versions (and builds what is waiting). */
export const FOLLOW_EVERY_MS = 2000;
/** How often processes say which versions they run (sync_shape.seen_at). */
export const ANNOUNCE_EVERY_MS = 10_000;
/** Ids refreshed per transaction when following. */
const FOLLOW_CHUNK = 1000;

/** Keys of the session advisory locks of a build and of a follow pass (the second key: the table's hash). */
const BUILD_LOCK = 710_052_304;
const FOLLOW_LOCK = 710_052_305;

/** A table name read from sync_shape, checked before it is written into a statement. */
function checkedName(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`sync_shape names a table "${name}" that is not a plain lower-case name`);
  return name;
}

const SQL_TYPE: Record<ColumnType, string> = { uuid: 'uuid', boolean: 'boolean', timestamptz: 'timestamptz', text: 'text', int: 'integer' };

export async function shapeRows(db: Queryable): Promise<ShapeRow[]> {
  const { rows } = await db.query<ShapeRow>(`SELECT ${ROW_COLUMNS} FROM sync_shape ORDER BY entity_type, version`);
  return rows;
}

/** A version this code declares whose table cannot be served yet. */
export interface PendingShape {
  entityType: string;
  version: number;
  table: string;
  /** 'missing': `npm run migrate` has not created the table; 'building': the workers are filling it. */
  state: 'missing' | 'building';
  done: number;
  total: number;
}

/**
 * The versions of `model` that cannot be served yet. A table with no row was created by a
 * migration and has been kept by the syncs since: it is ready.
 */
export async function pendingShapes(db: Queryable, model: readonly Entity[] = MODEL): Promise<PendingShape[]> {
  const { rows } = await db.query<{
    entity_type: string;
    version: number;
    table_name: string;
    present: boolean;
    state: string | null;
    done: number;
    total: number;
  }>(
    `SELECT t.entity_type, t.version, t.table_name, to_regclass(t.table_name) IS NOT NULL AS present,
            s.state, coalesce(s.rows_done, 0)::float8 AS done, coalesce(s.rows_total, 0)::float8 AS total
       FROM unnest($1::text[], $2::int[], $3::text[]) AS t(entity_type, version, table_name)
       LEFT JOIN sync_shape s USING (entity_type, version)`,
    declared(model),
  );
  return rows
    .filter((r) => !r.present || r.state === 'building')
    .map((r) => ({
      entityType: r.entity_type,
      version: r.version,
      table: r.table_name,
      state: r.present ? 'building' : 'missing',
      done: r.done,
      total: r.total,
    }));
}

/** One line for logs, /ready and errors: `post v2 (tv_post_v2) building, 41% (8,200 of 20,000 rows)`. */
export function describePending(p: PendingShape): string {
  if (p.state === 'missing') return `${p.entityType} v${p.version} (${p.table}) has no table yet: run \`npm run migrate\``;
  const pct = p.total ? Math.min(99, Math.floor((100 * p.done) / p.total)) : 0;
  return (
    `${p.entityType} v${p.version} (${p.table}) building, ${pct}% ` +
    `(${p.done.toLocaleString('en-US')} of about ${p.total.toLocaleString('en-US')} rows)`
  );
}

const declared = (model: readonly Entity[]) => [model.map((e) => e.name), model.map((e) => e.version), model.map((e) => e.view)];

/** Says that a process of these versions runs (and registers a migration-made table as ready). */
export async function announceShapes(db: Queryable, model: readonly Entity[] = MODEL): Promise<void> {
  await db.query(
    `INSERT INTO sync_shape (entity_type, version, table_name, state, ready_at, followed_to, seen_at)
     SELECT t.entity_type, t.version, t.table_name, 'ready', now(), now(), now()
       FROM unnest($1::text[], $2::int[], $3::text[]) AS t(entity_type, version, table_name)
      WHERE to_regclass(t.table_name) IS NOT NULL
     ON CONFLICT (entity_type, version) DO UPDATE SET seen_at = now()`,
    declared(model),
  );
}

export interface PreparedShape {
  entityType: string;
  version: number;
  table: string;
  /** The table its structure was copied from. */
  from: string;
}

/**
 * Creates the table of every version of `model` that has none, as a copy of the structure of the
 * entity's newest other table (columns, indexes, constraints, grants), with the plain columns made
 * to match the declaration, and registers it as 'building'. For the owner of the schema
 * (`npm run migrate`); one transaction, idempotent.
 */
export async function prepareShapes(pool: pg.Pool, model: readonly Entity[] = MODEL): Promise<PreparedShape[]> {
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [BUILD_LOCK]);
    const created: PreparedShape[] = [];
    for (const e of model) {
      const { rows } = await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [e.view]);
      if (rows[0]!.present) continue;
      const from = await copySource(client, e);
      if (!from)
        throw new Error(
          `${e.name} v${e.version}: no table of another version of ${e.name} to copy the structure of ${e.view} from ` +
            `(the migrations create version 1, ${e.base})`,
        );
      await client.query(`CREATE TABLE ${e.view} (LIKE ${from} INCLUDING ALL)`);
      const { rows: cols } = await client.query<{ name: string }>(
        `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
        [e.view],
      );
      const have = new Set(cols.map((c) => c.name));
      const keep = new Set(['id', 'data', 'synced_at', ...Object.keys(e.columns)]);
      for (const c of have) if (!keep.has(c)) await client.query(`ALTER TABLE ${e.view} DROP COLUMN ${c}`);
      for (const [c, type] of Object.entries(e.columns))
        if (!have.has(c)) await client.query(`ALTER TABLE ${e.view} ADD COLUMN ${c} ${SQL_TYPE[type]}`);
      // The roles that may use the table copied from may use this one alike.
      const { rows: grants } = await client.query<{ sql: string }>(
        `SELECT format('GRANT %s ON %I TO %I', string_agg(privilege_type, ', '), $2::text, grantee) AS sql
           FROM information_schema.role_table_grants
          WHERE table_schema = current_schema() AND table_name = $1 AND grantee <> current_user
          GROUP BY grantee`,
        [from, e.view],
      );
      for (const g of grants) await client.query(g.sql);
      await client.query(
        `INSERT INTO sync_shape (entity_type, version, table_name, state, rows_total, followed_to)
         VALUES ($1, $2, $3, 'building', $4, now())
         ON CONFLICT (entity_type, version) DO UPDATE
            SET table_name = EXCLUDED.table_name, state = 'building', ready_at = NULL, last_id = NULL, rows_done = 0,
                rows_total = EXCLUDED.rows_total, followed_to = now(), created_at = now()`,
        [e.name, e.version, e.view, await estimateRows(client, e.table)],
      );
      created.push({ entityType: e.name, version: e.version, table: e.view, from });
    }
    return created;
  });
}

/** The table of the entity's newest other version that exists (registered, or its version 1 table). */
async function copySource(client: Queryable, e: Entity): Promise<string | undefined> {
  const { rows } = await client.query<{ table_name: string }>(
    `SELECT table_name FROM (
       SELECT table_name, version FROM sync_shape WHERE entity_type = $1 AND version <> $2
       UNION ALL SELECT $3, 1) v
      WHERE to_regclass(table_name) IS NOT NULL AND table_name <> $4
      ORDER BY version DESC LIMIT 1`,
    [e.name, e.version, e.base, e.view],
  );
  return rows[0]?.table_name;
}

export interface BuildProgress {
  entityType: string;
  version: number;
  table: string;
  event: 'start' | 'chunk' | 'done';
  done: number;
  total: number;
  elapsedMs: number;
}

export interface BuildOptions {
  model?: readonly Entity[];
  chunk?: number;
  onProgress?: (progress: BuildProgress) => void;
  signal?: AbortSignal;
  logger?: Logger;
}

export interface BuildResult {
  /** Tables built to the end (now ready). */
  built: string[];
  /** Tables another process is building. */
  busy: string[];
  stopped: boolean;
}

/**
 * Fills the tables of `model`'s versions that are 'building', from where their last committed chunk
 * left off, then follows the other versions once and marks them 'ready'. One process builds a table
 * at a time (a session advisory lock); others skip it.
 */
export async function buildShapes(pool: pg.Pool, options: BuildOptions = {}): Promise<BuildResult> {
  const model = options.model ?? MODEL;
  const chunkSize = options.chunk ?? DEFAULT_REBUILD_CHUNK;
  const log = options.logger ?? silentLogger;
  const result: BuildResult = { built: [], busy: [], stopped: false };
  const pending = (await pendingShapes(pool, model)).filter((p) => p.state === 'building');
  for (const p of pending) {
    if (options.signal?.aborted) {
      result.stopped = true;
      break;
    }
    const e = model.find((m) => m.name === p.entityType)!;
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [
        BUILD_LOCK,
        e.view,
      ]);
      if (!rows[0]!.locked) {
        result.busy.push(e.view);
        continue;
      }
      try {
        const finished = await buildOne(pool, client, e, chunkSize, options, log);
        if (finished) result.built.push(e.view);
        else result.stopped = true;
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [BUILD_LOCK, e.view]).catch(() => undefined);
      }
    } catch (err) {
      broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
    if (result.stopped) break;
  }
  return result;
}

/** Walks one table to its end (true), or until the signal (false). */
async function buildOne(
  pool: pg.Pool,
  client: pg.PoolClient,
  e: Entity,
  chunkSize: number,
  options: BuildOptions,
  log: Logger,
): Promise<boolean> {
  const { rows } = await client.query<ShapeRow>(`SELECT ${ROW_COLUMNS} FROM sync_shape WHERE entity_type = $1 AND version = $2`, [
    e.name,
    e.version,
  ]);
  const row = rows[0];
  if (!row || row.state !== 'building') return true;
  const statements = statementsFor(e);
  const began = performance.now();
  let lo = row.last_id;
  let done = row.rows_done;
  let total = Math.max(row.rows_total, done);
  const report = (event: BuildProgress['event']) =>
    options.onProgress?.({
      entityType: e.name,
      version: e.version,
      table: e.view,
      event,
      done,
      total: Math.max(total, done),
      elapsedMs: performance.now() - began,
    });
  log.info({ table: e.view, from: lo }, `building ${e.name} v${e.version} (${e.view})${lo ? ', continuing' : ''}`);
  report('start');
  for (;;) {
    if (options.signal?.aborted) return false;
    const chunk = await refreshChunk(pool, client, {
      entityType: e.name,
      statements,
      lo,
      chunkSize,
      recount: false,
      record: (c) => [
        `UPDATE sync_shape SET last_id = coalesce($3::uuid, last_id), rows_done = rows_done + $4,
                               rows_total = greatest(rows_total, rows_done + $4)
          WHERE entity_type = $1 AND version = $2`,
        [e.name, e.version, c.last, c.ids],
      ],
    });
    done += chunk.ids;
    total = Math.max(total, done);
    if (chunk.hi === null) break;
    lo = chunk.hi;
    report('chunk');
  }
  // What the other releases wrote meanwhile, before readers are let in.
  await followShapes(pool, { model: [e], logger: log });
  await client.query(
    `UPDATE sync_shape SET state = 'ready', ready_at = now(), rows_total = rows_done WHERE entity_type = $1 AND version = $2`,
    [e.name, e.version],
  );
  report('done');
  log.info(
    { table: e.view, rows: done, ms: Math.round(performance.now() - began) },
    `${e.name} v${e.version} (${e.view}) is built: this release serves it`,
  );
  return true;
}

export interface FollowResult {
  /** Ids checked against this release's documents, and rows refreshed or removed. */
  checked: number;
  refreshed: number;
}

/**
 * One pass of following (see the comment at the top): for each entity of `model`, the rows the
 * tables of its other versions took since this version's watermark (sync_shape.followed_to), and
 * the rows of this version's table whose source is gone, refreshed in this version's table where
 * they differ from its documents. Versions whose processes were not seen since the watermark are
 * not read (nor are tables still building: a release's processes do not serve or take syncs until
 * its tables are built, so those tables take no writes but the build's). The next watermark is the
 * start of the oldest transaction still open on the database (a refresh stamps its rows with its
 * transaction's start and may commit after this pass has read), or the pass's start. One process
 * follows a table at a time.
 */
export async function followShapes(
  pool: pg.Pool,
  options: { model?: readonly Entity[]; logger?: Logger; onCommitted?: (changes: Changes) => void } = {},
): Promise<FollowResult> {
  const model = options.model ?? MODEL;
  const total: FollowResult = { checked: 0, refreshed: 0 };
  const { rows } = await pool.query<{ entity_type: string; followed_to: Date | null; next: Date; others: string[] }>(
    `WITH oldest AS (
       SELECT least(clock_timestamp(), (SELECT min(xact_start) FROM pg_stat_activity
                                         WHERE datname = current_database() AND pid <> pg_backend_pid())) AS next)
     SELECT s.entity_type, s.followed_to, oldest.next,
            ARRAY(SELECT o.table_name FROM sync_shape o
                   WHERE o.entity_type = s.entity_type AND o.version <> s.version AND o.state = 'ready'
                     AND to_regclass(o.table_name) IS NOT NULL
                     AND o.seen_at > s.followed_to - make_interval(secs => $3)) AS others
       FROM sync_shape s CROSS JOIN oldest
       JOIN unnest($1::text[], $2::int[]) AS m(entity_type, version) USING (entity_type, version)
      WHERE s.followed_to IS NOT NULL`,
    [model.map((e) => e.name), model.map((e) => e.version), (3 * ANNOUNCE_EVERY_MS) / 1000],
  );
  // With no other version to follow, the watermark only moves on.
  const idle = rows.filter((r) => !r.others.length);
  if (idle.length) {
    await pool.query(
      `UPDATE sync_shape s SET followed_to = greatest(s.followed_to, $3::timestamptz)
         FROM unnest($1::text[], $2::int[]) AS m(entity_type, version)
        WHERE s.entity_type = m.entity_type AND s.version = m.version`,
      [idle.map((r) => r.entity_type), idle.map((r) => model.find((e) => e.name === r.entity_type)!.version), idle[0]!.next],
    );
  }
  for (const r of rows.filter((row) => row.others.length)) {
    const e = model.find((m) => m.name === r.entity_type)!;
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      const { rows: lock } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [
        FOLLOW_LOCK,
        e.view,
      ]);
      if (!lock[0]!.locked) continue;
      try {
        const one = await followOne(client, e, r.followed_to!, r.next, r.others.map(checkedName), options.onCommitted);
        total.checked += one.checked;
        total.refreshed += one.refreshed;
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [FOLLOW_LOCK, e.view]).catch(() => undefined);
      }
    } catch (err) {
      broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }
  if (total.refreshed) options.logger?.debug(total, 'followed the other versions of the documents');
  return total;
}

async function followOne(
  client: pg.PoolClient,
  e: Entity,
  from: Date,
  next: Date,
  others: string[],
  onCommitted?: (changes: Changes) => void,
): Promise<FollowResult> {
  const ids = new Set<string>();
  for (const other of others) {
    const changed = await client.query<{ id: string }>(`SELECT id FROM ${other} WHERE synced_at >= $1`, [from]);
    for (const r of changed.rows) ids.add(r.id);
  }
  const gone = await client.query<{ id: string }>(
    `SELECT t.id FROM ${e.view} t WHERE NOT EXISTS (SELECT 1 FROM ${e.table} s WHERE s.id = t.id)`,
  );
  for (const r of gone.rows) ids.add(r.id);
  const refreshed = await refreshWhereStale(client, e, [...ids], onCommitted);
  // Another process may have followed further meanwhile (a pass that started before this one's lock).
  await client.query('UPDATE sync_shape SET followed_to = greatest(followed_to, $3::timestamptz) WHERE entity_type = $1 AND version = $2', [
    e.name,
    e.version,
    next,
  ]);
  return { checked: ids.size, refreshed };
}

/**
 * Refreshes, in `e`'s table, those of `ids` whose row differs from the documents (missing, stale,
 * orphaned): a read-only check per chunk, then the claim and the write of the ones that differ, in
 * a transaction per chunk. Returns how many it refreshed.
 */
export async function refreshWhereStale(
  client: pg.PoolClient,
  e: Entity,
  ids: readonly string[],
  onCommitted?: (changes: Changes) => void,
): Promise<number> {
  const s = statementsFor(e);
  let refreshed = 0;
  for (let i = 0; i < ids.length; i += FOLLOW_CHUNK) {
    const { rows } = await client.query<{ id: string }>(s.staleAmong, [ids.slice(i, i + FOLLOW_CHUNK)]);
    if (!rows.length) continue;
    const stale = rows.map((r) => r.id).sort();
    await inTransaction(client, async () => {
      await client.query(s.claim, [stale]);
      await client.query(s.write, [stale]);
    });
    onCommitted?.({ [e.name]: stale });
    refreshed += stale.length;
  }
  return refreshed;
}

/**
 * Drops the tables of versions this code does not declare whose processes were not seen for
 * `unseenMs` (default 2 minutes), and their rows. For the owner of the schema.
 */
export async function dropOldShapes(
  pool: pg.Pool,
  options: { model?: readonly Entity[]; unseenMs?: number } = {},
): Promise<{ dropped: string[]; kept: string[] }> {
  const model = options.model ?? MODEL;
  const unseen = options.unseenMs ?? 120_000;
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [BUILD_LOCK]);
    const rows = await shapeRows(client);
    const ours = new Set(model.map((e) => e.view));
    const dropped: string[] = [];
    const kept: string[] = [];
    for (const r of rows) {
      if (ours.has(r.table_name) || !model.some((e) => e.name === r.entity_type)) continue;
      const lastSeen = r.seen_at?.getTime() ?? r.created_at.getTime();
      if (Date.now() - lastSeen < unseen) {
        kept.push(r.table_name);
        continue;
      }
      await client.query(`DROP TABLE IF EXISTS ${checkedName(r.table_name)}`);
      await client.query('DELETE FROM sync_shape WHERE entity_type = $1 AND version = $2', [r.entity_type, r.version]);
      dropped.push(r.table_name);
    }
    return { dropped, kept };
  });
}
