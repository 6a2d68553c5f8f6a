import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { context, propagation, ROOT_CONTEXT, trace, TraceFlags } from '@opentelemetry/api';
import type { PgBoss } from 'pg-boss';
import type { SqlPart } from '../db/compose';
import { withTransaction } from '../db/pool';
import { planSync } from '../sync/dependencies';
import { emptyPlan, ENTITY_TYPES, mergePlans, planSize, type ChangeSet, type SyncPlan } from '../sync/types';
import { SYNC_QUEUE } from './queues';

/** When a mutation's projections are refreshed (the GraphQL `SyncMode`). */
export type SyncMode = 'INLINE' | 'QUEUED' | 'DEFERRED';
export const SYNC_MODES: readonly SyncMode[] = ['INLINE', 'QUEUED', 'DEFERRED'];

/** The payload of a job on the sync queue. */
export interface SyncJobData {
  /** Payload format version. */
  v: 1;
  /**
   * Projections to refresh, already expanded by the dependency map; or, with `expand`, the changes
   * themselves, which the worker expands and enqueues again as jobs of at most MAX_IDS_PER_JOB ids
   * (a fan-out too large for the command's own transaction).
   */
  plan: SyncPlan;
  expand?: true;
  mode: 'QUEUED' | 'DEFERRED';
  /**
   * Epoch ms at which the writing transaction enqueued the job, just before its COMMIT: the start
   * of the projection lag the worker measures.
   */
  enqueuedAt: number;
  /**
   * A job the relay merged from several writes' outbox rows: each write's own job id (the one its
   * sync token names), plan and time. `plan` is their union and `enqueuedAt` the earliest.
   */
  writes?: MergedWrite[];
}

export interface MergedWrite {
  id: string;
  plan: SyncPlan;
  enqueuedAt: number;
}

/** pg-boss fetches higher priorities first: QUEUED work always goes before DEFERRED work. */
export const SYNC_PRIORITY = { QUEUED: 10, DEFERRED: 0 } as const;

/**
 * Ids per job. A plan larger than this (a user with thousands of comments renamed) is split over
 * several jobs so that no job payload grows without bound and batches stay even.
 */
export const MAX_IDS_PER_JOB = 2000;

export interface EnqueueOptions {
  mode: 'QUEUED' | 'DEFERRED';
  /** DEFERRED only: seconds before the job becomes available. */
  deferSeconds?: number;
  /** `plan` is changes for the worker to expand (SyncJobData.expand). */
  expand?: boolean;
  /** When the write was made, if earlier than now (a fan-out's jobs keep their write's time). */
  enqueuedAt?: number;
}

/** pg-boss's database adapter over our client, so the insert is part of the caller's transaction. */
export function transactionDb(client: pg.ClientBase): { executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }> } {
  return { executeSql: (text, values) => client.query(text, values as unknown[]) };
}

/** Outbox rows a relay moves to pg-boss per transaction. */
const RELAY_BATCH = 1000;

/** One outbox row per job, from the JSON array of the jobs (migration 011). */
const RECORD = `
  INSERT INTO sync_outbox (id, data, priority, start_after, trace)
  SELECT id, data, priority, start_after, trace
    FROM jsonb_to_recordset($1::jsonb) AS j(id uuid, data jsonb, priority int, start_after timestamptz, trace jsonb)`;

/** Which merged job carries each write (migration 012). */
const RECORD_MERGED = 'INSERT INTO sync_relayed (id, job_id) SELECT * FROM unnest($1::uuid[], $2::uuid[])';

/**
 * Takes up to $1 rows no other relay holds, and removes them: they become jobs in the same
 * transaction. Through the primary key (ORDER BY id), not a sequential scan: the rows deleted by
 * earlier passes stay in the table until vacuum, and a sequential scan reads every one of them again
 * on each pass (a relay of 90 rows went from 4 to 18 ms as they piled up), while the index marks
 * their entries dead once seen and later scans skip them (2.5 ms throughout).
 */
const TAKE = `
  DELETE FROM sync_outbox
   WHERE id IN (SELECT id FROM sync_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
  RETURNING id, data, priority, start_after, trace`;

interface OutboxRow {
  id: string;
  data: SyncJobData;
  priority: number;
  start_after: Date | null;
  trace: Record<string, string> | null;
}

/**
 * The W3C trace context of the active span when it is sampled, for the job to continue its trace
 * (null otherwise: an unsampled context would make every job a group of its own in the relay).
 */
function sampledTraceContext(): Record<string, string> | null {
  const span = trace.getSpan(context.active())?.spanContext();
  if (!span || !(span.traceFlags & TraceFlags.SAMPLED)) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return Object.keys(carrier).length ? carrier : null;
}

/**
 * The sync queue: jobs on pg-boss's queue SYNC_QUEUE, reached through the sync outbox.
 *
 * `enqueue` records the jobs in the outbox (migration 011) as part of the caller's transaction: a
 * write that rolls back leaves no job, and a write that commits always has its job. `relay` (the
 * workers run it every poll interval) moves committed rows to pg-boss in batches, merging the rows
 * due now into one job (sync_relayed, migration 012, then says which job carries each write); a sync
 * token names the id chosen at enqueue before and after the move (`locateJobs`). A row is in the
 * outbox or its job is in pg-boss, never neither: the relay deletes and inserts in one transaction.
 */
