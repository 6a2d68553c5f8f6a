import { entityOf, type ColumnField, type CountField, type EmbedsManyField, type Entity, type Field, type ListField } from '../model';
import { fromById, IDS_PARAM, inScope, isoUtc, joinById, type Scope } from './scope';

/** How documentsSql builds the documents of the 'ids' scope. */
export interface DocumentsOptions {
  /**
   * The ids, as an SQL array expression (default `$1::uuid[]`): a chunk of the online verify
   * computes its ids in the same statement (verify.ts).
   */
  ids?: string;
  /** Count the rows even where a kept count would answer, as 'all' does (verify checks the kept counts against the rows). */
  countRows?: boolean;
}

/**
 * The document SQL of an entity, derived from its declaration (shared/src/model): one statement,
 * computed from tb_* alone, returning `id`, the plain columns and `data` for each id in scope whose
 * tb_* row exists.
 *
 *   columns      the row's own columns (timestamps rendered as toISOString() renders them)
 *   embedsOne    a join on the referenced row's primary key
 *   count, list  one aggregate subquery per (entity, via) over the rows referencing this one, or per
 *   embedsMany   link table; for a few ids a LATERAL lookup per row through the `via` index, else
 *                one grouped pass
 *   kept counts  for incremental scopes, the entity's counts row, read instead of counting (the
 *                rows are counted only for an entity without one); 'all' (the one-transaction
 *                rebuild, verify) and `countRows` count the rows, so that verify checks the kept
 *                counts against them
 */
export function documentsSql(entity: Entity, scope: Scope, options: DocumentsOptions = {}): string {
  const a = entity.alias;
  const ids = options.ids ?? IDS_PARAM;
  if (scope === 'few' && ids !== IDS_PARAM) throw new Error('documentsSql: the few-ids documents read their ids from $1');
  const groups = groupsOf(entity);
  const keptAlias = `${a}_kept`;
  const kept = entity.keptCounts && scope !== 'all' && !options.countRows ? entity.keptCounts : undefined;
  const keptColumns = groups.flatMap((g) => g.items.flatMap((i) => (i.field.kind === 'count' && i.field.kept ? [i.field.kept] : [])));
  const joins: string[] = [];
  if (kept) {
    joins.push(
      scope === 'few'
        ? `LEFT JOIN LATERAL (SELECT ${[kept.key, ...keptColumns].join(', ')} FROM ${kept.table} WHERE ${kept.key} = ${a}.id LIMIT 1) ${keptAlias} ON true`
        : `LEFT JOIN ${kept.table} ${keptAlias} ON ${keptAlias}.${kept.key} = ${a}.id`,
    );
  }
  const values = Object.entries(entity.fields).map(([name, field]) => {
    switch (field.kind) {
      case 'column':
        return `'${name}', ${columnValue(a, field)}`;
      case 'embedsOne': {
        const { sql, join } = embedded(scope, entity, a, name, field);
        joins.push(join);
        return `'${name}', ${sql}`;
      }
      default: {
        const group = groups.find((g) => g.items.some((i) => i.name === name))!;
        const item = group.items.find((i) => i.name === name)!;
        const counted = `${group.alias}.${item.column}`;
        if (field.kind !== 'count') return `'${name}', coalesce(${counted}, '[]'::jsonb)`;
        return `'${name}', ${kept && field.kept ? `coalesce(${keptAlias}.${field.kept}, ${counted}, 0)` : `coalesce(${counted}, 0)`}`;
      }
    }
  });
  for (const group of groups) {
    // Rows are counted only where no kept row answers (every field of the group kept).
    const guard = kept && group.kept ? (scope === 'few' ? `${keptAlias}.${kept.key} IS NULL` : notKept(entity, `${group.rows}.${group.via}`)) : undefined;
    joins.push(groupJoin(scope, a, group, guard, ids));
  }
  return `
    SELECT ${[`${a}.id`, ...Object.keys(entity.columns).map((c) => `${a}.${c}`)].join(', ')},
           jsonb_build_object(
             ${values.join(',\n             ')}
           ) AS data
      FROM ${fromById(scope, entity.table, a)}
      ${joins.join('\n      ')}
     WHERE ${inScope(scope, `${a}.id`, ids)}`;
}

