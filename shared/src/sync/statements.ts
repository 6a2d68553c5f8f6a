import { entityOf, MODEL, type ColumnType, type Entity, type EntityType } from '../model';
import { documentsSql, insertedRowDocumentSql } from './documents';
import { fromById, inScope } from './scope';
import { wrongKeptCounts } from './kept-counts';

/**
 * The SQL the engine runs for one projection, generated once from its declaration (shared/src/model).
 *
 * Why a projection can never end up older than the committed command side
 * -----------------------------------------------------------------------
 * Several processes may refresh the same entity at once (the API inline, any number of workers, a
 * rebuild). The danger: sync A reads old state, sync B reads new state and writes, then A writes its
 * old document over B's. An incremental refresh therefore runs two statements in one transaction
 * (READ COMMITTED, where every statement takes a new snapshot):
 *
 *   1. claim: one INSERT of a placeholder row for each id, in id order, with
 *      ON CONFLICT (id) DO UPDATE ... WHERE false: an id without a projection row gets its
 *      placeholder, and an id with one gets that row locked (PostgreSQL locks the conflicting row,
 *      as FOR UPDATE would, even when the WHERE clause keeps it from being updated). The conflict
 *      is found in the index whatever the statement's snapshot, so a row another sync committed a
 *      moment ago is locked like any other, and one still being inserted is waited for. Rows it
 *      inserted need no lock: no other transaction can see them, and any other insert of the same
 *      id waits for us. An id whose source is gone is claimed the same way, whether or not our
 *      snapshot shows a projection row for it (the placeholder, with stand-in column values, is
 *      deleted by statement 2; a row that is there is locked and deleted by statement 2). Every row
 *      we may write or delete now exists and is ours, taken in one order, the ids' (no deadlocks
 *      between syncs).
 *   2. write: compute the documents from tb_* and update / delete the claimed rows.
 *
 * Statement 2 starts after statement 1 obtained the locks, so its snapshot contains every commit
 * made before the lock was granted, including that of any earlier sync of the same rows. Two syncs
 * of one row are serialized and the later one computes from state at least as new as the earlier
 * one: the last writer is always the freshest reader. Every committed write has a sync that starts
 * after it commits (a job enqueued in the write's own transaction) or runs inside it (INLINE), so
 * the last sync of a row always includes the last write. An id whose source appears only after
 * statement 1 is skipped: that write's own sync creates it.
 *
 * A source row that is gone: the claim must insert for it even when no projection row is visible.
 * Sync A may have written the document of a comment and not committed yet when the comment is
 * deleted and the delete's sync B runs: B's snapshot shows no projection row, and had B only claimed
 * the rows it could see, it would have removed nothing, and A would then commit a document of a
 * comment that no longer exists, an orphan for good. B's insert meets A's uncommitted row in the
 * index and waits for A; when A commits, B locks A's row and deletes it. (Found by the concurrency
 * test; `a source deleted while a sync of it is uncommitted` in concurrency.int.spec.ts makes it
 * happen.)
 *
 * Row locks live in the tuples, not in PostgreSQL's shared lock table, so batches of any size are
 * fine (advisory locks per id would exhaust max_locks_per_transaction on large batches).
 *
 * The online rebuild (rebuild.ts) is a sequence of such refreshes, one per chunk of ids, each in a
 * short transaction of its own: safe beside live syncs for the same reasons. The one-transaction
 * rebuild (SyncEngine.all) takes SHARE ROW EXCLUSIVE on each tv_* table instead: it waits for
 * running syncs to commit, blocks new ones until it commits, and never blocks readers.
 */
export interface ProjectionStatements {
  /** Statement 1: placeholders for new rows, locks on the others. */
  claim: string;
  /** `claim` for at most FEW_IDS ids, finding each row by its key. */
  claimFew: string;
  write: string;
  /**
   * `write` for at most FEW_IDS ids; it also returns, as `answer`, the document of the id in $2 (or
   * null): an INLINE mutation answers with what it wrote without reading it back.
   */
  writeFew: string;
  /**
   * The document of an entity inserted by the running transaction, inserted in one statement with
   * no claim (RefreshOptions.created): no projection row exists yet, and no other transaction can
   * see its source row, so no other sync can be writing it. Answers like writeFew.
   */
  insertCreated: string;
  /**
   * The names the statements for a few ids are prepared under: the engine prepares them itself, in
   * every process (their key probes cost more to plan than to run).
   */
  preparedAs: Record<PreparedStatement, string>;
  lockTable: string;
  rebuild: string;
  verify: string;
  preview: string;
  /**
   * The next chunk of the online rebuild and verify, by keyset: $1 the last id of the previous
   * chunk (null for the first), $2 the chunk size N. Answers `hi`, the chunk's last bound (null
   * for the last chunk, which has no upper bound), and `ids`: every tb_* and tv_* id in ($1, hi].
   * hi is the smaller of the N-th tb_* id and the N-th tv_* id after $1, so a chunk holds at most
   * 2N ids however many orphaned tv_* rows there are (usually the two sets are the same N ids).
   */
  chunk: string;
  /** `write`, logged in sync_log as 'full' (a chunk of the online rebuild: claim, then this). */
  writeChunk: string;
  /**
   * verify for one chunk (the bounds as `chunk`), in one statement so that both sides come from
   * one snapshot: `hi`, `n` (the ids in the chunk) and the ids of each problem.
   */
  verifyChunk: string;
  /** The ids among $1 whose projection row is missing, stale or orphaned (read only). */
  staleAmong: string;
}

