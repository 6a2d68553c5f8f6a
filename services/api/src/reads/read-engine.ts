import {
  getArgumentValues,
  getNamedType,
  getVariableValues,
  isObjectType,
  Kind,
  parse,
  validate,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationRule,
} from 'graphql';
import type pg from 'pg';
import { ClientError } from '../errors';
import { MAX_QUERY_TOKENS } from '../limits/cost';
import { mutationCost } from '../limits/rate-limit';
import { Params, ROOT_FIELDS, ROW_DOC, type AnyRootField, type ReadLimits } from './root-fields';
import { AliasCounter, collectFields, NotCompilable, objectSql, sqlString, type CollectOptions, type Fragments } from './sql-builder';

/**
 * Reads: one SQL statement per GraphQL request, built in PostgreSQL from tv_* documents.
 *
 * Fast path (`execute`): a read document is parsed, validated and compiled ONCE (cache keyed by
 * document text and operation name) into the SQL that returns the complete `data` object as JSON
 * text with only the selected fields; per request only the variables are coerced and the arguments
 * checked, and the text PostgreSQL returns is written to the HTTP response without being parsed in
 * Node. graphql-js execution and JSON re-serialization are what make a naive GraphQL server slow;
 * here neither runs.
 *
 * Apollo path (`rootValue`): whatever the fast path leaves to Apollo Server (introspection,
 * @skip/@include on variables, invalid arguments, more than 50 keys in an object) still reads
 * with one statement: the first Query resolver of an operation runs one statement for every root
 * field of the operation ('source' shape) and each resolver takes its part.
 */
export interface Queryable {
  query: pg.Pool['query'];
}

interface CompiledRoot {
  key: string;
  /** undefined for __typename */
  field?: AnyRootField;
  def?: GraphQLField<unknown, unknown>;
  node?: FieldNode;
  select?: string;
}

/** A prepared statement (node-postgres query config). */
interface Statement {
  name: string;
  text: string;
  values: unknown[];
  rowMode: 'array';
}

interface FastEntry {
  fast: true;
  op: OperationDefinitionNode;
  roots: CompiledRoot[];
  /** The statement of an operation without variables, bound on first use. */
  constant?: Statement;
}

/** A mutation document, parsed and validated once, for the direct mutation path. */
export interface CompiledMutation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** Its writes: root fields, fragments expanded (what the rate limiter counts). */
  cost: number;
}

type Entry = { fast: false; reason: string; mutation?: CompiledMutation } | FastEntry;

/**
 * What a document is, looked up once per request (cache keyed by document text and operation
 * name): a read the fast path compiles (`execute` it), a valid mutation (`mutation`, for the direct
 * mutation path), or neither (Apollo Server answers).
 */
export type ReadPlan = Entry;

export interface ReadRequest {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
}

export type FastResult =
  | { kind: 'ok'; body: string }
  /** Not for the fast path: hand the request to Apollo Server. */
  | { kind: 'fallback'; reason: string };

/** The most root fields json_build_object can take (100 arguments). */
const MAX_ROOT_KEYS = 50;

