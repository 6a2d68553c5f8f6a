import { ENTITY_TYPES, isEntityType, MODEL, type Entity } from '@blog/shared';
import { BadInputError } from '../errors';
import * as v from '../validate';

/**
 * The Query fields: how each one's arguments are checked and which tv_* rows answer it. Every root
 * field is one scalar subquery, so a request with any number of root fields, nested as deep as the
 * schema allows, is one SQL statement. Reads touch tv_*, the kept counts' tables (counters the
 * commands keep for reads, shared/src/sync/kept-counts.ts) and sync_log (metrics); no other table.
 *
 * Lists page by keyset on (created_at, id), the order of the tv_* indexes of migration 001, so a
 * page costs an index range scan whatever its offset.
 */
export interface ReadLimits {
  defaultPageSize: number;
  maxPageSize: number;
}

/** Positional parameters of the statement being built. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown, cast: string): string {
    this.values.push(value);
    return `$${this.values.length}::${cast}`;
  }
}

/** `select` is the SQL building the selected JSON from the row's document `t.data`. */
export interface RootField<A> {
  args(raw: Record<string, unknown>, limits: ReadLimits): A;
  sql(args: A, select: string, p: Params): string;
}

/** The row alias and document expression every root subquery exposes to `select`. */
export const ROW_DOC = 't.data';

/**
 * The document, detoasted once per row. A tv_* document can be larger than the TOAST threshold (a
 * post's content alone can be 100 KB), so it lives out of line, and every `data->'key'` would fetch
 * and reassemble it again. `data || '{}'` returns the document itself, detoasted, once, inside a
 * subquery the planner cannot flatten (it has a LIMIT or OFFSET 0), and the selection reads that
 * copy. Measured on the benchmark data (posts of ~6.6 KB): GetRecentPosts' statement takes ~0.23
 * instead of ~0.33 ms.
 */
const DOC = `data || '{}'::jsonb AS data`;

interface PageArgs {
  limit: number;
  after: v.Cursor | null;
}

interface ListArgs extends PageArgs {
  /** The filters given, by argument name (a Boolean as it is, an ID checked). */
  filters: Record<string, string | boolean>;
}

/** A page's arguments, checked: `limit` (default and maximum page size) and the `after` cursor. */
export function pageArgs(raw: Record<string, unknown>, limits: ReadLimits): PageArgs {
  return { limit: v.limit(raw.limit, limits.defaultPageSize, limits.maxPageSize), after: v.cursor(raw.after) };
}

/**
 * A page of rows of a projection table as a JSON array: the rows meeting `where` (SQL conditions),
 * after the cursor, in (created_at, id) `order`, at most `limit`; each row as `select`, SQL over the
 * row's document `<alias>.data`. An index range scan on (…, created_at, id) whatever the offset.
 */
export function pageSql(
  view: string,
  order: 'ASC' | 'DESC',
  where: string[],
  page: PageArgs,
  select: string,
  alias: string,
  p: Params,
): string {
  const conditions = [...where];
  if (page.after) {
    // Rows strictly after the cursor in list order.
    conditions.push(
      `(created_at, id) ${order === 'DESC' ? '<' : '>'} (${p.add(page.after.createdAt, 'timestamptz')}, ${p.add(page.after.id, 'uuid')})`,
    );
  }
  return (
    `(SELECT coalesce(json_agg(${select} ORDER BY ${alias}.created_at ${order}, ${alias}.id ${order}), '[]'::json) ` +
    `FROM (SELECT id, created_at, ${DOC} FROM ${view}${conditions.length ? ` WHERE ${conditions.join(' AND ')}` : ''} ` +
    `ORDER BY created_at ${order}, id ${order} LIMIT ${p.add(page.limit, 'int')}) ${alias})`
  );
}

/**
 * The list field of an entity (its declaration's read.list): a page of its projection rows in
 * (created_at, id) order from the `after` cursor, filtered on the declared plain columns.
 */