export class SyncQueue {
  constructor(
    private readonly boss: PgBoss,
    private readonly pool: pg.Pool,
    private readonly defaults: { deferSeconds: number } = { deferSeconds: 30 },
  ) {}

  /** Records the refresh of `plan` as part of `client`'s open transaction. Returns the job ids. */
  async enqueue(client: pg.ClientBase, plan: SyncPlan, options: EnqueueOptions): Promise<string[]> {
    const { ids, part } = this.outboxPart(plan, options);
    if (!ids.length) return [];
    await client.query(RECORD, part.values as unknown[]);
    return ids;
  }

  /** The outbox rows of `plan` as a part of a command's one statement (CTE `outbox`), with their job ids. */
  outboxPart(plan: SyncPlan, options: EnqueueOptions): { ids: string[]; part: SqlPart } {
    if (!planSize(plan)) return { ids: [], part: { ctes: [], values: [] } };
    const startAfter =
      options.mode === 'DEFERRED' ? new Date(Date.now() + 1000 * (options.deferSeconds ?? this.defaults.deferSeconds)) : null;
    const traceContext = sampledTraceContext();
    const jobs = splitPlan(plan, MAX_IDS_PER_JOB).map((part) => {
      const data: SyncJobData = {
        v: 1,
        plan: part,
        ...(options.expand ? { expand: true as const } : {}),
        mode: options.mode,
        enqueuedAt: options.enqueuedAt ?? Date.now(),
      };
      // Ids chosen here so the caller knows them; the relay gives them to the jobs.
      return { id: randomUUID(), data, priority: SYNC_PRIORITY[options.mode], start_after: startAfter, trace: traceContext };
    });
    return { ids: jobs.map((j) => j.id), part: { ctes: [['outbox', RECORD]], values: [JSON.stringify(jobs)] } };
  }

  /**
   * Moves up to `limit` committed outbox rows to pg-boss, in one transaction: the rows are deleted
   * and inserted as jobs. The untraced rows due now (no delay, no fan-out) are merged, per mode, into
   * jobs of at most MAX_IDS_PER_JOB ids (`SyncJobData.writes`, and a row per write in sync_relayed for
   * the sync tokens); the others become a job each under their own id (one pg-boss insert per trace
   * context). Rows another relay holds are skipped, so workers relay side by side. Returns how many
   * it moved.
   */
  async relay(limit = RELAY_BATCH): Promise<number> {
    return withTransaction(this.pool, async (client) => {
      const { rows } = await client.query<OutboxRow>(TAKE, [limit]);
      const byTrace = new Map<string, OutboxRow[]>();
      const mergeable: OutboxRow[] = [];
      for (const row of rows) {
        if (!row.trace && !row.start_after && !row.data.expand && !row.data.writes) {
          mergeable.push(row);
          continue;
        }
        const key = row.trace ? JSON.stringify(row.trace) : '';
        const group = byTrace.get(key);
        if (group) group.push(row);
        else byTrace.set(key, [row]);
      }
      const merged = mergeRows(mergeable);
      const untraced = [...merged.jobs, ...(byTrace.get('') ?? []).map(outboxJob)];
      byTrace.delete('');
      if (merged.writeIds.length) await client.query(RECORD_MERGED, [merged.writeIds, merged.jobIds]);
      if (untraced.length) await this.boss.insert(SYNC_QUEUE, untraced, { db: transactionDb(client) });
      for (const group of byTrace.values()) {
        // pg-boss stores the trace context active at its insert on the jobs (propagateContext).
        const parent = propagation.extract(ROOT_CONTEXT, group[0]!.trace);
        await context.with(parent, () => this.boss.insert(SYNC_QUEUE, group.map(outboxJob), { db: transactionDb(client) }));
      }
      return rows.length;
    });
  }

  /**
   * A merged job that cannot be refreshed, split back into one job per write, under the writes' own
   * ids, in the caller's transaction (which settles the merged job): a poison write then fails alone,
   * and each sync token follows its own job again (its sync_relayed row is deleted here).
   */
  async split(client: pg.ClientBase, data: SyncJobData & { writes: MergedWrite[] }): Promise<void> {
    await forgetMerged(client, data.writes);
    await this.boss.insert(
      SYNC_QUEUE,
      data.writes.map((w) => ({
        id: w.id,
        data: { v: 1, plan: w.plan, mode: data.mode, enqueuedAt: w.enqueuedAt } satisfies SyncJobData,
        priority: SYNC_PRIORITY[data.mode],
      })),
      { db: transactionDb(client) },
    );
  }

  /**
   * Relays batches of RELAY_BATCH rows until one comes back short (the outbox holds no committed row
   * it could take) or `stop` says so. Returns how many rows it moved.
   */
  async relayAll(stop: () => boolean = () => false): Promise<number> {
    let moved = 0;
    for (;;) {
      const n = await this.relay(RELAY_BATCH);
      moved += n;
      if (n < RELAY_BATCH || stop()) return moved;
    }
  }