export class ReadEngine {
  private readonly cache = new Map<string, Entry>();
  /** Prepared statement name of each distinct SQL text (PostgreSQL plans it once per connection). */
  private readonly statementNames = new Map<string, string>();
  private statementCounter = 0;

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly db: Queryable,
    private readonly limits: ReadLimits,
    private readonly rules: readonly ValidationRule[],
    private readonly cacheSize: number,
  ) {}

  /** The plan of a request's document: parsed, validated and compiled on first sight, then cached. */
  plan(req: Pick<ReadRequest, 'query' | 'operationName'>): ReadPlan {
    return this.entry(req.query, req.operationName ?? undefined);
  }

  /** Fast path, for a plan from plan(). Throws only for database failures. */
  async execute(entry: ReadPlan, variables: ReadRequest['variables']): Promise<FastResult> {
    if (!entry.fast) return { kind: 'fallback', reason: entry.reason };
    let statement: Statement | undefined;
    if (entry.constant) {
      statement = entry.constant;
    } else {
      const bound = this.bind(entry, variables ?? {});
      if (typeof bound === 'string') return { kind: 'fallback', reason: bound };
      statement = bound;
      // Without variables the statement never changes: bind once.
      if (!entry.op.variableDefinitions?.length) entry.constant = statement;
    }
    if (!statement.name) {
      return { kind: 'ok', body: JSON.stringify({ data: Object.fromEntries(entry.roots.map((r) => [r.key, 'Query'])) }) };
    }
    const result = await this.db.query<unknown[]>(statement);
    return { kind: 'ok', body: `{"data":${String(result.rows[0]![0])}}` };
  }

  /**
   * The SQL statement the fast path runs for a request (for the benchmark's bare server, which must
   * run exactly the same statement).
   */
  statementFor(req: ReadRequest): { text: string; values: unknown[] } | undefined {
    const entry = this.entry(req.query, req.operationName ?? undefined);
    if (!entry.fast) return undefined;
    const bound = this.bind(entry, req.variables ?? {});
    return typeof bound === 'string' || !bound.name ? undefined : { text: bound.text, values: bound.values };
  }

  /** Coerces the variables, checks the arguments and builds the statement; or why it cannot. */
  private bind(entry: FastEntry, variables: Record<string, unknown>): Statement | string {
    const coerced = getVariableValues(this.schema, entry.op.variableDefinitions ?? [], variables, { maxErrors: 1 });
    if (coerced.errors) return 'variables';
    const p = new Params();
    const parts: string[] = [];
    for (const root of entry.roots) {
      if (!root.field) {
        parts.push(`${sqlString(root.key)}, 'Query'::text`);
        continue;
      }
      let args: unknown;
      try {
        args = root.field.args(getArgumentValues(root.def!, root.node!, coerced.coerced), this.limits);
      } catch {
        // Invalid arguments: Apollo answers with the error (and the valid fields' data).
        return 'arguments';
      }
      parts.push(`${sqlString(root.key)}, ${root.field.sql(args, root.select!, p)}`);
    }
    // __typename alone needs no statement (name '' tells execute()).
    if (entry.roots.every((r) => !r.field)) return { name: '', text: '', values: [], rowMode: 'array' };
    const text = `SELECT json_build_object(${parts.join(', ')})::text`;
    return { name: this.statementName(text), text, values: p.values, rowMode: 'array' };
  }

  /**
   * Apollo path: the value of one root Query field. The first call for an operation runs the one
   * statement for all of its root fields; the others share its result (memo per request).
   */
  async rootValue(info: GraphQLResolveInfo, memo: Map<OperationDefinitionNode, Promise<Map<string, unknown>>>): Promise<unknown> {
    let pending = memo.get(info.operation);
    if (!pending) {
      pending = this.sourceRead(info.operation, info.fragments, info.variableValues);
      memo.set(info.operation, pending);
    }
    const results = await pending;
    const value = results.get(String(info.path.key));
    if (value instanceof ClientError) throw value;
    return value;
  }

  private async sourceRead(
    op: OperationDefinitionNode,
    fragments: Fragments,
    variables: Record<string, unknown>,
  ): Promise<Map<string, unknown>> {
    const results = new Map<string, unknown>();
    const options: CollectOptions = { shape: 'source', fragments, byResponseKey: true };
    const roots = collectFields([op.selectionSet], options);
    const queryType = this.schema.getQueryType()!;
    const aliases = new AliasCounter();
    const p = new Params();
    const columns: string[] = [];
    const keys: string[] = [];
    for (const [key, nodes] of roots) {
      const name = nodes[0]!.name.value;
      const field = ROOT_FIELDS[name];
      const def = queryType.getFields()[name];
      if (!field || !def) continue; // __typename, __schema, __type: graphql-js answers them
      let args: unknown;
      try {
        args = field.args(getArgumentValues(def, nodes[0]!, variables), this.limits);
      } catch (err) {
        if (err instanceof ClientError) {
          results.set(key, err);
          continue;
        }
        throw err;
      }
      const select = selectionSql(def, nodes, { ...options, byResponseKey: false }, aliases);
      columns.push(`${field.sql(args, select, p)} AS c${columns.length}`);
      keys.push(key);
    }
    if (columns.length) {
      const { rows } = await this.db.query<Record<string, unknown>>(`SELECT ${columns.join(', ')}`, p.values);
      keys.forEach((key, i) => results.set(key, rows[0]![`c${i}`]));
    }
    return results;
  }

  private entry(query: string, operationName: string | undefined): Entry {
    const cacheKey = `${operationName ?? ''}\u0000${query}`;
    const hit = this.cache.get(cacheKey);
    if (hit) {
      // Least recently used goes first: move the hit to the end.
      this.cache.delete(cacheKey);
      this.cache.set(cacheKey, hit);
      return hit;
    }
    const entry = this.compile(query, operationName);
    if (this.cacheSize > 0) {
      if (this.cache.size >= this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(cacheKey, entry);
    }
    return entry;
  }

  private compile(query: string, operationName: string | undefined): Entry {
    let doc: DocumentNode;
    try {
      doc = parse(query, { noLocation: true, maxTokens: MAX_QUERY_TOKENS });
    } catch {
      return { fast: false, reason: 'syntax' };
    }
    if (validate(this.schema, doc, this.rules, { maxErrors: 1 }).length) return { fast: false, reason: 'invalid' };
    const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const op = operationName ? ops.find((o) => o.name?.value === operationName) : ops.length === 1 ? ops[0] : undefined;
    if (!op) return { fast: false, reason: 'operation' };
    const fragments: Record<string, FragmentDefinitionNode> = {};
    for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments[d.name.value] = d;
    if (op.operation === 'mutation') {
      // Parsed again with locations, once: a mutation's errors point into the document, as Apollo's do.
      const document = parse(query, { maxTokens: MAX_QUERY_TOKENS });
      const operation = document.definitions[doc.definitions.indexOf(op)] as OperationDefinitionNode;
      return { fast: false, reason: 'mutation', mutation: { document, operation, cost: mutationCost(op, fragments) } };
    }
    if (op.operation !== 'query') return { fast: false, reason: op.operation };
    try {
      const options: CollectOptions = { shape: 'response', fragments, byResponseKey: true };
      const queryType = this.schema.getQueryType()!;
      const aliases = new AliasCounter();
      const roots: CompiledRoot[] = [];
      for (const [key, nodes] of collectFields([op.selectionSet], options)) {
        const name = nodes[0]!.name.value;
        if (name === '__typename') {
          roots.push({ key });
          continue;
        }
        const field = ROOT_FIELDS[name];
        const def = queryType.getFields()[name];
        if (!field || !def) throw new NotCompilable(`root field ${name}`);
        roots.push({ key, field, def, node: nodes[0]!, select: selectionSql(def, nodes, options, aliases) });
      }
      if (roots.length > MAX_ROOT_KEYS) throw new NotCompilable('too many root fields');
      return { fast: true, op, roots };
    } catch (err) {
      if (err instanceof NotCompilable) return { fast: false, reason: err.message };
      throw err;
    }
  }

  private statementName(text: string): string {
    let name = this.statementNames.get(text);
    if (!name) {
      // Names are never reused: a connection may still hold an older statement under a name.
      this.statementCounter += 1;
      name = `blog_read_${this.statementCounter}`;
      // Bounded like the document cache; a forgotten text is only prepared again under a new name.
      if (this.statementNames.size >= Math.max(this.cacheSize * 4, 64)) this.statementNames.clear();
      this.statementNames.set(text, name);
    }
    return name;
  }
}

/** SQL building the selected JSON of a root field's item from the row document. */
function selectionSql(def: GraphQLField<unknown, unknown>, nodes: FieldNode[], options: CollectOptions, aliases: AliasCounter): string {
  const type = getNamedType(def.type);
  if (!isObjectType(type)) throw new NotCompilable(`root field ${def.name} is not an object`);
  const sets = nodes.map((n) => n.selectionSet).filter((s): s is SelectionSetNode => Boolean(s));
  const fields = collectFields(sets, { ...options, byResponseKey: options.shape === 'response' });
  return objectSql(type as GraphQLObjectType, fields, ROW_DOC, options, aliases);
}
