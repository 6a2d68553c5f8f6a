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

/** Takes up to $1 rows no other relay holds, and removes them: they become jobs in the same transaction. */
const TAKE = `
  DELETE FROM sync_outbox
   WHERE id IN (SELECT id FROM sync_outbox LIMIT $1 FOR UPDATE SKIP LOCKED)
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
 * workers run it every poll interval) moves committed rows to pg-boss in batches, under the ids
 * chosen at enqueue, so a sync token names the job before and after the move. A row is in the
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
   * and inserted as jobs (one pg-boss insert per trace context: the untraced ones together). Rows
   * another relay holds are skipped, so workers relay side by side. Returns how many it moved.
   */
  async relay(limit = RELAY_BATCH): Promise<number> {
    return withTransaction(this.pool, async (client) => {
      const { rows } = await client.query<OutboxRow>(TAKE, [limit]);
      const byTrace = new Map<string, OutboxRow[]>();
      for (const row of rows) {
        const key = row.trace ? JSON.stringify(row.trace) : '';
        const group = byTrace.get(key);
        if (group) group.push(row);
        else byTrace.set(key, [row]);
      }
      for (const [key, group] of byTrace) {
        const jobs = group.map((r) => ({
          id: r.id,
          data: r.data,
          priority: r.priority,
          ...(r.start_after ? { startAfter: r.start_after } : {}),
        }));
        // pg-boss stores the trace context active at its insert on the jobs (propagateContext).
        const parent = key ? propagation.extract(ROOT_CONTEXT, group[0]!.trace) : ROOT_CONTEXT;
        await context.with(parent, () => this.boss.insert(SYNC_QUEUE, jobs, { db: transactionDb(client) }));
      }
      return rows.length;
    });
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

/** Of these job ids, those still in the outbox: committed, not yet relayed to pg-boss. */
export async function unrelayedJobs(db: Pick<pg.Pool, 'query'>, ids: readonly string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>('SELECT id FROM sync_outbox WHERE id = ANY($1::uuid[])', [ids]);
  return new Set(rows.map((r) => r.id));
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
