import {
  getArgumentValues,
  getNamedType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  Kind,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLOutputType,
  type SelectionSetNode,
} from 'graphql';
import { entityOf, isReadTime, keptCountSql, MODEL, type Entity, type ReadTimeField } from '@blog/shared';
import { pageArgs, pageSql, type Params, type ReadLimits } from './root-fields';

/**
 * Turns GraphQL selection sets into SQL expressions that build the selected JSON from a tv_*
 * document (a jsonb value), inside PostgreSQL.
 *
 * Two shapes:
 * - 'response': the exact GraphQL response. Keys are response keys (aliases honoured) in
 *   selection order (json_build_object keeps order; jsonb would sort keys), __typename is a
 *   constant, @skip/@include with literal arguments are applied. The result is written to the HTTP
 *   response as it comes from PostgreSQL (fast path).
 * - 'source': objects keyed by field name holding every field selected anywhere under any alias,
 *   for graphql-js to resolve with its default resolvers (Apollo path: fragments with variable
 *   directives, introspection next to data, errors).
 *
 * What an entity's document does not hold is merged in by the same statement (shared/src/model,
 * declare.ts): a kept count from its counts row, a list a page at a time from the other entity's
 * projection table. A list's page depends on the request's arguments (`limit`, `after`), so its SQL
 * is a Hole, rendered per request (renderHoles) with parameters like the root fields'.
 *
 * SQL is built from constants and GraphQL names only: names match /^[_A-Za-z][_0-9A-Za-z]*$/ (the
 * GraphQL grammar, checked again here before a name is put in a string literal). Values are always
 * parameters, added through Params.
 */
export type Shape = 'response' | 'source';

/** Raised while compiling for the fast path when the document needs graphql-js (Apollo) instead. */
export class NotCompilable extends Error {
  override readonly name = 'NotCompilable';
}

export type Fragments = Readonly<Record<string, FragmentDefinitionNode | undefined>>;

const NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
/** json_build_object takes at most 100 arguments: 50 keys. */
const MAX_KEYS = 50;
/** Types whose documents have createdAt and id, and therefore a cursor. */
const CURSOR_FIELD = 'cursor';

export function sqlString(name: string): string {
  if (!NAME.test(name)) throw new Error(`not a GraphQL name: ${JSON.stringify(name)}`);
  return `'${name}'`;
}

/**
 * The cursor of a document: base64url("<createdAt>|<id>"), as validate.ts encodeCursor computes it.
 * PostgreSQL's base64 wraps lines and pads; translate() maps +/ to -_ and drops '=' and newlines.
 */
export function cursorSql(doc: string): string {
  return `to_json(translate(encode(convert_to(concat(${doc}->>'createdAt', '|', ${doc}->>'id'), 'UTF8'), 'base64'), E'+/=\\n', '-_'))`;
}

/** Collected fields of one selection level, by key, in first-seen order. */
export type FieldMap = Map<string, FieldNode[]>;

export interface CollectOptions {
  shape: Shape;
  fragments: Fragments;
  /** Key fields by response key (true) or by field name (false: 'source' shape below the root). */
  byResponseKey: boolean;
  /** Where the statement's holes are collected (one array per statement). */
  holes: Hole[];
}

/** A part of a statement that depends on a field's arguments: a list merged in at read time. */
export interface Hole {
  def: GraphQLField<unknown, unknown>;
  node: FieldNode;
  /** Its SQL for the field's arguments (as getArgumentValues gives them); throws ClientError on bad ones. */
  sql(args: Record<string, unknown>, limits: ReadLimits, p: Params): string;
}

/** Marks a hole's place in compiled SQL: MARK, its index in the statement's holes, MARK. Never in a name or a value. */
const MARK = '\u0000';

/**
 * The SQL of a compiled selection for one request: each hole replaced by its SQL for the field's
 * arguments with `variables` (and the holes inside it, in turn).
 */
export function renderHoles(
  sql: string,
  holes: readonly Hole[],
  variables: Record<string, unknown>,
  limits: ReadLimits,
  p: Params,
): string {
  if (!sql.includes(MARK)) return sql;
  const parts = sql.split(MARK);
  for (let i = 1; i < parts.length; i += 2) {
    const hole = holes[Number(parts[i])]!;
    parts[i] = renderHoles(hole.sql(getArgumentValues(hole.def, hole.node, variables), limits, p), holes, variables, limits, p);
  }
  return parts.join('');
}

/** The fields entities merge in at read time, by GraphQL type and field name. */
const READ_TIME = new Map<string, { entity: Entity; field: ReadTimeField }>(
  MODEL.flatMap((e) =>
    Object.entries(e.fields).flatMap(([name, field]) =>
      isReadTime(field) ? [[`${e.graphqlType}.${name}`, { entity: e, field }] as const] : [],
    ),
  ),
);

/** The entity whose field this is, when the field is merged in at read time. */
export function readTimeField(typeName: string, fieldName: string): { entity: Entity; field: ReadTimeField } | undefined {
  return READ_TIME.get(`${typeName}.${fieldName}`);
}

/** The key under which the 'source' shape puts a read-time list of one response key (a resolver reads it). */
export const sourceKey = (fieldName: string, responseKey: string): string => `${fieldName}@${responseKey}`;

