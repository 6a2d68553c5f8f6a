/**
 * SQL rendering a timestamptz as the ISO-8601 string JavaScript's Date#toISOString() gives
 * ("2024-01-02T10:00:00.000Z"), independent of the session's TimeZone setting.
 */
export const isoUtc = (column: string): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/**
 * Which rows a builder computes: those of the ids in $1, or every row (full rebuild, verify).
 * 'few' is 'ids' for a handful of ids (an INLINE mutation's refresh, a small batch): a builder may
 * plan it differently (see user.ts); the rows are the same.
 */
export type Scope = 'few' | 'ids' | 'all';

/** At most this many ids are refreshed with the 'few' statements. */
export const FEW_IDS = 32;

/** `column = ANY($1::uuid[])` for the 'few' and 'ids' scopes, `true` for 'all'. */
export const inScope = (scope: Scope, column: string): string => (scope === 'all' ? 'true' : `${column} = ANY($1::uuid[])`);
