import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
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

/** pg-boss's database adapter over our client, so the enqueue is part of the caller's transaction. */
export function transactionDb(client: pg.ClientBase): { executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }> } {
  return { executeSql: (text, values) => client.query(text, values as unknown[]) };
}

/**
 * The producer side of the sync queue.
 *
 * `enqueue` runs inside the caller's transaction (through pg-boss's `db` option): a write that rolls
 * back leaves no job, and a write that commits always has its job.
 */
export class SyncQueue {
  constructor(
    private readonly boss: PgBoss,
    private readonly pool: pg.Pool,
    private readonly defaults: { deferSeconds: number } = { deferSeconds: 30 },
  ) {}

  /** Enqueues the refresh of `plan` as part of `client`'s open transaction. Returns the job ids. */
  async enqueue(client: pg.ClientBase, plan: SyncPlan, options: EnqueueOptions): Promise<string[]> {
    if (!planSize(plan)) return [];
    const startAfter =
      options.mode === 'DEFERRED' ? new Date(Date.now() + 1000 * (options.deferSeconds ?? this.defaults.deferSeconds)) : undefined;
    const jobs = splitPlan(plan, MAX_IDS_PER_JOB).map((part) => {
      const data: SyncJobData = {
        v: 1,
        plan: part,
        ...(options.expand ? { expand: true as const } : {}),
        mode: options.mode,
        enqueuedAt: options.enqueuedAt ?? Date.now(),
      };
      // Ids chosen here so the caller knows them (pg-boss returns none for a batch insert).
      return { id: randomUUID(), data, priority: SYNC_PRIORITY[options.mode], ...(startAfter ? { startAfter } : {}) };
    });
    await this.boss.insert(SYNC_QUEUE, jobs, { db: transactionDb(client) });
    return jobs.map((j) => j.id);
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