export function collectFields(selectionSets: readonly SelectionSetNode[], options: CollectOptions, into: FieldMap = new Map()): FieldMap {
  for (const set of selectionSets) {
    for (const sel of set.selections) {
      if (options.shape === 'response' && !included(sel.directives)) continue;
      switch (sel.kind) {
        case Kind.FIELD: {
          const key = options.byResponseKey ? (sel.alias?.value ?? sel.name.value) : sel.name.value;
          const list = into.get(key);
          if (list) list.push(sel);
          else into.set(key, [sel]);
          break;
        }
        case Kind.INLINE_FRAGMENT:
          // Every type of this schema is an object type without interfaces: a valid fragment's type
          // condition is always the parent type, so its fields always apply.
          collectFields([sel.selectionSet], options, into);
          break;
        case Kind.FRAGMENT_SPREAD: {
          const fragment = options.fragments[sel.name.value];
          if (!fragment) throw new NotCompilable(`unknown fragment ${sel.name.value}`);
          collectFields([fragment.selectionSet], options, into);
          break;
        }
      }
    }
  }
  return into;
}

/** @skip/@include with literal arguments; a variable argument makes the document not compilable. */
function included(directives: FieldNode['directives']): boolean {
  if (!directives?.length) return true;
  for (const d of directives) {
    if (d.name.value !== 'skip' && d.name.value !== 'include') continue;
    const arg = d.arguments?.find((a) => a.name.value === 'if');
    if (!arg || arg.value.kind !== Kind.BOOLEAN) throw new NotCompilable('directive with a variable argument');
    if (d.name.value === 'skip' && arg.value.value) return false;
    if (d.name.value === 'include' && !arg.value.value) return false;
  }
  return true;
}

/** Aliases for nested set-returning functions, unique within one statement. */
export class AliasCounter {
  private n = 0;
  next(): number {
    this.n += 1;
    return this.n;
  }
}

/**
 * SQL building the JSON of `type` with the selected fields from the jsonb expression `doc`.
 */
export function objectSql(type: GraphQLObjectType, fields: FieldMap, doc: string, options: CollectOptions, aliases: AliasCounter): string {
  const parts: string[] = [];
  const defs = type.getFields();
  for (const [key, nodes] of fields) {
    const first = nodes[0]!;
    const name = first.name.value;
    if (name === '__typename') {
      if (options.shape === 'response') parts.push(`${sqlString(key)}, ${sqlString(type.name)}::text`);
      continue;
    }
    const def = defs[name];
    if (!def) throw new NotCompilable(`unknown field ${type.name}.${name}`);
    const merged = readTimeField(type.name, name);
    if (merged?.field.kind === 'list' && !options.byResponseKey) {
      // Each response key may ask for another page: one value per response key, read by its resolver.
      const byKey = new Map<string, FieldNode[]>();
      for (const n of nodes) {
        const k = n.alias?.value ?? name;
        byKey.set(k, [...(byKey.get(k) ?? []), n]);
      }
      for (const [k, group] of byKey) {
        sqlString(k);
        parts.push(`'${sourceKey(name, k)}', ${fieldSql(def, group, doc, options, aliases, merged)}`);
      }
      continue;
    }
    parts.push(`${sqlString(key)}, ${fieldSql(def, nodes, doc, options, aliases, merged)}`);
  }
  if (parts.length > MAX_KEYS) throw new NotCompilable('more than 50 keys in one object');
  return parts.length ? `json_build_object(${parts.join(', ')})` : `'{}'::json`;
}

function fieldSql(
  def: GraphQLField<unknown, unknown>,
  nodes: FieldNode[],
  doc: string,
  options: CollectOptions,
  aliases: AliasCounter,
  merged?: { entity: Entity; field: ReadTimeField },
): string {
  const name = def.name;
  if (name === CURSOR_FIELD) return cursorSql(doc);
  const id = `(${doc}->>'id')::uuid`;
  if (merged?.field.kind === 'count') return keptCountSql(merged.entity.name, name, id);
  const value = `${doc}->${sqlString(name)}`;
  const named = getNamedType(def.type);
  if (isLeafType(named)) return value;
  if (!isObjectType(named)) throw new NotCompilable(`unsupported type ${named.name}`);
  const sub = collectFields(
    nodes.map((n) => n.selectionSet).filter((s): s is SelectionSetNode => Boolean(s)),
    { ...options, byResponseKey: options.shape === 'response' },
  );
  const unwrapped: GraphQLOutputType = isNonNullType(def.type) ? def.type.ofType : def.type;
  if (merged?.field.kind === 'list') {
    const alias = `r${aliases.next()}`;
    const item = objectSql(named, sub, `${alias}.data`, options, aliases);
    const child = entityOf(merged.field.entity);
    const where = [`${merged.field.via} = ${id}`];
    const index =
      options.holes.push({
        def,
        node: nodes[0]!,
        sql: (args, limits, p) => pageSql(child.view, 'ASC', where, pageArgs(args, limits), item, alias, p),
      }) - 1;
    return `${MARK}${index}${MARK}`;
  }
  if (isListType(unwrapped)) {
    const n = aliases.next();
    // WITH ORDINALITY + ORDER BY: the embedded order (comments oldest first) is kept exactly.
    return (
      `(SELECT coalesce(json_agg(${objectSql(named, sub, `e${n}`, options, aliases)} ORDER BY o${n}), '[]'::json) ` +
      `FROM jsonb_array_elements(${value}) WITH ORDINALITY AS x${n}(e${n}, o${n}))`
    );
  }
  const obj = objectSql(named, sub, `(${value})`, options, aliases);
  return isNonNullType(def.type) ? obj : `CASE WHEN jsonb_typeof(${value}) = 'object' THEN ${obj} END`;
}