/** The statements the engine prepares under names of their own (ProjectionStatements.preparedAs). */
export type PreparedStatement = 'claimFew' | 'writeFew' | 'insertCreated';

/**
 * The plain columns' values in the placeholder claimed for an id whose source row is gone, by type.
 * Never read: the write statement of the same transaction deletes that row (its source is gone),
 * and when another sync's row is there instead, the claim keeps that row as it is. Their types
 * matter, and created_at: '-infinity' tells the write statement which deleted rows were only these
 * placeholders (every projection keeps created_at).
 */
const GONE_PLACEHOLDER: Record<ColumnType, string> = {
  uuid: 'k.id',
  boolean: 'false',
  timestamptz: "'-infinity'::timestamptz",
  // Unique per id: a text column may have a unique index (a tag's slug).
  text: 'k.id::text',
  int: '0',
};

/** Inserts the documents of the relation `doc` (id, data, the plain columns) as new projection rows. */
const insertDocuments = (p: Projection, doc: string, returning: string) => `
        INSERT INTO ${p.target} (id, data, ${p.columns.join(', ')}, synced_at)
        SELECT id, data, ${p.columns.join(', ')}, now() FROM ${doc}
        RETURNING ${returning}`;

/**
 * A batch's sync_log row, from one row of `after` (read so that the row is written after the
 * batch's writes), with the statement's own duration on the server so far.
 */
const logRow = (entity: EntityType, operation: 'incremental' | 'full', count: string, after: string) => `
        INSERT INTO sync_log (entity_type, operation, entity_count, duration_ms, success, error_message)
        SELECT '${entity}', '${operation}', ${count},
               1000 * extract(epoch FROM clock_timestamp() - statement_timestamp()), true, NULL
          FROM ${after}
        RETURNING 1`;

/** A created row's projection as CTEs of the statement that inserts the row (createdProjection). */
export interface CreatedProjection {
  ctes: readonly (readonly [string, string])[];
  /** The statement's final query: the document it inserted, as `data`. */
  answer: string;
}

/** createdProjection's texts, made once per entity type and source. */
const createdProjections = new Map<string, CreatedProjection>();

/**
 * The projection of a row that a command's one statement inserts (an INLINE create without a
 * transaction around it): CTEs that build its document from the statement's CTE `source` (the new
 * row, which the statement cannot read back from its table), insert it as the entity's projection
 * row and write the refresh's sync_log row after it, and the final query answering with the
 * document. As with insertCreated, no claim is needed: no other transaction can see the row yet.
 * $1: the row's id.
 */
export function createdProjection(type: EntityType, source: string): CreatedProjection {
  const key = `${type}/${source}`;
  let created = createdProjections.get(key);
  if (!created) {
    const p = projectionOf(entityOf(type));
    const projected = `${type}_projected`;
    created = {
      ctes: [
        // The embedded rows read FOR SHARE: as committed, not as of the statement's snapshot (see
        // DocumentsOptions.lockEmbedded); the insert has locked them FOR SHARE already.
        [`${type}_doc`, insertedRowDocumentSql(type, source, true)],
        [projected, insertDocuments(p, `${type}_doc`, 'data')],
        [`${type}_logged`, logRow(type, 'incremental', 'count(*)::int', projected)],
      ],
      answer: `SELECT data FROM ${projected}`,
    };
    createdProjections.set(key, created);
  }
  return created;
}

/** The smallest and the largest uuid (PostgreSQL orders uuids by their bytes): a chunk's open bounds. */
const MIN_UUID = '00000000-0000-0000-0000-000000000000';
const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';

/** The document of the id in $2 (or null), returned by the few-ids writes. */
const ANSWER = ',\n             (SELECT data FROM doc WHERE doc.id = $2::uuid) AS answer';