function listField(entity: Entity): RootField<ListArgs> {
  const { order, filters = {} } = entity.read.list!;
  return {
    args: (raw, limits) => {
      const given: Record<string, string | boolean> = {};
      for (const [arg, filter] of Object.entries(filters)) {
        const value = raw[arg];
        if (value === null || value === undefined) {
          if (filter.required) given[arg] = v.uuid(value, arg); // refused, naming the argument
          continue;
        }
        if (filter.type === 'Boolean') {
          if (typeof value === 'boolean') given[arg] = value;
        } else given[arg] = filter.type === 'ID' ? v.uuid(value, arg) : v.key(value, arg);
      }
      return { ...pageArgs(raw, limits), filters: given };
    },
    sql: (args, select, p) => {
      const where = Object.entries(args.filters).map(([arg, value]) => {
        const filter = filters[arg]!;
        // A boolean becomes SQL structure, not a parameter, so the planner can use a partial index
        // (tv_post_published_created_idx for the common "published posts" list).
        if (typeof value === 'boolean') return value ? filter.column : `NOT ${filter.column}`;
        if (filter.contains) {
          const { field, key } = filter.contains;
          return `data->'${field}' @> jsonb_build_array(jsonb_build_object('${key}', ${p.add(value, 'text')}))`;
        }
        return `${filter.column} = ${p.add(value, filter.type === 'ID' ? 'uuid' : 'text')}`;
      });
      return pageSql(entity.view, order, where, args, select, 't', p);
    },
  };
}

/** The lookup of an entity by a unique column (its declaration's read.byKey). */
function byKeyField(entity: Entity): RootField<{ key: string }> {
  const { arg, column, type } = entity.read.byKey!;
  return {
    args: (raw) => ({ key: type === 'ID' ? v.uuid(raw[arg], arg) : v.key(raw[arg], arg) }),
    sql: (args, select, p) =>
      `(SELECT ${select} FROM (SELECT ${DOC} FROM ${entity.view} ` +
      `WHERE ${column} = ${p.add(args.key, type === 'ID' ? 'uuid' : 'text')} OFFSET 0) t)`,
  };
}

/** 24-hour figures of one entity type from sync_log (read through its covering index). */
const syncMetrics: RootField<{ entityType: string }> = {
  args: (raw) => {
    const t = raw.entityType;
    if (!isEntityType(t)) {
      throw new BadInputError(`entityType must be one of ${ENTITY_TYPES.join(', ')}.`, 'entityType');
    }
    return { entityType: t };
  },
  sql: (args, select, p) => {
    const type = p.add(args.entityType, 'text');
    return (
      `(SELECT ${select} FROM (SELECT jsonb_build_object(` +
      `'entityType', ${type}, ` +
      `'totalSyncs24h', count(*), ` +
      `'avgDurationMs', round(avg(duration_ms)::numeric, 3), ` +
      `'successRate', round(100.0 * count(*) FILTER (WHERE success) / nullif(count(*), 0), 2), ` +
      `'failures24h', count(*) FILTER (WHERE NOT success)) AS data ` +
      `FROM sync_log WHERE entity_type = ${type} AND created_at >= now() - interval '24 hours') t)`
    );
  },
};

/** A root field with its argument type erased (args() output is only ever passed back to sql()). */
export type AnyRootField = RootField<unknown>;
const erase = <A>(f: RootField<A>): AnyRootField => f as unknown as AnyRootField;

/** The Query fields: the entities' (from their declarations) and syncMetrics. */
export const ROOT_FIELDS: Readonly<Record<string, AnyRootField | undefined>> = {
  ...Object.fromEntries(
    MODEL.flatMap((e) => [
      ...(e.read.list ? [[e.read.list.field, erase(listField(e))] as const] : []),
      ...(e.read.byKey ? [[e.read.byKey.field, erase(byKeyField(e))] as const] : []),
    ]),
  ),
  syncMetrics: erase(syncMetrics),
};