/** The value of a column field of the row `alias`. */
const columnValue = (alias: string, field: Extract<Field, { kind: 'column' }>): string =>
  field.timestamp ? isoUtc(`${alias}.${field.column}`) : `${alias}.${field.column}`;

/** An embedded object: its JSON (of the columns of the referenced row) and the join that reads it. */
function embedded(scope: Scope, from: Entity, fromAlias: string, name: string, field: Extract<Field, { kind: 'embedsOne' }>) {
  const target = entityOf(field.entity);
  const alias = `${fromAlias}_${name.toLowerCase()}`;
  const columns = field.fields.map((f) => {
    const column = target.fields[f];
    if (column?.kind !== 'column') throw new Error(`model ${from.name}.${name}: ${target.name}.${f} is not a column (only columns can be embedded)`);
    return column;
  });
  const read = [...new Set(columns.map((c) => c.column))].join(', ');
  return {
    sql: `jsonb_build_object(${field.fields.map((f, i) => `'${f}', ${columnValue(alias, columns[i]!)}`).join(', ')})`,
    join: joinById(scope, target.table, alias, read, `${fromAlias}.${field.via}`),
  };
}

/**
 * The counts and lists of an entity over the same rows, computed by one subquery: the rows of
 * `table` (as `rows`) whose column `via` is the entity's id. Those rows are another entity's
 * (`child`: counts and lists over a reference) or a link table's (counts and embedded lists
 * through it).
 */
export interface Group {
  table: string;
  rows: string;
  via: string;
  child?: Entity;
  alias: string;
  /** Every count of the group is kept in the entity's counts row. */
  kept: boolean;
  items: { name: string; field: CountField | ListField | EmbedsManyField; column: string }[];
}

export function groupsOf(entity: Entity): Group[] {
  const groups = new Map<string, Group>();
  for (const [name, field] of Object.entries(entity.fields)) {
    if (field.kind !== 'count' && field.kind !== 'list' && field.kind !== 'embedsMany') continue;
    const link = field.kind === 'embedsMany' ? field.through : field.kind === 'count' ? field.through : undefined;
    const child = link ? undefined : entityOf(field.entity);
    const table = link ? link.table : child!.table;
    const via = link ? link.from : (field as CountField | ListField).via;
    let group = groups.get(`${table}.${via}`);
    if (!group) {
      const rows = child ? child.alias : `${entity.alias}_link`;
      group = { table, rows, via, ...(child ? { child } : {}), alias: `${child ? child.alias : table}_by_${via}`, kept: true, items: [] };
      groups.set(`${table}.${via}`, group);
    }
    group.items.push({ name, field, column: snake(name) });
    if (!(field.kind === 'count' && field.kept)) group.kept = false;
  }
  return [...groups.values()];
}

/** The aggregate of one count or list of a group, over the group's rows. */
function aggregate(scope: Scope, group: Group, item: Group['items'][number]): { sql: string; joins: string[] } {
  const r = group.rows;
  const { field } = item;
  if (field.kind === 'count') {
    return { sql: field.where ? `(count(*) FILTER (WHERE ${r}.${field.where}))::int` : 'count(*)::int', joins: [] };
  }
  if (field.kind === 'embedsMany') {
    // The linked rows, by key, with the columns the list holds; in the link's order.
    const target = entityOf(field.entity);
    const alias = `${r}_${item.column}`;
    const columns = field.fields.map((f) => target.fields[f] as ColumnField);
    const read = [...new Set(columns.map((c) => c.column))].join(', ');
    const values = field.fields.map((f, i) => `'${f}', ${columnValue(alias, columns[i]!)}`).join(', ');
    const order = field.through.order ? `${r}.${field.through.order}` : `${alias}.id`;
    return {
      sql: `jsonb_agg(jsonb_build_object(${values}) ORDER BY ${order})`,
      joins: [joinById(scope, target.table, alias, read, `${r}.${field.through.to}`)],
    };
  }
  const child = group.child!;
  const joins: string[] = [];
  const values = field.fields.map((f) => {
    const itemField = child.fields[f]!;
    if (itemField.kind === 'column') return `'${f}', ${columnValue(r, itemField)}`;
    if (itemField.kind !== 'embedsOne') throw new Error(`model: a list's items can hold columns and embedded objects only (${child.name}.${f})`);
    const { sql, join } = embedded(scope, child, r, f, itemField);
    joins.push(join);
    return `'${f}', ${sql}`;
  });
  const order = field.orderBy.map((col) => `${r}.${col}`).join(', ');
  return { sql: `jsonb_agg(jsonb_build_object(${values.join(', ')}) ORDER BY ${order})`, joins };
}

