/**
 * SQL rendering a timestamptz as the ISO-8601 string JavaScript's Date#toISOString() gives
 * ("2024-01-02T10:00:00.000Z"), independent of the session's TimeZone setting.
 */
export const isoUtc = (column: string): string =>
  `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** Which rows a builder computes: those of the ids in $1, or every row (full rebuild, verify). */
export type Scope = 'ids' | 'all';

/** `column = ANY($1::uuid[])` for the 'ids' scope, `true` for 'all'. */
export const inScope = (scope: Scope, column: string): string =>
  scope === 'ids' ? `${column} = ANY($1::uuid[])` : 'true';
