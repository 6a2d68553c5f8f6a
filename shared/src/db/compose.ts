/** A piece of SQL with its own parameters ($1, $2... counted from 1 within the piece). */
export interface SqlPart {
  /** Common table expressions, by name, in the order they are written; they may name earlier ones. */
  ctes: readonly (readonly [name: string, sql: string])[];
  values: readonly unknown[];
}

/**
 * `$n` of `sql` moved up by `offset`. Our statements write `$` only in parameters. Kept per text
 * and offset: the parts are the code's constant statements, composed again on every command.
 */
const shiftedTexts = new Map<string, Map<number, string>>();
function shifted(sql: string, offset: number): string {
  if (!offset) return sql;
  let byOffset = shiftedTexts.get(sql);
  if (!byOffset) shiftedTexts.set(sql, (byOffset = new Map()));
  let text = byOffset.get(offset);
  if (text === undefined) {
    text = sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + offset}`);
    byOffset.set(offset, text);
  }
  return text;
}

/**
 * One statement from several parts: their common table expressions, in order, then `main` (a query
 * of its own part), each part's parameters numbered after those of the parts before it. PostgreSQL
 * runs it as one statement: atomic without a transaction around it, and every data-modifying CTE
 * runs to completion even if nothing reads it.
 */
export function composeStatement(
  parts: readonly SqlPart[],
  main: { sql: string; values: readonly unknown[] },
): {
  text: string;
  values: unknown[];
} {
  const values: unknown[] = [];
  const ctes: string[] = [];
  for (const part of parts) {
    const offset = values.length;
    for (const [name, sql] of part.ctes) ctes.push(`${name} AS (${shifted(sql, offset)})`);
    values.push(...part.values);
  }
  const text = `WITH ${ctes.join(',\n     ')}\n${shifted(main.sql, values.length)}`;
  values.push(...main.values);
  return { text, values };
}