  /**
   * Expands fan-out jobs (SyncJobData.expand), in the caller's transaction: their changes through
   * the dependency map, read now that their writes have committed, enqueued as plans of at most
   * MAX_IDS_PER_JOB ids. The new jobs keep the earliest write's time, so the lag measured is the
   * write's. Returns the new jobs' ids.
   */
  async expand(client: pg.ClientBase, fanOut: readonly SyncJobData[]): Promise<string[]> {
    if (!fanOut.length) return [];
    const plan = await planSync(client, mergePlans(fanOut.map((j) => j.plan)));
    return this.enqueue(client, plan, { mode: 'QUEUED', enqueuedAt: Math.min(...fanOut.map((j) => j.enqueuedAt)) });
  }

  /**
   * Adds syncs for changed entities directly, outside any mutation (the seed's
   * `sync_queue.add(post_id)`): applies the dependency map and enqueues, DEFERRED unless told.
   */
  async add(changes: ChangeSet, options: Partial<EnqueueOptions> = {}): Promise<string[]> {
    return withTransaction(this.pool, async (client) =>
      this.enqueue(client, await planSync(client, changes), { mode: options.mode ?? 'DEFERRED', ...options }),
    );
  }
}

/** An outbox row as the pg-boss job of the same id. */
function outboxJob(row: OutboxRow): { id: string; data: SyncJobData; priority: number; startAfter?: Date } {
  return { id: row.id, data: row.data, priority: row.priority, ...(row.start_after ? { startAfter: row.start_after } : {}) };
}

/**
 * Rows due now, merged per mode into jobs of at most MAX_IDS_PER_JOB ids; a group of one row stays
 * the job of its own id. Returns the jobs, and for each merged write its job (for sync_relayed).
 */
function mergeRows(rows: readonly OutboxRow[]): { jobs: ReturnType<typeof outboxJob>[]; writeIds: string[]; jobIds: string[] } {
  const out = { jobs: [] as ReturnType<typeof outboxJob>[], writeIds: [] as string[], jobIds: [] as string[] };
  const flush = (group: OutboxRow[]) => {
    if (group.length <= 1) {
      out.jobs.push(...group.map(outboxJob));
      return;
    }
    const id = randomUUID();
    const writes = group.map((r) => ({ id: r.id, plan: r.data.plan, enqueuedAt: r.data.enqueuedAt }));
    const data: SyncJobData = {
      v: 1,
      plan: mergePlans(writes.map((w) => w.plan)),
      mode: group[0]!.data.mode,
      enqueuedAt: Math.min(...writes.map((w) => w.enqueuedAt)),
      writes,
    };
    out.jobs.push({ id, data, priority: group[0]!.priority });
    for (const w of writes) {
      out.writeIds.push(w.id);
      out.jobIds.push(id);
    }
  };
  for (const mode of SYNC_MODES) {
    let group: OutboxRow[] = [];
    let size = 0;
    for (const row of rows) {
      if (row.data.mode !== mode) continue;
      const n = planSize(row.data.plan);
      if (group.length && size + n > MAX_IDS_PER_JOB) {
        flush(group);
        group = [];
        size = 0;
      }
      group.push(row);
      size += n;
    }
    flush(group);
  }
  return out;
}

/** The sync_relayed rows of these writes: their merged job settled, or was split. */
export async function forgetMerged(client: pg.ClientBase, writes: readonly MergedWrite[]): Promise<void> {
  await client.query('DELETE FROM sync_relayed WHERE id = ANY($1::uuid[])', [writes.map((w) => w.id)]);
}

/**
 * Where the jobs of these ids are, read in one snapshot: still in the outbox (committed, not yet
 * relayed), or carried by a merged job (`merged`: id -> that job's id). The others are jobs of
 * their own id.
 */
export async function locateJobs(
  db: Pick<pg.Pool, 'query'>,
  ids: readonly string[],
): Promise<{ unrelayed: Set<string>; merged: Map<string, string> }> {
  const { rows } = await db.query<{ id: string; job_id: string | null }>(
    `SELECT id, NULL::uuid AS job_id FROM sync_outbox WHERE id = ANY($1::uuid[])
     UNION ALL
     SELECT id, job_id FROM sync_relayed WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  const out = { unrelayed: new Set<string>(), merged: new Map<string, string>() };
  for (const r of rows) {
    if (r.job_id) out.merged.set(r.id, r.job_id);
    else out.unrelayed.add(r.id);
  }
  return out;
}

/** Splits a plan into parts of at most `max` ids in all. */
export function splitPlan(plan: SyncPlan, max: number): SyncPlan[] {
  if (planSize(plan) <= max) return [plan];
  const parts: SyncPlan[] = [];
  let current = emptyPlan();
  let size = 0;
  for (const type of ENTITY_TYPES) {
    for (const id of plan[type]) {
      if (size === max) {
        parts.push(current);
        current = emptyPlan();
        size = 0;
      }
      current[type].push(id);
      size += 1;
    }
  }
  if (size) parts.push(current);
  return parts;
}
