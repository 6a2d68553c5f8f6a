import type { Queryable } from '../db/pool';
import { STATEMENTS } from './statements';
import { ENTITY_TYPES, type EntityType } from './types';

export type VerifyProblem = 'missing' | 'stale' | 'orphaned';

export const VERIFY_PROBLEMS: readonly VerifyProblem[] = ['missing', 'stale', 'orphaned'];

export interface VerifyReport {
  /**
   * Ids by entity type and problem, in id order. Empty everywhere means zero drift. At most
   * `keepIds` (VerifyOptions) per entity type and problem: see `counts` for how many there are.
   */
  problems: Record<EntityType, Record<VerifyProblem, string[]>>;
  /** How many ids have each problem (exact, whatever `problems` kept). */
  counts: Record<EntityType, Record<VerifyProblem, number>>;
  /** Every problem of every type (exact). */
  total: number;
}

/** The ids of each problem in one chunk (at most twice the chunk size). */
export type ChunkDrift = Record<VerifyProblem, string[]>;

/**
 * Ids kept per entity type and problem when not told otherwise. A report of every drifted id can be
 * as big as the tables (a table whose projections were all lost: 400,000 comment ids, ~40 MB of
 * strings); 10,000 are more than an operator reads and about 1 MB per list. The counts stay exact,
 * and `verify --repair` repairs chunk by chunk (onDrift), so it never needs the whole list.
 */
export const VERIFY_KEEP_IDS = 10_000;

export interface VerifyOptions {
  /** Ids per chunk (REBUILD_CHUNK; the rebuild's default when unset). */
  chunk?: number;
  /** Ids kept per entity type and problem (VERIFY_KEEP_IDS). */
  keepIds?: number;
  /**
   * Called with each chunk's drifted ids right after the chunk is compared, and awaited before the
   * next one (verify --repair repairs them there).
   */
  onDrift?: (entityType: EntityType, drift: ChunkDrift) => Promise<void>;
  /** Called when an entity type starts, after each chunk (ids compared so far for it), and when it is done. */
  onProgress?: (entityType: EntityType, compared: number, event: 'start' | 'chunk' | 'done') => void;
}

interface ChunkRow extends ChunkDrift {
  hi: string | null;
  n: number;
}

/**
 * Compares every tv_* row with a fresh computation from tb_*, chunk by chunk in id order (the
 * chunks of the online rebuild: the tb_* and tv_* ids after the previous chunk): rows missing,
 * stale (different document or columns; for users, also kept counts that differ from the rows) and
 * orphaned (source gone). Each chunk is one statement (STATEMENTS[t].verifyChunk), so both sides of
 * a comparison come from one snapshot; memory holds one chunk and the ids kept.
 */
export async function verifyChunked(db: Queryable, chunk: number, options: VerifyOptions = {}): Promise<VerifyReport> {
  if (!Number.isInteger(chunk) || chunk < 1) throw new Error(`verify: the chunk size must be a positive integer (got ${chunk})`);
  const keep = options.keepIds ?? VERIFY_KEEP_IDS;
  const problems = {} as VerifyReport['problems'];
  const counts = {} as VerifyReport['counts'];
  let total = 0;
  for (const entityType of ENTITY_TYPES) {
    const kept: ChunkDrift = { missing: [], stale: [], orphaned: [] };
    const counted: Record<VerifyProblem, number> = { missing: 0, stale: 0, orphaned: 0 };
    let lo: string | null = null;
    let compared = 0;
    options.onProgress?.(entityType, 0, 'start');
    for (;;) {
      const result: { rows: ChunkRow[] } = await db.query<ChunkRow>(STATEMENTS[entityType].verifyChunk, [lo, chunk]);
      const row: ChunkRow = result.rows[0]!;
      compared += row.n;
      let drifted = 0;
      for (const problem of VERIFY_PROBLEMS) {
        const ids = row[problem];
        counted[problem] += ids.length;
        drifted += ids.length;
        const room = keep - kept[problem].length;
        if (room > 0) kept[problem].push(...ids.slice(0, room));
      }
      total += drifted;
      if (drifted && options.onDrift) await options.onDrift(entityType, { missing: row.missing, stale: row.stale, orphaned: row.orphaned });
      if (row.hi === null) break;
      options.onProgress?.(entityType, compared, 'chunk');
      lo = row.hi;
    }
    options.onProgress?.(entityType, compared, 'done');
    problems[entityType] = kept;
    counts[entityType] = counted;
  }
  return { problems, counts, total };
}
