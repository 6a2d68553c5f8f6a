import {
  documentFields,
  entityOf,
  isReadTime,
  type ColumnField,
  type CountField,
  type EmbedsManyField,
  type Entity,
  type EntityType,
  type Field,
} from '../model';
import { fromById, IDS_PARAM, inScope, isoUtc, joinById, type Scope } from './scope';

/** How documentsSql builds the documents of the 'ids' scope. */
export interface DocumentsOptions {
  /**
   * The ids, as an SQL array expression (default `$1::uuid[]`): a chunk of the online verify
   * computes its ids in the same statement (verify.ts).
   */
  ids?: string;
  /**
   * A relation holding the rows themselves, read instead of the entity's table: the CTE of the
   * statement that inserts them, whose new rows that statement cannot read from the table.
   */
  source?: string;
  /**
   * Read the embedded rows FOR SHARE (few ids only). A locking read in READ COMMITTED returns a row
   * as last committed, also when that commit came after the statement's snapshot (while the
   * statement waited for the lock): what a statement that writes a new row's projection needs, as
   * the sync of the change that committed meanwhile could not know of the new row.
   */
  lockEmbedded?: boolean;
}

/**
 * The document SQL of an entity, derived from its declaration (shared/src/model): one statement,
 * computed from tb_* alone, returning `id`, the plain columns and `data` for each id in scope whose
 * tb_* row exists. A document holds only what is bounded (lists and kept counts are merged in at
 * read time, services/api/src/reads):
 *
 *   columns      the row's own columns (timestamps rendered as toISOString() renders them)
 *   embedsOne    a join on the referenced row's primary key
 *   count,       one aggregate subquery per (entity, via) over the rows referencing this one, or per
 *   embedsMany   link table; for a few ids a LATERAL lookup per row through the `via` index, else
 *                one grouped pass
 */
export function documentsSql(entity: Entity, scope: Scope, options: DocumentsOptions = {}): string {
  const a = entity.alias;
  const ids = options.ids ?? IDS_PARAM;
  if (scope === 'few' && ids !== IDS_PARAM && !options.source)
    throw new Error('documentsSql: the few-ids documents read their ids from $1');
  const groups = groupsOf(entity, 'document');
  const joins: string[] = [];
  const values = documentFields(entity).map(([name, field]) => {
    switch (field.kind) {
      case 'column':
        return `'${name}', ${columnValue(a, field)}`;
      case 'embedsOne': {
        const { sql, join } = embedded(scope, entity, a, name, field, options.lockEmbedded);
        joins.push(join);
        return `'${name}', ${sql}`;
      }
      default: {
        const group = groups.find((g) => g.items.some((i) => i.name === name))!;
        const item = group.items.find((i) => i.name === name)!;
        const counted = `${group.alias}.${item.column}`;
        return `'${name}', coalesce(${counted}, ${field.kind === 'count' ? '0' : "'[]'::jsonb"})`;
      }
    }
  });
  for (const group of groups) joins.push(groupJoin(scope, a, group, ids));
  return `
    SELECT ${[`${a}.id`, ...Object.keys(entity.columns).map((c) => `${a}.${c}`)].join(', ')},
           jsonb_build_object(
             ${values.join(',\n             ')}
           ) AS data
      FROM ${options.source ? `${options.source} ${a}` : fromById(scope, entity.table, a)}
      ${joins.join('\n      ')}
     WHERE ${inScope(scope, `${a}.id`, ids)}`;
}

/**
 * The document (and plain columns) of the row whose id is $1, inserted by the same statement in its
 * CTE `source`: a statement cannot read its own new rows back from their table.
 */
export function insertedRowDocumentSql(type: EntityType, source: string, lockEmbedded = false): string {
  return documentsSql(entityOf(type), 'few', { source, ids: 'ARRAY[$1::uuid]', lockEmbedded });
}

/** insertedDocumentSql's texts, made once per entity type and source. */
const insertedDocuments = new Map<string, string>();

/**
 * The final query of a statement that inserts a row in its CTE `source`: that row's document, as
 * `data`, for the row whose id is $1 (the answer of a QUEUED create made in one statement).
 */
export function insertedDocumentSql(type: EntityType, source: string): string {
  const key = `${type}/${source}`;
  let sql = insertedDocuments.get(key);
  if (!sql) {
    sql = `SELECT data FROM (${insertedRowDocumentSql(type, source)}) doc`;
    insertedDocuments.set(key, sql);
  }
  return sql;
}

/** The value of a column field of the row `alias`. */
const columnValue = (alias: string, field: Extract<Field, { kind: 'column' }>): string =>
  field.timestamp ? isoUtc(`${alias}.${field.column}`) : `${alias}.${field.column}`;

