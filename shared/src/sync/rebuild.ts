import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { commitNow, inTransaction, type Queryable } from '../db/pool';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';
import { entityOf } from '../model';
import type { EntitySyncResult, SyncReport } from './engine';
import { SyncError } from './errors';
import type { Changes } from './feed';
import { STATEMENTS, type ProjectionStatements } from './statements';
import { SYNC_ORDER, type EntityType } from './types';
import { KEPT_COUNT_OWNERS, recountKeptCounts } from './kept-counts';

/**
 * The online rebuild (`npm run sync -- rebuild`): every projection recomputed from tb_*, beside live
 * writes.
 *
 * For each entity type in SYNC_ORDER it walks the ids in id order by keyset, a chunk at a time
 * (STATEMENTS[t].chunk: the tb_* and the tv_* ids after the last chunk, so that orphaned tv_* rows
 * are removed too), and refreshes each chunk in a short transaction of its own with the claim and
 * write statements of an incremental refresh: the claim protocol (statements.ts) is what makes a
 * refresh safe beside live writers and other syncs, so no table is locked and a live write waits at
 * most for the one chunk that holds its rows. Kept counts (users', posts') are recounted for the
 * chunk's ids after its refresh, in the same transaction (kept-counts.ts, "Lock order"). Memory does
 * not grow with the data: one chunk's ids at a time.
 *
 * Progress is one row per entity type in sync_rebuild (migration 008), updated in each chunk's own
 * transaction, so a rebuild killed at any moment is continued by the next from its last committed
 * chunk; one that finished is started afresh. One rebuild runs at a time (a session advisory lock).
 */

/**
 * Ids per chunk when REBUILD_CHUNK is unset, chosen by measurement (`npm run bench:rebuild`: 1,000
 * users, 20,000 posts, 400,000 comments, every document stale, INLINE writes beside it, 2 CPUs) so
 * that a chunk's transaction, which holds its rows until it commits, stays near 50 ms: 200 posts
 * (20 comments each, the heaviest document) took 61 ms (p50), 200 users 40 ms (their kept counts
 * recounted from ~400 comments each), 200 comments 14 ms; the same at twice the data. Chunks of
 * 500 made posts 158 ms; chunks of 100 made the whole rebuild 50% slower (more round trips) for no
 * lower write latency.
 */
export const DEFAULT_REBUILD_CHUNK = 200;

/** Key of the session advisory lock held by a running rebuild (an arbitrary constant; see migrations' 7_100_523_001). */
const REBUILD_LOCK_KEY = 7_100_523_003;

/** Attempts of a chunk that fails with a deadlock or a serialization failure (another transaction's fault, gone on retry). */
const CHUNK_ATTEMPTS = 3;
const RETRY_CODES = new Set(['40P01', '40001']);

export interface RebuildOptions {
  /** Ids per chunk (REBUILD_CHUNK). */
  chunk?: number;
  /** Ignore an unfinished run saved by an earlier process: start afresh (`--restart`). */
  restart?: boolean;
  /** Called once the run is chosen (new or continued), before the first chunk. */
  onStart?: (start: RebuildStart) => void;
  /** Called when an entity type starts, after each committed chunk, and when it is done. */
  onProgress?: (progress: RebuildProgress) => void;
  /** When aborted, the rebuild stops after the chunk in hand (committed) and returns `stopped: true`. */
  signal?: AbortSignal;
  logger?: Logger;
  /** After each chunk that changed rows has committed, its ids (for the change feed). */
  onCommitted?: (changes: Changes) => void;
}

/** One entity type's progress, over the whole run (earlier processes included) unless said otherwise. */
export interface RebuildProgress {
  runId: string;
  entityType: EntityType;
  /** 'start' before its first chunk in this process, 'chunk' after each chunk, 'done' when finished. */
  event: 'start' | 'chunk' | 'done';
  /** Estimated ids to walk: tb_* rows by the planner's statistics (pg_class.reltuples), or counted when it has none. */
  total: number;
  /** Ids walked. */
  done: number;
  /** Ids walked by earlier processes of the run (rates are of this process's share). */
  doneBefore: number;
  chunks: number;
  /** Milliseconds this process has spent on the entity type. */
  elapsedMs: number;
}

export interface RebuildStart {
  runId: string;
  startedAt: Date;
  resumed: boolean;
  /** Chunks committed by earlier processes of the run. */
  chunksBefore: number;
  /** Where the walk starts: the first entity type not done, after this id (null: its first id). */
  from: { entityType: EntityType; after: string | null } | undefined;
}