/** What the statements need of a declaration. */
interface Projection {
  entity: EntityType;
  source: string;
  target: string;
  columns: readonly string[];
  documents: (scope: 'few' | 'ids' | 'all') => string;
  /** Ids whose rows are stale for a reason comparing documents cannot see (kept counts that differ from the rows). */
  alsoStale?: string;
}

function projectionOf(e: Entity): Projection {
  return {
    entity: e.name,
    source: e.table,
    target: e.view,
    columns: Object.keys(e.columns),
    documents: (scope) => documentsSql(e, scope),
    ...(e.keptCounts ? { alsoStale: wrongKeptCounts(e.name) } : {}),
  };
}

function build(e: Entity): ProjectionStatements {
  if (!('created_at' in e.columns)) throw new Error(`model ${e.name}: every projection keeps created_at (see GONE_PLACEHOLDER)`);
  const p = projectionOf(e);
  const cols = p.columns.join(', ');
  const assign = p.columns.map((c) => `${c} = doc.${c}`).join(', ');
  const changed = `(t.data, ${p.columns.map((c) => `t.${c}`).join(', ')}) IS DISTINCT FROM (doc.data, ${p.columns
    .map((c) => `doc.${c}`)
    .join(', ')})`;
  // The batch's sync_log row is written by the write statement itself, after its writes (it reads
  // their counts), with the statement's own duration on the server: no statement of its own, so an
  // INLINE command can send COMMIT right behind its refresh (see commitNow in db/pool.ts).
  const write = (scope: 'ids' | 'few' | 'created', answer = '', operation: 'incremental' | 'full' = 'incremental') => `
      WITH doc AS (${p.documents(scope === 'created' ? 'few' : scope)}),
      ${
        scope === 'created'
          ? `updated AS (${insertDocuments(p, 'doc', '1')}),
      deleted AS (SELECT NULL::timestamptz AS created_at WHERE false),`
          : `updated AS (
        UPDATE ${p.target} t SET data = doc.data, ${assign}, synced_at = now()
          FROM doc
         WHERE t.id = doc.id${scope === 'few' ? ' AND t.id = ANY($1::uuid[])' : ''} AND ${changed}
        RETURNING 1),
      deleted AS (
        DELETE FROM ${p.target} t
         WHERE t.id = ANY($1::uuid[]) AND NOT EXISTS (SELECT 1 FROM doc WHERE doc.id = t.id)
        RETURNING t.created_at),`
      }
      counted AS (
        SELECT (SELECT count(*) FROM updated)::int AS updated,
               -- The claim's own placeholders for ids whose source is gone are not projections removed.
               (SELECT count(*) FROM deleted WHERE created_at <> ${GONE_PLACEHOLDER.timestamptz})::int AS deleted),
      logged AS (${logRow(p.entity, operation, 'cardinality($1::uuid[])', 'counted')})
      SELECT counted.updated, counted.deleted, (SELECT count(*) FROM logged)::int AS logged${answer} FROM counted`;
  // Statement 1 (see above). For a few ids, every row is found by a primary-key probe (fromById).
  // The ids whose source is gone get a placeholder too, whatever the projection table shows: the
  // insert is what waits for another sync's uncommitted row (see "A source row that is gone").
  const gone = Object.values(e.columns).map((type) => GONE_PLACEHOLDER[type]);
  // A chunk: the ids after $1 (every id for the first chunk, $1 null) up to hi (every id for the
  // last, hi null). Both bounds are written as ranges over the primary key (an index scan from $1
  // to hi), never as `$1 IS NULL OR ...`, which a plan may not turn into an index range.
  const after = (id: string) => `${id} >= coalesce($1::uuid, '${MIN_UUID}') AND ${id} IS DISTINCT FROM $1::uuid`;
  const upTo = (id: string) => `${id} <= coalesce(bounds.hi, '${MAX_UUID}')`;
  const nth = (table: string) => `(SELECT id FROM ${table} WHERE ${after('id')} ORDER BY id OFFSET $2::int - 1 LIMIT 1)`;
  // `bounds` is materialized so that its two probes run once (inlined, they ran once per use of hi).
  const chunkCte = `bounds AS MATERIALIZED (SELECT least(${nth(p.source)}, ${nth(p.target)}) AS hi),
      chunk AS MATERIALIZED (
        SELECT bounds.hi, ARRAY(
                 SELECT id FROM ${p.source} WHERE ${after('id')} AND ${upTo('id')}
                 UNION
                 SELECT id FROM ${p.target} WHERE ${after('id')} AND ${upTo('id')}
                 ORDER BY 1) AS ids
          FROM bounds)`;
  // An array expression (the cast keeps `= ANY(...)` from reading it as a subquery of rows).
  const chunkIds = '(SELECT ids FROM chunk)::uuid[]';
  const claim = (scope: 'ids' | 'few') => `
      INSERT INTO ${p.target} AS t (id, data, ${cols})
      SELECT s.id, '{}'::jsonb, ${p.columns.map((c) => `s.${c}`).join(', ')}
        FROM ${fromById(scope, p.source, 's')}
       WHERE ${inScope(scope, 's.id')}
      UNION ALL
      SELECT k.id, '{}'::jsonb, ${gone.join(', ')}
        FROM (SELECT DISTINCT unnest($1::uuid[]) AS id) k
       ${
         scope === 'few'
           ? // A probe per row: NOT EXISTS becomes an anti-join, which the generic plan hashed over all of the source.
             `LEFT JOIN LATERAL (SELECT true AS found FROM ${p.source} WHERE id = k.id LIMIT 1) x ON true
       WHERE x.found IS NULL`
           : `WHERE NOT EXISTS (SELECT 1 FROM ${p.source} x WHERE x.id = k.id)`
       }
      ORDER BY id
      ON CONFLICT (id) DO UPDATE SET data = t.data WHERE false`;
  return {
    claim: claim('ids'),
    claimFew: claim('few'),
    write: write('ids'),
    writeFew: write('few', ANSWER),
    insertCreated: write('created', ANSWER),
    preparedAs: {
      claimFew: `blog_sync_${p.entity}_claim_few`,
      writeFew: `blog_sync_${p.entity}_write_few`,
      insertCreated: `blog_sync_${p.entity}_insert_created`,
    },
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
      WITH doc AS (${p.documents('all')}),
      drift AS (
        SELECT coalesce(doc.id, t.id) AS id,
               CASE WHEN t.id IS NULL THEN 'missing' WHEN doc.id IS NULL THEN 'orphaned' ELSE 'stale' END AS problem
          FROM doc FULL JOIN ${p.target} t ON t.id = doc.id
         WHERE t.id IS NULL OR doc.id IS NULL OR ${changed})
      SELECT id, problem FROM drift${
        p.alsoStale
          ? `
      UNION ALL
      SELECT k.id, 'stale' FROM (${p.alsoStale}) k WHERE NOT EXISTS (SELECT 1 FROM drift WHERE drift.id = k.id)`
          : ''
      }`,
    preview: `SELECT id, data FROM (${p.documents('few')}) doc`,
    chunk: `
      WITH ${chunkCte}
      SELECT hi, ids FROM chunk`,
    writeChunk: write('ids', '', 'full'),
    staleAmong: `
      WITH doc AS (${p.documents('ids')}),
      t AS (SELECT * FROM ${p.target} WHERE id = ANY($1::uuid[]))
      SELECT coalesce(doc.id, t.id) AS id
        FROM doc FULL JOIN t ON t.id = doc.id
       WHERE t.id IS NULL OR doc.id IS NULL OR ${changed}`,
    // The kept counts are checked against the rows for the chunk's rows only.
    verifyChunk: `
      WITH ${chunkCte},
      doc AS (${documentsSql(e, 'ids', { ids: chunkIds })}),
      t AS (SELECT * FROM ${p.target} WHERE id = ANY(${chunkIds})),
      drift AS (
        SELECT coalesce(doc.id, t.id) AS id,
               CASE WHEN t.id IS NULL THEN 'missing' WHEN doc.id IS NULL THEN 'orphaned' ELSE 'stale' END AS problem
          FROM doc FULL JOIN t ON t.id = doc.id
         WHERE t.id IS NULL OR doc.id IS NULL OR ${changed}),
      found AS (
        SELECT id, problem FROM drift${
          p.alsoStale
            ? `
        UNION ALL
        SELECT k.id, 'stale' FROM (${wrongKeptCounts(p.entity, chunkIds)}) k WHERE NOT EXISTS (SELECT 1 FROM drift WHERE drift.id = k.id)`
            : ''
        })
      SELECT (SELECT hi FROM chunk) AS hi, cardinality(${chunkIds})::int AS n,
             ARRAY(SELECT id FROM found WHERE problem = 'missing' ORDER BY id) AS missing,
             ARRAY(SELECT id FROM found WHERE problem = 'stale' ORDER BY id) AS stale,
             ARRAY(SELECT id FROM found WHERE problem = 'orphaned' ORDER BY id) AS orphaned`,
  };
}

const BUILT = new WeakMap<Entity, ProjectionStatements>();

/** The statements of a declaration: those of the model's (STATEMENTS), or of another version of one. */
export function statementsFor(e: Entity): ProjectionStatements {
  let built = BUILT.get(e);
  if (!built) BUILT.set(e, (built = build(e)));
  return built;
}

export const STATEMENTS = Object.fromEntries(MODEL.map((e) => [e.name, statementsFor(e)])) as Readonly<
  Record<EntityType, ProjectionStatements>
>;