/**
 * The join of a group's aggregates as `group.alias`, for the rows of `alias`: for a few ids, a
 * LATERAL subquery per row (through the `via` index, no sort or grouping); else one grouped pass over
 * the rows referencing the ids in scope. `guard`: a condition the counted rows must also meet.
 */
function groupJoin(scope: Scope, alias: string, group: Group, guard: string | undefined, ids: string): string {
  const r = group.rows;
  const parts = group.items.map((item) => ({ item, ...aggregate(scope, group, item) }));
  const select = parts.map((p) => `${p.sql} AS ${p.item.column}`).join(',\n                    ');
  const joins = parts.flatMap((p) => p.joins.map((j) => `\n               ${j}`)).join('');
  if (scope === 'few') {
    return `LEFT JOIN LATERAL (
             SELECT ${select}
               FROM ${group.table} ${r}${joins}
              WHERE ${[guard, `${r}.${group.via} = ${alias}.id`].filter(Boolean).join(' AND ')}
           ) ${group.alias} ON true`;
  }
  return `LEFT JOIN (
             SELECT ${r}.${group.via},
                    ${select}
               FROM ${group.table} ${r}${joins}
              WHERE ${[inScope(scope, `${r}.${group.via}`, ids), guard].filter((w) => w && w !== 'true').join(' AND ') || 'true'}
              GROUP BY ${r}.${group.via}
           ) ${group.alias} ON ${group.alias}.${group.via} = ${alias}.id`;
}

/** `id` (SQL) has no row in the entity's counts table. */
const notKept = (entity: Entity, id: string): string =>
  `NOT EXISTS (SELECT 1 FROM ${entity.keptCounts!.table} k WHERE k.${entity.keptCounts!.key} = ${id})`;

/**
 * The kept counts of an entity, each with the column of its counts table and the SQL of its value
 * counted from the rows, over the joins of `countedJoins`.
 */
export function keptCountsOf(entity: Entity): { field: string; column: string; counted: string }[] {
  return groupsOf(entity).flatMap((g) =>
    g.items.flatMap((i) => (i.field.kind === 'count' && i.field.kept ? [{ field: i.name, column: i.field.kept, counted: `coalesce(${g.alias}.${i.column}, 0)` }] : [])),
  );
}

/**
 * LEFT JOINs of the entity's counted groups (counts only) to the row whose id is the SQL `id`,
 * counting only the rows whose `via` meets `condition` (SQL over `via`, written as `$via`): what a
 * counts row is set from (user-stats.ts).
 */
export function countedJoins(entity: Entity, id: string, condition: string): string {
  return groupsOf(entity)
    .filter((g) => g.kept)
    .map((g) => {
      const r = g.rows;
      const select = g.items.map((i) => `${aggregate('all', g, i).sql} AS ${i.column}`).join(', ');
      return `LEFT JOIN (
             SELECT ${r}.${g.via}, ${select}
               FROM ${g.table} ${r}
              WHERE ${condition.replaceAll('$via', `${r}.${g.via}`)}
              GROUP BY ${r}.${g.via}
           ) ${g.alias} ON ${g.alias}.${g.via} = ${id}`;
    })
    .join('\n      ');
}

const snake = (name: string): string => name.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