export interface RebuildResult {
  runId: string;
  startedAt: Date;
  /** The run was started by an earlier process (killed or stopped) and continued here. */
  resumed: boolean;
  /** Per entity type, over the whole run: operation 'full', count = ids walked. */
  report: SyncReport;
  /** Chunks committed by this process, and by earlier processes of the run. */
  chunks: number;
  chunksBefore: number;
  /** Rows whose kept counts differed from the rows they count, recounted (whole run). */
  recounted: number;
  /** Stopped by the signal before the end: a later rebuild continues. */
  stopped: boolean;
  durationMs: number;
}

/** The rebuild could not start: another one holds the lock. */
export class RebuildBusyError extends Error {
  override readonly name = 'RebuildBusyError';
}

interface ProgressRow {
  run_id: string;
  entity_type: string;
  started_at: Date;
  last_id: string | null;
  done: boolean;
  chunks: number;
  entities: number;
  updated: number;
  deleted: number;
  recounted: number;
  duration_ms: number;
}

const PROGRESS_COLUMNS = 'run_id, entity_type, started_at, last_id, done, chunks, entities, updated, deleted, recounted, duration_ms';

/**
 * A chunk's transaction does not wait for its commit to reach the disk: if the server crashes
 * right after, the chunk and its progress row are lost together and the next rebuild does that
 * chunk again. Live writes keep their own setting. It saves a WAL flush per chunk.
 */
const CHUNK_SETTINGS = { synchronous_commit: 'off' } as const;

/** A committed chunk: adds to its entity's row (same transaction as the chunk). */
const RECORD_CHUNK = `
  UPDATE sync_rebuild
     SET last_id = coalesce($3::uuid, last_id), done = $4, chunks = chunks + 1, entities = entities + $5,
         updated = updated + $6, deleted = deleted + $7, recounted = recounted + $8,
         duration_ms = duration_ms + $9, updated_at = now()
   WHERE run_id = $1 AND entity_type = $2`;

/** The run's rows: a new run's, or the missing ones of a resumed run (an entity type declared since). */
const ADD_ENTITIES = `
  INSERT INTO sync_rebuild (run_id, entity_type, started_at)
  SELECT $1, t, $2 FROM unnest($3::text[]) t
  ON CONFLICT (run_id, entity_type) DO NOTHING`;

/** Runs the online rebuild on a connection of its own from `pool` (see the comment at the top). */
export async function rebuildOnline(pool: pg.Pool, options: RebuildOptions = {}): Promise<RebuildResult> {
  const chunkSize = options.chunk ?? DEFAULT_REBUILD_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new Error(`rebuild: the chunk size must be a positive integer (got ${chunkSize})`);
  const log = options.logger ?? silentLogger;
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await takeLock(client);
    try {
      return await run(pool, client, chunkSize, options, log);
    } catch (err) {
      // The connection may be what failed: it is closed rather than given back to the pool.
      broken = err as Error;
      throw err;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [REBUILD_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    client.release(broken);
  }
}

async function takeLock(client: pg.PoolClient): Promise<void> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [REBUILD_LOCK_KEY]);
  if (rows[0]?.locked) return;
  const holder = await client.query<{ pid: number; application_name: string; state: string }>(
    `SELECT a.pid, a.application_name, a.state
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid AND l.objsubid = 1`,
    [REBUILD_LOCK_KEY],
  );
  const h = holder.rows[0];
  throw new RebuildBusyError(
    'Another rebuild is running on this database' +
      `${h ? ` (server process ${h.pid}, ${h.application_name || 'no application name'}, ${h.state})` : ''}. ` +
      'Wait for it to finish. If the process that started it is gone, its server process ends when its statement does; ' +
      `to end it now: SELECT pg_terminate_backend(${h?.pid ?? '<pid>'});`,
  );
}

