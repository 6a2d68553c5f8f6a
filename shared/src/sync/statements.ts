import { PROJECTIONS, type Projection } from './projections';
import type { EntityType } from './types';

/**
 * The SQL the engine runs for one projection, generated once from its definition.
 *
 * Why a projection can never end up older than the committed command side
 * -----------------------------------------------------------------------
 * Several processes may refresh the same entity at once (the API inline, any number of workers, a
 * rebuild). The danger: sync A reads old state, sync B reads new state and writes, then A writes its
 * old document over B's. An incremental refresh therefore runs three statements in one transaction
 * (READ COMMITTED, where every statement takes a new snapshot):
 *
 *   1. placeholders: insert a row for each id whose source exists and has no projection yet
 *      (ON CONFLICT DO NOTHING, ids in order). Now every row we may write exists. Ids whose row
 *      this statement's snapshot already shows are not even tried: a conflicting insert would wait
 *      for whichever transaction last locked or wrote that row (to learn whether the conflict is
 *      real), which would add a wait here for nothing: statement 2 waits for that lock anyway.
 *   2. lock:         SELECT ... FOR UPDATE those rows, in id order (no deadlocks between syncs).
 *   3. write:        compute the documents from tb_* and update / delete the locked rows.
 *
 * Statement 3 starts after statement 2 obtained the locks, so its snapshot contains every commit
 * made before the lock was granted, including that of any earlier sync of the same rows. Two syncs
 * of one row are serialized and the later one computes from state at least as new as the earlier
 * one: the last writer is always the freshest reader. Every committed write has a sync that starts
 * after it commits (a job enqueued in the write's own transaction) or runs inside it (INLINE), so
 * the last sync of a row always includes the last write. An id whose source appears only after
 * statement 1 is skipped: that write's own sync creates it.
 *
 * Row locks live in the tuples, not in PostgreSQL's shared lock table, so batches of any size are
 * fine (advisory locks per id would exhaust max_locks_per_transaction on large batches).
 *
 * A full rebuild takes SHARE ROW EXCLUSIVE on each tv_* table instead: it waits for running syncs
 * to commit, blocks new ones until it commits, and never blocks readers.
 */
export interface ProjectionStatements {
  placeholders: string;
  lock: string;
  write: string;
  /**
   * `write` for at most FEW_IDS ids; it also returns, as `answer`, the document of the id in $2 (or
   * null): an INLINE mutation answers with what it wrote without reading it back.
   */
  writeFew: string;
  lockTable: string;
  rebuild: string;
  verify: string;
  preview: string;
}

function build(p: Projection): ProjectionStatements {
  const cols = p.columns.join(', ');
  const assign = p.columns.map((c) => `${c} = doc.${c}`).join(', ');
  const changed = `(t.data, ${p.columns.map((c) => `t.${c}`).join(', ')}) IS DISTINCT FROM (doc.data, ${p.columns
    .map((c) => `doc.${c}`)
    .join(', ')})`;
  const write = (scope: 'ids' | 'few', answer = '') => `
      WITH doc AS (${p.documents(scope)}),
      updated AS (
        UPDATE ${p.target} t SET data = doc.data, ${assign}, synced_at = now()
          FROM doc
         WHERE t.id = doc.id AND ${changed}
        RETURNING 1),
      deleted AS (
        DELETE FROM ${p.target} t
         WHERE t.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM doc WHERE doc.id = t.id)
        RETURNING 1)
      SELECT (SELECT count(*) FROM updated)::int AS updated, (SELECT count(*) FROM deleted)::int AS deleted${answer}`;
  return {
    placeholders: `
      INSERT INTO ${p.target} (id, data, ${cols})
      SELECT s.id, '{}'::jsonb, ${p.columns.map((c) => `s.${c}`).join(', ')}
        FROM ${p.source} s
       WHERE s.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM ${p.target} t WHERE t.id = s.id)
       ORDER BY s.id
      ON CONFLICT (id) DO NOTHING`,
    lock: `
      SELECT count(*)::int AS locked
        FROM (SELECT 1 FROM ${p.target} WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE) l`,
    write: write('ids'),
    writeFew: write('few', ',\n             (SELECT data FROM doc WHERE doc.id = $2::uuid) AS answer'),
    lockTable: `LOCK TABLE ${p.target} IN SHARE ROW EXCLUSIVE MODE`,
    rebuild: `
      WITH doc AS (${p.documents('all')}),
      upserted AS (
        INSERT INTO ${p.target} AS t (id, data, ${cols}, synced_at)
        SELECT id, data, ${cols}, now() FROM doc
        ON CONFLICT (id) DO UPDATE SET data = EXCLUDED.data, ${p.columns
          .map((c) => `${c} = EXCLUDED.${c}`)
          .join(', ')}, synced_at = EXCLUDED.synced_at
         WHERE (t.data, ${p.columns.map((c) => `t.${c}`).join(', ')}) IS DISTINCT FROM (EXCLUDED.data, ${p.columns
           .map((c) => `EXCLUDED.${c}`)
           .join(', ')})
        RETURNING 1),
      deleted AS (
        DELETE FROM ${p.target} t WHERE NOT EXISTS (SELECT 1 FROM doc WHERE doc.id = t.id) RETURNING 1)
      SELECT (SELECT count(*) FROM doc)::int AS total,
             (SELECT count(*) FROM upserted)::int AS updated,
             (SELECT count(*) FROM deleted)::int AS deleted`,
    verify: `
      WITH doc AS (${p.documents('all')})
      SELECT coalesce(doc.id, t.id) AS id,
             CASE WHEN t.id IS NULL THEN 'missing' WHEN doc.id IS NULL THEN 'orphaned' ELSE 'stale' END AS problem
        FROM doc FULL JOIN ${p.target} t ON t.id = doc.id
       WHERE t.id IS NULL OR doc.id IS NULL OR ${changed}`,
    preview: `SELECT id, data FROM (${p.documents('few')}) doc`,
  };
}

export const STATEMENTS: Readonly<Record<EntityType, ProjectionStatements>> = {
  user: build(PROJECTIONS.user),
  post: build(PROJECTIONS.post),
  comment: build(PROJECTIONS.comment),
};