/** An embedded object: its JSON (of the columns of the referenced row) and the join that reads it. */
function embedded(scope: Scope, from: Entity, fromAlias: string, name: string, field: Extract<Field, { kind: 'embedsOne' }>, lock = false) {
  const target = entityOf(field.entity);
  const alias = `${fromAlias}_${name.toLowerCase()}`;
  const columns = field.fields.map((f) => {
    const column = target.fields[f];
    if (column?.kind !== 'column')
      throw new Error(`model ${from.name}.${name}: ${target.name}.${f} is not a column (only columns can be embedded)`);
    return column;
  });
  const read = [...new Set(columns.map((c) => c.column))].join(', ');
  return {
    sql: `jsonb_build_object(${field.fields.map((f, i) => `'${f}', ${columnValue(alias, columns[i]!)}`).join(', ')})`,
    join: joinById(scope, target.table, alias, read, `${fromAlias}.${field.via}`, lock),
  };
}

/**
 * Counts and embedded lists of an entity over the same rows, computed by one subquery: the rows of
 * `table` (as `rows`) whose column `via` is the entity's id. Those rows are another entity's
 * (`child`: counts over a reference) or a link table's (counts and embedded lists through it).
 */
export interface Group {
  table: string;
  rows: string;
  via: string;
  child?: Entity;
  alias: string;
  items: { name: string; field: CountField | EmbedsManyField; column: string }[];
}

/** The groups of the document's counts and embedded lists, or of the kept counts (kept-counts.ts). */
export function groupsOf(entity: Entity, which: 'document' | 'kept'): Group[] {
  const groups = new Map<string, Group>();
  for (const [name, field] of Object.entries(entity.fields)) {
    if (field.kind !== 'count' && field.kind !== 'embedsMany') continue;
    if ((which === 'kept') !== isReadTime(field)) continue;
    const link = field.through;
    const child = link ? undefined : entityOf(field.entity);
    const table = link ? link.table : child!.table;
    const via = link ? link.from : (field as CountField).via;
    let group = groups.get(`${table}.${via}`);
    if (!group) {
      const rows = child ? child.alias : `${entity.alias}_link`;
      group = { table, rows, via, ...(child ? { child } : {}), alias: `${child ? child.alias : table}_by_${via}`, items: [] };
      groups.set(`${table}.${via}`, group);
    }
    group.items.push({ name, field, column: snake(name) });
  }
  return [...groups.values()];
}

/** The aggregate of one count or embedded list of a group, over the group's rows. */
function aggregate(scope: Scope, group: Group, item: Group['items'][number]): { sql: string; joins: string[] } {
  const r = group.rows;
  const { field } = item;
  if (field.kind === 'count') {
    return { sql: field.where ? `(count(*) FILTER (WHERE ${r}.${field.where}))::int` : 'count(*)::int', joins: [] };
  }
  // An embedded list: the linked rows, by key, with the columns the list holds; in the link's order.
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

/**
 * The join of a group's aggregates as `group.alias`, for the rows of `alias`: for a few ids, a
 * LATERAL subquery per row (through the `via` index, no sort or grouping); else one grouped pass over
 * the rows referencing the ids in scope.
 */
function groupJoin(scope: Scope, alias: string, group: Group, ids: string): string {
  const r = group.rows;
  const parts = group.items.map((item) => ({ item, ...aggregate(scope, group, item) }));
  const select = parts.map((p) => `${p.sql} AS ${p.item.column}`).join(',\n                    ');
  const joins = parts.flatMap((p) => p.joins.map((j) => `\n               ${j}`)).join('');
  if (scope === 'few') {
    return `LEFT JOIN LATERAL (
             SELECT ${select}
               FROM ${group.table} ${r}${joins}
              WHERE ${r}.${group.via} = ${alias}.id
           ) ${group.alias} ON true`;
  }
  return `LEFT JOIN (
             SELECT ${r}.${group.via},
                    ${select}
               FROM ${group.table} ${r}${joins}
              WHERE ${inScope(scope, `${r}.${group.via}`, ids)}
              GROUP BY ${r}.${group.via}
           ) ${group.alias} ON ${group.alias}.${group.via} = ${alias}.id`;
}

/**
 * The kept counts of an entity, each with the column of its counts table and the SQL of its value
 * counted from the rows, over the joins of `countedJoins`.
 */
export function keptCountsOf(entity: Entity): { field: string; column: string; counted: string }[] {
  return groupsOf(entity, 'kept').flatMap((g) =>
    g.items.flatMap((i) =>
      i.field.kind === 'count' && i.field.kept
        ? [{ field: i.name, column: i.field.kept, counted: `coalesce(${g.alias}.${i.column}, 0)` }]
        : [],
    ),
  );
}

/**
 * LEFT JOINs of the entity's counted groups (counts only) to the row whose id is the SQL `id`,
 * counting only the rows whose `via` meets `condition` (SQL over `via`, written as `$via`): what a
 * counts row is set from (kept-counts.ts).
 */
export function countedJoins(entity: Entity, id: string, condition: string): string {
  return groupsOf(entity, 'kept')
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