async function run(pool: pg.Pool, client: pg.PoolClient, chunkSize: number, options: RebuildOptions, log: Logger): Promise<RebuildResult> {
  const started = performance.now();
  const saved = await client.query<ProgressRow>(`SELECT ${PROGRESS_COLUMNS} FROM sync_rebuild ORDER BY started_at DESC`);
  const latest = saved.rows[0];
  // (A row of an entity type no longer declared does not keep a run unfinished.)
  const unfinished =
    latest !== undefined &&
    saved.rows.some((r) => r.run_id === latest.run_id && !r.done && SYNC_ORDER.includes(r.entity_type as EntityType));
  const resumed = unfinished && !options.restart;
  const runId = resumed ? latest.run_id : randomUUID();
  const startedAt = resumed ? latest.started_at : new Date();
  if (!resumed) {
    // The table holds the latest run only.
    await client.query('DELETE FROM sync_rebuild');
  }
  await client.query(ADD_ENTITIES, [runId, startedAt, SYNC_ORDER]);
  const rows = new Map(
    (await client.query<ProgressRow>(`SELECT ${PROGRESS_COLUMNS} FROM sync_rebuild WHERE run_id = $1`, [runId])).rows.map((r) => [
      r.entity_type,
      r,
    ]),
  );
  const chunksBefore = [...rows.values()].reduce((n, r) => n + r.chunks, 0);
  if (resumed) log.info({ runId, chunksBefore }, 'continuing the rebuild an earlier process left unfinished');
  const next = SYNC_ORDER.find((t) => !rows.get(t)!.done);
  options.onStart?.({
    runId,
    startedAt,
    resumed,
    chunksBefore,
    from: next ? { entityType: next, after: rows.get(next)!.last_id } : undefined,
  });

  let chunks = 0;
  let stopped = false;
  for (const entityType of SYNC_ORDER) {
    const row = rows.get(entityType)!;
    if (row.done) continue;
    if (options.signal?.aborted) {
      stopped = true;
      break;
    }
    const walked = await walk(pool, client, { runId, entityType, row, chunkSize, options });
    chunks += walked.chunks;
    if (walked.stopped) {
      stopped = true;
      break;
    }
  }

  const final = (await client.query<ProgressRow>(`SELECT ${PROGRESS_COLUMNS} FROM sync_rebuild WHERE run_id = $1`, [runId])).rows;
  const byType = new Map(final.map((r) => [r.entity_type, r]));
  const results: EntitySyncResult[] = SYNC_ORDER.map((entityType) => {
    const r = byType.get(entityType)!;
    return { entityType, count: r.entities, updated: r.updated, deleted: r.deleted, durationMs: r.duration_ms };
  });
  const recounted = final.reduce((n, r) => n + r.recounted, 0);
  if (recounted) log.warn({ rows: recounted }, 'kept counts differed from the rows; recounted');
  return {
    runId,
    startedAt,
    resumed,
    report: { operation: 'full', results },
    chunks,
    chunksBefore,
    recounted,
    stopped,
    durationMs: performance.now() - started,
  };
}

interface Walk {
  runId: string;
  entityType: EntityType;
  row: ProgressRow;
  chunkSize: number;
  options: RebuildOptions;
}

/** One entity type's chunks, from where its row says, to the end (or until the signal). */
async function walk(pool: pg.Pool, client: pg.PoolClient, w: Walk): Promise<{ chunks: number; stopped: boolean }> {
  const { runId, entityType, chunkSize, options } = w;
  const s = STATEMENTS[entityType];
  const total = Math.max(await estimateRows(client, entityOf(entityType).table), w.row.entities);
  let lo = w.row.last_id;
  let done = w.row.entities;
  let chunkCount = w.row.chunks;
  const doneBefore = done;
  const began = performance.now();
  const report = (event: RebuildProgress['event']) =>
    options.onProgress?.({
      runId,
      entityType,
      event,
      total: Math.max(total, done),
      done,
      doneBefore,
      chunks: chunkCount,
      elapsedMs: performance.now() - began,
    });
  report('start');
  let chunks = 0;
  for (;;) {
    if (options.signal?.aborted) return { chunks, stopped: true };
    const chunk = await refreshChunk(pool, client, {
      entityType,
      onCommitted: options.onCommitted,
      statements: s,
      lo,
      chunkSize,
      recount: KEPT_COUNT_OWNERS.includes(entityType),
      record: (c) => [RECORD_CHUNK, [runId, entityType, c.last, c.finished, c.ids, c.updated, c.deleted, c.recounted, c.durationMs]],
    });
    chunks += 1;
    chunkCount += 1;
    done += chunk.ids;
    if (chunk.hi === null) {
      report('done');
      return { chunks, stopped: false };
    }
    lo = chunk.hi;
    report('chunk');
  }
}

