import { context, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import type pg from 'pg';
import type { SqlPart } from '../db/compose';
import { inSpan } from '../telemetry/in-span';
import { isPipelined, withTransaction, type Queryable } from '../db/pool';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';
import { planSync, planSyncBounded } from './dependencies';
import { SyncError } from './errors';
import type { Changes } from './feed';
import { DEFAULT_REBUILD_CHUNK, rebuildOnline, type RebuildOptions, type RebuildResult } from './rebuild';
import { FEW_IDS } from './scope';
import { createdProjection, STATEMENTS, type PreparedStatement } from './statements';
import { applyCountChanges, KEPT_COUNT_OWNERS, recountKeptCounts, type CountChange } from './kept-counts';
import { emptyPlan, ENTITY_TYPES, SYNC_ORDER, type ChangeSet, type EntityType, type SyncPlan } from './types';
import { verifyChunked, type VerifyOptions, type VerifyReport } from './verify';

export type { VerifyOptions, VerifyProblem, VerifyReport } from './verify';

export type SyncOperation = 'incremental' | 'full';

export interface EntitySyncResult {
  entityType: EntityType;
  /** Entities in the batch (ids asked for; for a full rebuild, documents computed). */
  count: number;
  /** Projection rows written because their document changed. */
  updated: number;
  /** Projection rows removed because their source is gone. */
  deleted: number;
  durationMs: number;
}

export interface SyncReport {
  operation: SyncOperation;
  results: EntitySyncResult[];
  /** The document refreshIn() was asked to return (`answer`), when it could return it. */
  answer?: Record<string, unknown>;
}

/** What the engine reports after each refresh of one entity type (metrics hook). */
export interface RefreshObservation {
  entityType: EntityType;
  operation: SyncOperation;
  count: number;
  durationMs: number;
  success: boolean;
}

export interface SyncEngineOptions {
  logger?: Logger;
  /** Called after every refresh of one entity type, successful or not (e.g. Prometheus metrics). */
  onRefresh?: (observation: RefreshObservation) => void;
  /**
   * Called after a transaction of the engine's own (refresh, syncChanges, all, the rebuild's and
   * the repair's chunks) has committed, with what it refreshed: for the change feed (feed.ts).
   * Refreshes in a caller's transaction (refreshIn) are the caller's to tell, after its commit.
   */
  onCommitted?: (changes: Changes) => void;
}

/** Attribute names of the sync spans (OpenTelemetry). */
export const SYNC_SPAN_ATTRIBUTES = {
  entityType: 'blog.sync.entity_type',
  entityCount: 'blog.sync.entity_count',
  operation: 'blog.sync.operation',
  durationMs: 'blog.sync.duration_ms',
  updated: 'blog.sync.updated',
  deleted: 'blog.sync.deleted',
} as const;

const tracer = trace.getTracer('blog-sync');

interface LogRow {
  entityType: EntityType;
  operation: SyncOperation;
  count: number;
  durationMs: number;
  success: boolean;
  error: string | null;
}

export interface RefreshOptions {
  /** Attributes for the sync spans (the worker's batch size and lag). */
  spanAttributes?: Attributes;
  /**
   * One refreshed entity whose new document the caller wants (an INLINE mutation's answer): it comes
   * back in the report's `answer`, from the refresh itself, when its type had at most FEW_IDS ids to
   * refresh (else the caller reads it from tv_*).
   */
  answer?: { type: EntityType; id: string };
  /**
   * A command's changes to kept counts (kept-counts.ts): sent after the refresh's statements, last,
   * so the counts rows (a busy post's, a busy author's) are locked from there to COMMIT only. Their
   * failure is raised as it is, not as a sync failure.
   */
  counts?: readonly CountChange[];
  /**
   * A statement the caller sent before the refresh without waiting for it (a command's insert, whose
   * failure is the command's answer: a missing author). Awaited before the refresh's own outcomes
   * are read; if it failed, the refresh's statements only report the aborted transaction, so its
   * error is raised as it is and no sync failure is recorded.
   */
  after?: Promise<unknown>;
  /**
   * An entity the caller's transaction inserted (an INLINE create): its projection row cannot exist
   * yet and no other sync can see its source row, so its document is inserted in one statement,
   * without a claim (statements.ts, insertCreated).
   */
  created?: { type: EntityType; id: string };
}

/** What a refresh's write statement answers. */
interface WriteRow {
  updated: number;
  deleted: number;
  answer?: Record<string, unknown> | null;
}

/** One entity type's refresh, sent and not yet answered. */
interface SentRefresh {
  entityType: EntityType;
  ids: string[];
  span: Span;
  sentAt: number;
  outcome: Promise<[PromiseSettledResult<pg.QueryResult>, PromiseSettledResult<pg.QueryResult<WriteRow>>]>;
}

const INSERT_LOG = `
  INSERT INTO sync_log (entity_type, operation, entity_count, duration_ms, success, error_message)
  SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::float8[], $5::bool[], $6::text[])`;

/** The attributes of an incremental refresh's span, whether it succeeded or failed. */
function incrementalAttributes(entityType: EntityType, count: number, durationMs: number): Attributes {
  return {
    [SYNC_SPAN_ATTRIBUTES.entityType]: entityType,
    [SYNC_SPAN_ATTRIBUTES.entityCount]: count,
    [SYNC_SPAN_ATTRIBUTES.operation]: 'incremental',
    [SYNC_SPAN_ATTRIBUTES.durationMs]: durationMs,
  };
}

/**
 * The explicit sync from tb_* to tv_*: the same code refreshes projections inline in the API's
 * write transaction and in batches in the worker.
 *
 * Every refresh is set-based: per entity type, two statements whatever the batch size (see
 * statements.ts for how they make stale overwrites impossible). Each batch writes one sync_log row
 * per entity type, in the same transaction, so only syncs that committed are counted; a failed
 * sync writes a failure row on its own connection and raises SyncError.
 */
export class SyncEngine {
  private readonly log: Logger;
  private readonly onRefresh: SyncEngineOptions['onRefresh'];
  private readonly onCommitted: SyncEngineOptions['onCommitted'];

  constructor(
    private readonly pool: pg.Pool,
    options: SyncEngineOptions = {},
  ) {
    this.log = options.logger ?? silentLogger;
    this.onRefresh = options.onRefresh;
    this.onCommitted = options.onCommitted;
  }

  /** The dependency map: the projections to refresh for a set of command-side changes. */
  plan(client: Queryable, changes: ChangeSet): Promise<SyncPlan> {
    return planSync(client, changes);
  }

  /** plan(), or undefined when it would hold more than `max` ids (see planSyncBounded). */
  planBounded(client: Queryable, changes: ChangeSet, max: number): Promise<SyncPlan | undefined> {
    return planSyncBounded(client, changes, max);
  }

  /**
   * Refreshes the plan's projections inside the caller's open transaction (INLINE mutations, the
   * worker's batch). Types run in SYNC_ORDER (derived from the model) so locks are always taken in
   * the same order. On failure the caller must roll back. On a pipelined connection (createPool's
   * default) all the statements go out at once, before this returns its promise: a caller that has
   * nothing else to send may send COMMIT right behind them (commitNow in db/pool.ts). Each type's
   * sync_log row is written by its own write statement.
   *
   * See RefreshOptions for `answer` (the document the caller wants back) and `counts`.
   */
  async refreshIn(client: pg.ClientBase, plan: Partial<SyncPlan>, options: RefreshOptions = {}): Promise<SyncReport> {
    const { spanAttributes = {}, answer, counts = [], after, created } = options;
    const batches = SYNC_ORDER.map((entityType) => ({ entityType, ids: dedupe(plan[entityType] ?? []) })).filter((b) => b.ids.length);
    const results: EntitySyncResult[] = [];
    let answered: Record<string, unknown> | undefined;
    let previousDone = 0;
    // Answers arrive in the order the statements were sent, so a type's duration runs from when its
    // statements were sent, or the type before it finished, whichever is later, to its answer.
    const finish = async (sent: SentRefresh): Promise<void> => {
      const [claim, write] = await sent.outcome;
      const doneAt = performance.now();
      const durationMs = doneAt - Math.max(sent.sentAt, previousDone);
      previousDone = doneAt;
      const { entityType, ids, span } = sent;
      const failed = claim.status === 'rejected' ? claim : write.status === 'rejected' ? write : undefined;
      if (failed) {
        const err = failed.reason as Error;
        span.setAttributes(incrementalAttributes(entityType, ids.length, durationMs));
        span.recordException(err);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
        span.end();
        this.observe({ entityType, operation: 'incremental', count: ids.length, durationMs, success: false });
        await this.recordFailure(entityType, 'incremental', ids.length, durationMs, err);
        throw new SyncError(entityType, ids.length, err);
      }
      const row = write.status === 'fulfilled' ? write.value.rows[0] : undefined;
      if (answer?.type === entityType && row?.answer) answered = row.answer;
      const result: EntitySyncResult = {
        entityType,
        count: ids.length,
        updated: row?.updated ?? 0,
        deleted: row?.deleted ?? 0,
        durationMs,
      };
      this.refreshed(span, result);
      span.end();
      results.push(result);
    };
    // On a pipelined connection every statement of every type is sent at once: PostgreSQL still runs
    // them one after another, in this order (so locks are taken in SYNC_ORDER and each write's
    // snapshot follows its claim), and the whole refresh costs one round trip instead of two per type.
    const pipelined = isPipelined(client);
    let counted: Promise<unknown> | undefined;
    const send = (b: (typeof batches)[number]): SentRefresh =>
      this.sendRefresh(client, b.entityType, b.ids, spanAttributes, answer, created);
    const waiting = pipelined ? batches.map(send) : [];
    if (pipelined) counted = applyCountChanges(client, counts);
    try {
      if (after) await after;
      for (const b of batches) await finish(pipelined ? waiting.shift()! : send(b));
      if (!pipelined) counted = applyCountChanges(client, counts);
      // After the refresh: its statements' failure is the one raised when both failed.
      if (counted) await counted;
    } catch (err) {
      for (const rest of waiting) {
        await rest.outcome;
        rest.span.setStatus({ code: SpanStatusCode.ERROR, message: 'not run: an earlier statement of the transaction failed' });
        rest.span.end();
      }
      throw err;
    }
    // Each type's sync_log row was written by its write statement (statements.ts).
    return { operation: 'incremental', results, ...(answered ? { answer: answered } : {}) };
  }

  /**
   * Sends the two statements that refresh one entity type (see statements.ts), under a span of
   * their own, and returns without waiting for their answers (both settled: a failure is never left
   * unobserved).
   */
  private sendRefresh(
    client: pg.ClientBase,
    entityType: EntityType,
    ids: string[],
    spanAttributes: Attributes,
    answer: { type: EntityType; id: string } | undefined,
    created?: { type: EntityType; id: string },
  ): SentRefresh {
    // One span per entity type and batch, under whatever span is active (the mutation inline, the
    // worker's batch), with the statements' spans under it: its attributes are what an operator
    // needs to find a slow sync.
    const span = tracer.startSpan(`sync ${entityType}`, { attributes: spanAttributes });
    const s = STATEMENTS[entityType];
    const few = isFew(ids);
    const sentAt = performance.now();
    // The few-ids statements are prepared under names of their own (planned once per connection,
    // in every process, not only where the API prepares everything): their key probes cost more to
    // plan than to run. The others carry thousands of ids and are planned for the ids they carry.
    const answerId = answer?.type === entityType ? answer.id : null;
    const prepared = <R extends pg.QueryResultRow>(statement: PreparedStatement, values: unknown[]) =>
      client.query<R>({ name: s.preparedAs[statement], text: s[statement], values });
    const send = (): [Promise<pg.QueryResult>, Promise<pg.QueryResult<WriteRow>>] => {
      if (created?.type === entityType && ids.length === 1 && ids[0] === created.id) {
        return [Promise.resolve(NOTHING_CLAIMED), prepared<WriteRow>('insertCreated', [ids, answerId])];
      }
      if (few) return [prepared('claimFew', [ids]), prepared<WriteRow>('writeFew', [ids, answerId])];
      return [client.query(s.claim, [ids]), client.query<WriteRow>(s.write, [ids])];
    };
    const outcome = context.with(trace.setSpan(context.active(), span), () => Promise.allSettled(send()));
    return { entityType, ids, span, sentAt, outcome };
  }

  /**
   * The projection of an entity a command's one statement inserts (an INLINE create made in one
   * statement, services/api's Commands): the part that builds its document from the statement's CTE
   * `source`, inserts it into tv_* and writes the refresh's sync_log row (createdProjection in statements.ts), and
   * the final query answering with the document (`data`). Run the statement with writeCreated.
   */
  createdPart(type: EntityType, source: string, id: string): { part: SqlPart; answer: { sql: string; values: unknown[] } } {
    const { ctes, answer } = createdProjection(type, source);
    return { part: { ctes, values: [id] }, answer: { sql: answer, values: [] } };
  }

  /**
   * Runs `write`, a statement holding createdPart(type, ...), as the refresh of that one entity:
   * under a `sync <type>` span, and observed (onRefresh) when it succeeds. Its failure is the
   * command's (as with RefreshOptions.after): the statement wrote nothing, and no sync failure is
   * recorded.
   */
  async writeCreated<R>(type: EntityType, write: () => Promise<R>): Promise<R> {
    const span = tracer.startSpan(`sync ${type}`);
    const started = performance.now();
    return inSpan(span, trace.setSpan(context.active(), span), async () => {
      const result = await write();
      const durationMs = performance.now() - started;
      this.refreshed(span, { entityType: type, count: 1, updated: 1, deleted: 0, durationMs });
      return result;
    });
  }

  /** An incremental refresh of one entity type that succeeded: on its span, and to onRefresh. */
  private refreshed(span: Span, result: EntitySyncResult): void {
    const { entityType, count, durationMs } = result;
    span.setAttributes({
      ...incrementalAttributes(entityType, count, durationMs),
      [SYNC_SPAN_ATTRIBUTES.updated]: result.updated,
      [SYNC_SPAN_ATTRIBUTES.deleted]: result.deleted,
    });
    this.observe({ entityType, operation: 'incremental', count, durationMs, success: true });
  }

  /** Whether refreshIn(client, plan, { answer: entity }) returns the entity's document (else the caller reads it). */
  answers(plan: Partial<SyncPlan>, entity: { type: EntityType }): boolean {
    return isFew(dedupe(plan[entity.type] ?? []));
  }

  /** Refreshes the plan's projections in a transaction of its own. */
  async refresh(plan: Partial<SyncPlan>): Promise<SyncReport> {
    const report = await withTransaction(this.pool, (client) => this.refreshIn(client, plan));
    this.onCommitted?.(plan);
    return report;
  }

  /** Applies the dependency map to the changes and refreshes the result, in one transaction. */
  async syncChanges(changes: ChangeSet): Promise<SyncReport> {
    let plan: Partial<SyncPlan> = {};
    const report = await withTransaction(this.pool, async (client) => this.refreshIn(client, (plan = await planSync(client, changes))));
    this.onCommitted?.(plan);
    return report;
  }

  /** Refreshes these user projections only (no dependency expansion). */
  users(ids: readonly string[]): Promise<SyncReport> {
    return this.refresh({ user: [...ids] });
  }

  posts(ids: readonly string[]): Promise<SyncReport> {
    return this.refresh({ post: [...ids] });
  }

  comments(ids: readonly string[]): Promise<SyncReport> {
    return this.refresh({ comment: [...ids] });
  }

  /**
   * Full mode in one transaction: recomputes every projection and removes orphans, after setting
   * the kept counts from the rows. Readers keep seeing the old rows until it commits; incremental
   * syncs, and commands that change counts, wait for it (on 20,000 posts and 400,000 comments,
   * seconds). For tests and benchmarks that want every projection current at once; the
   * `sync rebuild` command runs rebuild() instead, which live writes do not wait for.
   */
  async all(): Promise<SyncReport> {
    let current: EntityType = SYNC_ORDER[0]!;
    let started = performance.now();
    try {
      const report = await withTransaction(this.pool, async (client) => {
        const results: EntitySyncResult[] = [];
        for (const entityType of SYNC_ORDER) {
          current = entityType;
          started = performance.now();
          const s = STATEMENTS[entityType];
          await client.query(s.lockTable);
          const { rows } = await client.query<{ total: number; updated: number; deleted: number }>(s.rebuild);
          const row = rows[0] ?? { total: 0, updated: 0, deleted: 0 };
          results.push({
            entityType,
            count: row.total,
            updated: row.updated,
            deleted: row.deleted,
            durationMs: performance.now() - started,
          });
          this.observe({ entityType, operation: 'full', count: row.total, durationMs: performance.now() - started, success: true });
        }
        // The kept counts after the projections, in the order commands lock them (kept-counts.ts, "Lock order").
        for (const type of KEPT_COUNT_OWNERS) {
          const recounted = await recountKeptCounts(client, type, 'all');
          if (recounted.length)
            this.log.warn({ entityType: type, rows: recounted.length }, 'kept counts differed from the rows; recounted');
        }
        await this.writeLog(
          client,
          results.map((r) => ({ ...r, operation: 'full', success: true, error: null })),
        );
        return { operation: 'full' as const, results };
      });
      this.onCommitted?.(Object.fromEntries(SYNC_ORDER.map((t) => [t, '*'])));
      return report;
    } catch (err) {
      if (err instanceof SyncError) throw err;
      this.observe({ entityType: current, operation: 'full', count: 0, durationMs: performance.now() - started, success: false });
      await this.recordFailure(current, 'full', 0, performance.now() - started, err);
      throw new SyncError(current, 0, err);
    }
  }

  /**
   * The current documents for these ids, computed from tb_* without writing anything (the answer
   * of a QUEUED mutation). Runs on `client` when given, to see that transaction's writes.
   */
  async preview<T = Record<string, unknown>>(entityType: EntityType, ids: readonly string[], client?: Queryable): Promise<Map<string, T>> {
    const db = client ?? this.pool;
    const { rows } = await db.query<{ id: string; data: T }>(STATEMENTS[entityType].preview, [dedupe(ids)]);
    return new Map(rows.map((r) => [r.id, r.data]));
  }

  /**
   * The online rebuild (rebuild.ts): every projection recomputed chunk by chunk, each chunk a short
   * transaction with the claim protocol, beside live writes; resumable after a crash.
   */
  rebuild(options: RebuildOptions = {}): Promise<RebuildResult> {
    return rebuildOnline(this.pool, { logger: this.log, ...(this.onCommitted ? { onCommitted: this.onCommitted } : {}), ...options });
  }

  /**
   * Compares every tv_* row with a fresh computation from tb_*: rows missing, stale (different
   * document or columns; also kept counts that differ from the rows) and orphaned
   * (source gone). Chunk by chunk (verify.ts), each chunk in one statement, so both sides of each
   * comparison are read from the same snapshot; at most options.keepIds ids are kept per type and
   * problem (VERIFY_KEEP_IDS), the counts are exact.
   */
  verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    return verifyChunked(this.pool, options.chunk ?? DEFAULT_REBUILD_CHUNK, options);
  }

  /**
   * verify(), repairing each chunk's drift as it is found (`sync verify --repair`): in a
   * transaction per chunk, the kept counts recounted from the rows, then the rows
   * refreshed. Returns what was found (as verify() reports it) and the refreshes, added up per type.
   */
  async verifyAndRepair(options: Omit<VerifyOptions, 'onDrift'> = {}): Promise<{ found: VerifyReport; repaired: SyncReport }> {
    const sums = new Map<EntityType, EntitySyncResult>();
    const found = await this.verify({
      ...options,
      onDrift: async (entityType, drift) => {
        const ids = [...drift.missing, ...drift.stale, ...drift.orphaned];
        const report = await withTransaction(this.pool, async (client) => {
          const refreshed = await this.refreshIn(client, { [entityType]: ids });
          if (KEPT_COUNT_OWNERS.includes(entityType)) await recountKeptCounts(client, entityType, ids);
          return refreshed;
        });
        this.onCommitted?.({ [entityType]: ids });
        for (const r of report.results) {
          const sum = sums.get(r.entityType) ?? { entityType: r.entityType, count: 0, updated: 0, deleted: 0, durationMs: 0 };
          sums.set(r.entityType, {
            ...sum,
            count: sum.count + r.count,
            updated: sum.updated + r.updated,
            deleted: sum.deleted + r.deleted,
            durationMs: sum.durationMs + r.durationMs,
          });
        }
      },
    });
    return { found, repaired: { operation: 'incremental', results: SYNC_ORDER.flatMap((t) => sums.get(t) ?? []) } };
  }

  /**
   * Re-syncs exactly the rows a verify report names, after recounting their kept counts from the
   * rows (a wrong count shows as a stale row). A report keeps at most VerifyOptions.keepIds ids
   * per type and problem: for more drift than that, verifyAndRepair() repairs every row.
   */
  async repair(report: VerifyReport): Promise<SyncReport> {
    const plan = emptyPlan();
    for (const t of ENTITY_TYPES) {
      const p = report.problems[t];
      plan[t] = [...p.missing, ...p.stale, ...p.orphaned];
    }
    const repaired = await withTransaction(this.pool, async (client) => {
      const refreshed = await this.refreshIn(client, plan);
      for (const type of KEPT_COUNT_OWNERS) await recountKeptCounts(client, type, plan[type]);
      return refreshed;
    });
    this.onCommitted?.(plan);
    return repaired;
  }

  /** The onRefresh hook (metrics): its failure is logged, never the sync's (nor the command's). */
  private observe(observation: RefreshObservation): void {
    try {
      this.onRefresh?.(observation);
    } catch (err) {
      this.log.error({ err, entityType: observation.entityType }, 'the onRefresh hook failed');
    }
  }

  private async writeLog(client: Queryable, rows: LogRow[]): Promise<void> {
    if (!rows.length) return;
    await client.query(INSERT_LOG, [
      rows.map((r) => r.entityType),
      rows.map((r) => r.operation),
      rows.map((r) => r.count),
      rows.map((r) => r.durationMs),
      rows.map((r) => r.success),
      rows.map((r) => r.error),
    ]);
  }

  private async recordFailure(
    entityType: EntityType,
    operation: SyncOperation,
    count: number,
    durationMs: number,
    err: unknown,
  ): Promise<void> {
    const error = err instanceof Error ? err.message : String(err);
    this.log.error({ err, entityType, operation, count }, 'sync failed');
    try {
      // On the pool, not the failed transaction's client: the failure must be recorded although
      // that transaction rolls back.
      await this.writeLog(this.pool, [{ entityType, operation, count, durationMs, success: false, error }]);
    } catch (logErr) {
      this.log.error({ err: logErr }, 'could not record the sync failure in sync_log');
    }
  }
}

/** The claim of a created entity, which has none (insertCreated). */
const NOTHING_CLAIMED = { command: 'INSERT', rowCount: 0, oid: 0, rows: [], fields: [] } as pg.QueryResult;

/** A batch small enough for the 'few' statements, whose write also answers a document. */
function isFew(ids: readonly string[]): boolean {
  return ids.length <= FEW_IDS;
}

function dedupe(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}
