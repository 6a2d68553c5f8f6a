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
 * The composed texts, found by walking a statement's shape: each part's offset, then its CTEs' names
 * and texts, then the main query's. A command composes the same constant strings on every call, so
 * the walk finds its text after a few lookups instead of joining and shifting the parts again, and
 * returns the same string each time (the key QueryHooks.prepare names it by). Bounded: past
 * MAX_SHAPES steps, texts are composed without being kept.
 */
interface Shape {
  next: Map<string | number, Shape>;
  text?: string;
}
const SHAPES: Shape = { next: new Map() };
const MAX_SHAPES = 5000;
let shapeCount = 0;

function step(shape: Shape | undefined, key: string | number): Shape | undefined {
  if (!shape) return undefined;
  let next = shape.next.get(key);
  if (!next && shapeCount < MAX_SHAPES) {
    shapeCount += 1;
    next = { next: new Map() };
    shape.next.set(key, next);
  }
  return next;
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
  let shape: Shape | undefined = SHAPES;
  for (const part of parts) {
    shape = step(shape, values.length);
    for (const [name, sql] of part.ctes) shape = step(step(shape, name), sql);
    values.push(...part.values);
  }
  shape = step(step(shape, values.length), main.sql);
  let text = shape?.text;
  if (text === undefined) {
    const ctes: string[] = [];
    let offset = 0;
    for (const part of parts) {
      for (const [name, sql] of part.ctes) ctes.push(`${name} AS (${shifted(sql, offset)})`);
      offset += part.values.length;
    }
    text = `WITH ${ctes.join(',\n     ')}\n${shifted(main.sql, values.length)}`;
    if (shape) shape.text = text;
  }
  values.push(...main.values);
  return { text, values };
}