/** The planner's estimate of a table's rows, or a count when the table was never analyzed. */
export async function estimateRows(client: Queryable, table: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>('SELECT reltuples::float8 AS n FROM pg_class WHERE oid = $1::regclass', [table]);
  const n = rows[0]?.n ?? -1;
  if (n >= 0) return Math.round(n);
  const counted = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return counted.rows[0]?.n ?? 0;
}

/** What a chunk did, for its progress row (written in the chunk's transaction). */
export interface ChunkOutcome {
  /** The chunk's upper bound (its last id when it is the last chunk; null when it had none). */
  last: string | null;
  /** It was the last chunk. */
  finished: boolean;
  ids: number;
  updated: number;
  deleted: number;
  recounted: number;
  durationMs: number;
}

export interface ChunkInput {
  entityType: EntityType;
  /** The statements of the projection table being walked (STATEMENTS[entityType], or another version's). */
  statements: ProjectionStatements;
  /** The last id of the previous chunk (null: start at the first). */
  lo: string | null;
  chunkSize: number;
  /** Recount the chunk's kept counts (kept-counts.ts) after its refresh. */
  recount: boolean;
  /** The progress statement and its values, sent with COMMIT. */
  record: (outcome: ChunkOutcome) => [string, unknown[]];
  /** After the chunk committed, when it changed rows: its ids. */
  onCommitted?: ((changes: Changes) => void) | undefined;
}

/**
 * One chunk in one transaction: its ids, the claim and the write, the recount of their kept counts
 * (when asked), and the progress row. Retried on a deadlock or serialization failure; any other
 * failure is recorded in sync_log and raised as SyncError (the chunk rolled back; a rerun continues
 * from the chunk before).
 */
export async function refreshChunk(pool: pg.Pool, client: pg.PoolClient, c: ChunkInput): Promise<{ hi: string | null; ids: number }> {
  const s = c.statements;
  for (let attempt = 1; ; attempt += 1) {
    const began = performance.now();
    let ids: string[] = [];
    try {
      // BEGIN and the chunk's ids sent together (PostgreSQL runs them in order), as are the progress
      // row and COMMIT below: a chunk costs three round trips (five with a recount: its two).
      return await inTransaction(
        client,
        async () => {
          const { rows } = await client.query<{ hi: string | null; ids: string[] }>(s.chunk, [c.lo, c.chunkSize]);
          const hi = rows[0]?.hi ?? null;
          ids = rows[0]?.ids ?? [];
          let recounted = 0;
          let updated = 0;
          let deleted = 0;
          if (ids.length) {
            // Claim, then write, sent together (PostgreSQL runs them in order; see statements.ts).
            const [claim, write] = await Promise.allSettled([
              client.query(s.claim, [ids]),
              client.query<{ updated: number; deleted: number }>(s.writeChunk, [ids]),
            ]);
            if (claim.status === 'rejected') throw claim.reason;
            if (write.status === 'rejected') throw write.reason;
            updated = write.value.rows[0]?.updated ?? 0;
            deleted = write.value.rows[0]?.deleted ?? 0;
            // The kept counts after the projection rows, in the order commands lock them (kept-counts.ts, "Lock order").
            if (c.recount) recounted = (await recountKeptCounts(client, c.entityType, ids)).length;
          }
          const last = hi ?? ids.at(-1) ?? null;
          const [text, values] = c.record({
            last,
            finished: hi === null,
            ids: ids.length,
            updated,
            deleted,
            recounted,
            durationMs: performance.now() - began,
          });
          const recorded = client.query(text, values);
          commitNow(client);
          await recorded;
          return { hi, ids: ids.length, changed: updated + deleted + recounted > 0 };
        },
        { settings: CHUNK_SETTINGS, beginWithFirstStatement: true },
      ).then((done) => {
        if (done.changed) c.onCommitted?.({ [c.entityType]: ids });
        return { hi: done.hi, ids: done.ids };
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code && RETRY_CODES.has(code) && attempt < CHUNK_ATTEMPTS) continue;
      await recordFailure(pool, c.entityType, ids.length, performance.now() - began, err);
      throw new SyncError(c.entityType, ids.length, err);
    }
  }
}

async function recordFailure(pool: pg.Pool, entityType: EntityType, count: number, durationMs: number, err: unknown): Promise<void> {
  const message = err instanceof Error ? err.message : String(err);
  await pool
    .query(
      'INSERT INTO sync_log (entity_type, operation, entity_count, duration_ms, success, error_message) ' +
        "VALUES ($1, 'full', $2, $3, false, $4)",
      [entityType, count, durationMs, message],
    )
    .catch(() => undefined);
}
