/**
 * SQL rendering a timestamptz as the ISO-8601 string JavaScript's Date#toISOString() gives
 * ("2024-01-02T10:00:00.000Z"), independent of the session's TimeZone setting.
 */
export const isoUtc = (column: string): string => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * Which rows a builder computes: those of the ids in $1, or every row (full rebuild, verify).
 * 'few' is 'ids' for a handful of ids (an INLINE mutation's refresh, a small batch): a builder may
 * plan it differently (see user.ts); the rows are the same.
 */
export type Scope = 'few' | 'ids' | 'all';

/** At most this many ids are refreshed with the 'few' statements. */
export const FEW_IDS = 32;

/** The SQL of the ids in scope: the statement's first parameter, unless a builder is given another array. */
export const IDS_PARAM = '$1::uuid[]';

/** `column = ANY(<ids>)` for the 'few' and 'ids' scopes, `true` for 'all'. `ids`: an array expression (default $1). */
export const inScope = (scope: Scope, column: string, ids = IDS_PARAM): string => (scope === 'all' ? 'true' : `${column} = ANY(${ids})`);

/**
 * `JOIN <table> <alias> ON <alias>.id = <ref>` (an inner join on a primary key), for the rows a
 * builder computes. For a few ids it is a LATERAL lookup by primary key, one index probe per row:
 * commands run with generic plans (force_generic_plan), which estimate 10 rows for `= ANY($1)` and
 * then hashed the whole referenced table, a scan of every user (0.5 ms at 1,000 users) to build one
 * post. LIMIT 1 (the key is unique) keeps the planner from merging the lookup back into a join.
 */
export const joinById = (scope: Scope, table: string, alias: string, columns: string, ref: string, lock = false): string =>
  scope === 'few'
    ? `CROSS JOIN LATERAL (SELECT ${columns} FROM ${table} WHERE id = ${ref} LIMIT 1${lock ? ' FOR SHARE' : ''}) ${alias}`
    : `JOIN ${table} ${alias} ON ${alias}.id = ${ref}`;

/**
 * The rows of `table` (as `alias`) a builder computes from. For a few ids: one primary-key probe per
 * id, for the reason joinById gives; the generic plan of `id = ANY($1)` scanned all of tb_user
 * (1,000 rows, 0.2 ms) to find one. Otherwise the table itself, filtered by the builder's WHERE.
 */
export const fromById = (scope: Scope, table: string, alias: string): string =>
  scope === 'few'
    ? `(SELECT DISTINCT unnest($1::uuid[]) AS id) ${alias}_key ` +
      `CROSS JOIN LATERAL (SELECT * FROM ${table} WHERE id = ${alias}_key.id LIMIT 1) ${alias}`
    : `${table} ${alias}`;
