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
import { hash } from 'node:crypto';
import { pgErrorCode, QUERY_CANCELED, type EntityType } from '@blog/shared';
import type pg from 'pg';
import { ClientError, ReadRefusedError } from '../errors';
import { MAX_QUERY_TOKENS, operationCost, type CostLimits } from '../limits/cost';
import { mutationCost } from '../limits/rate-limit';
import type { ReadGate } from './read-gate';
import { pageArgs, Params, ROOT_FIELDS, ROW_DOC, type AnyRootField, type ReadLimits } from './root-fields';
import {
  AliasCounter,
  collectFields,
  NotCompilable,
  objectSql,
  readTimeField,
  renderHoles,
  sourceKey,
  sqlString,
  type CollectOptions,
  type Fragments,
  type Hole,
} from './sql-builder';
import { StatementNames } from './statement-names';
import { dependenciesOf, type ResponseCache, type ResponseCacheStats } from './response-cache';

/**
 * Reads: one SQL statement per GraphQL request, built in PostgreSQL from tv_* documents.
 *
 * Fast path (`execute`): a read document is parsed, validated and compiled ONCE (cache keyed by the
 * document text and operation name, or their hash past 16 KB) into the SQL that returns the complete `data`
 * object as JSON text with only the selected fields; per request only the variables are coerced and
 * the arguments checked, and the text PostgreSQL returns is written to the HTTP response without
 * being parsed in Node. graphql-js execution and JSON re-serialization are what make a naive
 * GraphQL server slow; here neither runs.
 *
 * Apollo path (`rootValue`): whatever the fast path leaves to Apollo Server (introspection,
 * @skip/@include on variables, invalid arguments, more than 50 keys in an object) still reads
 * with one statement: the first Query resolver of an operation runs one statement for every root
 * field of the operation ('source' shape) and each resolver takes its part.
 *
 * Bounds, whatever clients send (services/api/README.md, "Abuse limits"):
 *  - the answer: PostgreSQL measures it and sends it only when it has at most MAX_RESPONSE_BYTES
 *    bytes (else RESPONSE_TOO_LARGE, and only its size crosses the network);
 *  - the database: every read waits for its turn at the ReadGate (connections kept for writes, heavy
 *    reads a few at a time); a read is heavy when its cost (limits/cost.ts, with the request's
 *    variables) reaches HEAVY_READ_COST and its document has not yet been seen to answer that cost
 *    lightly, or when its document was seen to answer heavily (see Load);
 *  - the compiled documents: QUERY_CACHE_SIZE documents and QUERY_CACHE_MB of memory; documents
 *    that fail to parse or validate are not kept;
 *  - the server's prepared statements: see StatementNames, and each connection is closed once it
 *    holds more than DB_PREPARED_READS_MAX of them.
 */
export interface ReadEngineOptions {
  limits: ReadLimits & CostLimits;
  rules: readonly ValidationRule[];
  /** Documents kept compiled (0: none). */
  cacheSize: number;
  /** Memory the compiled documents may take, in bytes (estimated; see entryBytes). */
  cacheBytes: number;
  /** The largest answer sent, in bytes of JSON. */
  maxResponseBytes: number;
  /** The cost from which a read may be heavy. */
  heavyReadCost: number;
  /** Read statements one connection may hold prepared before it is closed (and the names given). */
  preparedPerConnection: number;
  /** Admission of reads; without it reads run as soon as the pool gives a connection. */
  gate?: ReadGate;
  /** The response cache (RESPONSE_CACHE=on): answers kept while the change feed says nothing they read changed. */
  responses?: ResponseCache;
  /** The primary, when reads go to a replica: reads that must see a write (sync tokens) go there. */
  primary?: ReadPool;
}

/** A read's connection source: the pool reads check connections out of. */
export type ReadPool = Pick<pg.Pool, 'connect'>;

interface CompiledRoot {
  key: string;
  /** undefined for __typename */
  field?: AnyRootField;
  def?: GraphQLField<unknown, unknown>;
  node?: FieldNode;
  select?: string;
}

/** A read statement: its SQL and values (named when it runs, see StatementNames). */
interface Statement {
  text: string;
  values: unknown[];
}

/**
 * What has been seen of a document's reads, by cost: reads costing at most `lightUpTo` answered
 * lightly; one costing `heavyFrom` answered heavily (more than HEAVY_BYTES, too large, or cancelled
 * by the statement timeout), and every read of that cost or more is heavy from then on. Sizes, not
 * durations: a duration also measures how busy the server was, and a busy moment must not make a
 * cheap document heavy for good.
 */
interface Load {
  lightUpTo: number;
  heavyFrom: number;
}

/** The SQLSTATE of blog_read_answer (migration 004) for an answer over the limit; its DETAIL is the size. */
const ANSWER_TOO_LARGE = '54B01';

/** An answer larger than this makes its document's reads heavy. */
const HEAVY_BYTES = 1 << 20;

interface FastEntry {
  fast: true;
  op: OperationDefinitionNode;
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  roots: CompiledRoot[];
  /** The holes of the roots' selections (sql-builder.ts): lists paged by the request's arguments. */
  holes: Hole[];
  /** The cost with every variable `limit` at MAX_PAGE_SIZE: no request costs more. */
  maxCost: number;
  load: Load;
  /** The statement of an operation without variables, bound on first use. */
  constant?: { statement: Statement; cost: number };
  bytes: number;
  /** Its number among the documents this engine compiled: its answers' key in the response cache. */
  key?: string;
  /** What its answers depend on, for the response cache: known after its first statement; null: not cached. */
  deps?: readonly EntityType[] | null;
}

/** A mutation document, parsed and validated once, for the direct mutation path. */
export interface CompiledMutation {
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** Its writes: root fields, fragments expanded (what the rate limiter counts). */
  cost: number;
}

type Entry = { fast: false; reason: string; mutation?: CompiledMutation; bytes: number } | FastEntry;

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
  /** `cached`: answered from the response cache, as the bytes to send. */
  | { kind: 'ok'; body: string | Buffer; cached?: true }
  /** Not for the fast path: hand the request to Apollo Server. */
  | { kind: 'fallback'; reason: string };

/** The most root fields json_build_object can take (100 arguments). */
const MAX_ROOT_KEYS = 50;
/** The client of reads that name none (tests, tools). */
const NO_CLIENT = 'unknown';
/** Documents up to this many characters are kept under their text, longer ones under its hash. */
const MAX_TEXT_KEY = 16_384;

export class ReadEngine {
  /** Compiled documents by text (or its hash), least recently used first. */
  private readonly cache = new Map<string, Entry>();
  private cachedBytes = 0;
  /** Documents compiled so far (see FastEntry.key). */
  private compiled = 0;
  private readonly names: StatementNames;
  /** The read statement names each connection holds prepared. */
  private readonly preparedOn = new WeakMap<object, Set<string>>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly pool: ReadPool,
    private readonly options: ReadEngineOptions,
  ) {
    // The statement texts remembered take at most a quarter of the compiled documents' memory again.
    this.names = new StatementNames(options.preparedPerConnection, Math.max(options.cacheBytes / 4, 1 << 20));
  }

  /** The plan of a request's document: parsed, validated and compiled on first sight, then cached. */
  plan(req: Pick<ReadRequest, 'query' | 'operationName'>): ReadPlan {
    return this.entry(req.query, req.operationName ?? undefined);
  }

  /**
   * Fast path, for a plan from plan(). Throws ReadRefusedError for a read that may not run or whose
   * answer is too large, and database errors.
   */
  async execute(
    entry: ReadPlan,
    variables: ReadRequest['variables'],
    client = NO_CLIENT,
    options: { cache?: boolean; primary?: boolean } = {},
  ): Promise<FastResult> {
    if (!entry.fast) return { kind: 'fallback', reason: entry.reason };
    const responses = options.cache === false || entry.deps === null ? undefined : this.options.responses;
    const cacheKey = responses ? `${entry.key}\u0000${variables ? JSON.stringify(variables) : ''}` : '';
    if (responses && entry.deps) {
      const hit = responses.get(cacheKey);
      if (hit !== undefined) return { kind: 'ok', body: hit, cached: true };
    }
    let bound = entry.constant;
    if (!bound) {
      const made = this.bind(entry, variables ?? {});
      if (typeof made === 'string') return { kind: 'fallback', reason: made };
      bound = made;
      // Without variables the statement never changes: bind once.
      if (!entry.op.variableDefinitions?.length) entry.constant = bound;
    }
    if (!bound.statement.text) {
      return { kind: 'ok', body: JSON.stringify({ data: Object.fromEntries(entry.roots.map((r) => [r.key, 'Query'])) }) };
    }
    const { load } = entry;
    if (responses && entry.deps === undefined)
      entry.deps = dependenciesOf(
        bound.statement.text,
        entry.roots.every((r) => r.field !== ROOT_FIELDS.syncMetrics),
      );
    const snapshot = responses && entry.deps ? responses.snapshot(entry.deps) : undefined;
    let body: string;
    try {
      const pool = options.primary ? (this.options.primary ?? this.pool) : this.pool;
      body = await this.run(pool, bound.statement, client, bound.cost >= load.heavyFrom || bound.cost > load.lightUpTo);
    } catch (err) {
      if (tooHeavy(err)) load.heavyFrom = Math.min(load.heavyFrom, bound.cost);
      throw err;
    }
    // The answer's UTF-8 size: JSON text is mostly ASCII, so its length is close, and never larger.
    if (body.length > HEAVY_BYTES) load.heavyFrom = Math.min(load.heavyFrom, bound.cost);
    else if (bound.cost < load.heavyFrom) load.lightUpTo = Math.max(load.lightUpTo, bound.cost);
    const answer = `{"data":${body}}`;
    if (snapshot) responses!.put(cacheKey, answer, entry.deps!, snapshot);
    return { kind: 'ok', body: answer };
  }

  /**
   * The SQL statement the fast path runs for a request (for the benchmark's bare server, which must
   * run exactly the same statement).
   */
  statementFor(req: ReadRequest): { text: string; values: unknown[] } | undefined {
    const entry = this.entry(req.query, req.operationName ?? undefined);
    if (!entry.fast) return undefined;
    const bound = this.bind(entry, req.variables ?? {});
    return typeof bound === 'string' || !bound.statement.text ? undefined : bound.statement;
  }

  /** Coerces the variables, checks the arguments and builds the statement and its cost; or why it cannot. */
  private bind(entry: FastEntry, variables: Record<string, unknown>): { statement: Statement; cost: number } | string {
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
      let select: string;
      try {
        args = root.field.args(getArgumentValues(root.def!, root.node!, coerced.coerced), this.options.limits);
        select = renderHoles(root.select!, entry.holes, coerced.coerced, this.options.limits, p);
      } catch {
        // Invalid arguments: Apollo answers with the error (and the valid fields' data).
        return 'arguments';
      }
      parts.push(`${sqlString(root.key)}, ${root.field.sql(args, select, p)}`);
    }
    // __typename alone needs no statement (an empty text tells execute()).
    if (entry.roots.every((r) => !r.field)) return { statement: { text: '', values: [] }, cost: 0 };
    // Priced again with the variables only when they can make a difference.
    const cost =
      entry.maxCost >= this.options.heavyReadCost && entry.op.variableDefinitions?.length
        ? operationCost(this.schema, entry.op, entry.fragments, this.options.limits, coerced.coerced)
        : entry.maxCost;
    return { statement: this.capped(`json_build_object(${parts.join(', ')})::text`, p), cost };
  }

  /**
   * The statement answering `json` (SQL of a text value) when it has at most MAX_RESPONSE_BYTES
   * bytes: PostgreSQL measures the answer before sending it (blog_read_answer, migration 004), so a
   * larger one never reaches this process; the statement fails with ANSWER_TOO_LARGE instead.
   */
  private capped(json: string, p: Params): Statement {
    return { text: `SELECT blog_read_answer(${json}, ${p.add(this.options.maxResponseBytes, 'int')})`, values: p.values };
  }

  /**
   * Runs a read statement when the gate gives it a turn, on a connection of its own (closed once it
   * holds too many prepared statements), and returns the answer's text.
   */
  private async run(pool: ReadPool, statement: Statement, client: string, heavy: boolean): Promise<string> {
    const leave = await this.options.gate?.enter(client, heavy);
    try {
      const connection = await pool.connect();
      let release: Error | boolean = false;
      try {
        const name = this.names.nameFor(statement.text);
        const result = await connection.query<[string]>({ name, text: statement.text, values: statement.values, rowMode: 'array' });
        if (name) release = this.holdsTooMany(connection, name);
        return result.rows[0]![0];
      } catch (err) {
        if (pgErrorCode(err) === ANSWER_TOO_LARGE)
          throw tooLarge(Number((err as { detail?: string }).detail), this.options.maxResponseBytes);
        release = err instanceof Error ? err : new Error(String(err));
        if (pgErrorCode(err) === QUERY_CANCELED) {
          throw new ReadRefusedError(
            'SERVICE_UNAVAILABLE',
            'The read took longer than the statement timeout and was cancelled; ask for less, or retry later.',
            1,
            {},
            { cause: err },
          );
        }
        throw err;
      } finally {
        connection.release(release);
      }
    } finally {
      leave?.();
    }
  }

  /** Notes `name` prepared on the connection; true when it now holds more than its share. */
  private holdsTooMany(connection: object, name: string): boolean {
    let held = this.preparedOn.get(connection);
    if (!held) {
      held = new Set();
      this.preparedOn.set(connection, held);
    }
    held.add(name);
    return held.size > this.options.preparedPerConnection;
  }

  /**
   * Apollo path: the value of one root Query field. The first call for an operation runs the one
   * statement for all of its root fields; the others share its result (memo per request).
   */
  async rootValue(
    info: GraphQLResolveInfo,
    memo: Map<OperationDefinitionNode, Promise<Map<string, unknown>>>,
    client = NO_CLIENT,
  ): Promise<unknown> {
    let pending = memo.get(info.operation);
    if (!pending) {
      pending = this.sourceRead(info.operation, info.fragments, info.variableValues, client);
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
    client: string,
  ): Promise<Map<string, unknown>> {
    const results = new Map<string, unknown>();
    const options: CollectOptions = { shape: 'source', fragments, byResponseKey: true, holes: [] };
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
        args = field.args(getArgumentValues(def, nodes[0]!, variables), this.options.limits);
      } catch (err) {
        if (err instanceof ClientError) {
          results.set(key, err);
          continue;
        }
        throw err;
      }
      // A nested list with bad arguments reads nothing: its resolver answers with the error.
      const select = renderHoles(
        selectionSql(def, nodes, { ...options, byResponseKey: false }, aliases),
        options.holes.map(orNull),
        variables,
        this.options.limits,
        p,
      );
      columns.push(`coalesce((${field.sql(args, select, p)})::text, 'null')`);
      keys.push(key);
    }
    if (columns.length) {
      // The root fields' values as one JSON array: measured and capped like the fast path's answer.
      const statement = this.capped(`'[' || ${columns.join(" || ',' || ")} || ']'`, p);
      const cost = operationCost(this.schema, op, fragmentMap(fragments), this.options.limits, variables);
      const values = JSON.parse(await this.run(this.pool, statement, client, cost >= this.options.heavyReadCost)) as unknown[];
      keys.forEach((key, i) => results.set(key, values[i]));
    }
    return results;
  }

  /**
   * A field merged in at read time (a kept count, a list's page), for graphql-js's resolvers (the
   * Apollo path, mutation answers). The Apollo path's statement has read it into the source already;
   * a document that lacks it (a mutation's answer) gets it from a statement of its own. A list's
   * arguments are checked first (BAD_USER_INPUT naming them).
   */
  async mergedField(source: Record<string, unknown>, info: GraphQLResolveInfo, client = NO_CLIENT): Promise<unknown> {
    const merged = readTimeField(info.parentType.name, info.fieldName);
    if (!merged) throw new Error(`${info.parentType.name}.${info.fieldName} is not merged in at read time`);
    let key = info.fieldName;
    if (merged.field.kind === 'list') {
      const node = info.fieldNodes[0]!;
      pageArgs(getArgumentValues(info.parentType.getFields()[info.fieldName]!, node, info.variableValues), this.options.limits);
      key = sourceKey(info.fieldName, String(info.path.key));
    }
    if (key in source) return source[key];
    const options: CollectOptions = { shape: 'source', fragments: info.fragments, byResponseKey: false, holes: [] };
    const p = new Params();
    const doc = `jsonb_build_object('id', ${p.add(source.id, 'uuid')})`;
    const fields = new Map([[info.fieldName, [...info.fieldNodes]]]);
    const sql = renderHoles(
      objectSql(info.parentType, fields, doc, options, new AliasCounter()),
      options.holes,
      info.variableValues,
      this.options.limits,
      p,
    );
    const answer = JSON.parse(await this.run(this.pool, this.capped(`${sql}::text`, p), client, false)) as Record<string, unknown>;
    return answer[key];
  }

  private entry(query: string, operationName: string | undefined): Entry {
    // The text itself up to MAX_TEXT_KEY characters (a lookup costs less than hashing it, and is
    // counted in the entry's bytes); a hash of a longer one: a document may carry a megabyte of
    // comments, which is not kept.
    const text = `${operationName ?? ''}\u0000${query}`;
    const cacheKey = text.length <= MAX_TEXT_KEY ? text : hash('sha256', text, 'base64');
    const hit = this.cache.get(cacheKey);
    if (hit) {
      // Least recently used goes first: move the hit to the end.
      this.cache.delete(cacheKey);
      this.cache.set(cacheKey, hit);
      return hit;
    }
    const entry = this.compile(query, operationName);
    entry.bytes += 2 * cacheKey.length;
    if (entry.fast) entry.key = `${(this.compiled += 1)}`;
    // Documents that do not parse or validate are not kept: Apollo answers them, and nothing a
    // client sends wrong stays in memory.
    const failed = !entry.fast && !entry.mutation && (entry.reason === 'syntax' || entry.reason === 'invalid');
    if (this.options.cacheSize > 0 && !failed && entry.bytes <= this.options.cacheBytes) {
      this.cache.set(cacheKey, entry);
      this.cachedBytes += entry.bytes;
      for (const [key, old] of this.cache) {
        if (this.cache.size <= this.options.cacheSize && this.cachedBytes <= this.options.cacheBytes) break;
        this.cache.delete(key);
        this.cachedBytes -= old.bytes;
      }
    }
    return entry;
  }

  /** The read gate (tests look at its counts). */
  get gate(): ReadGate | undefined {
    return this.options.gate;
  }

  /** The response cache's counts (undefined when it is off). */
  responseCacheStats(): ResponseCacheStats | undefined {
    return this.options.responses?.stats();
  }

  /** Compiled documents kept now, and the memory they are estimated to take. */
  cacheUsage(): { documents: number; bytes: number } {
    return { documents: this.cache.size, bytes: this.cachedBytes };
  }

  private compile(query: string, operationName: string | undefined): Entry {
    let doc: DocumentNode;
    try {
      doc = parse(query, { noLocation: true, maxTokens: MAX_QUERY_TOKENS });
    } catch {
      return { fast: false, reason: 'syntax', bytes: 0 };
    }
    if (validate(this.schema, doc, this.options.rules, { maxErrors: 1 }).length) return { fast: false, reason: 'invalid', bytes: 0 };
    const ops = doc.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
    const op = operationName ? ops.find((o) => o.name?.value === operationName) : ops.length === 1 ? ops[0] : undefined;
    if (!op) return { fast: false, reason: 'operation', bytes: entryBytes(doc) };
    const fragments = new Map<string, FragmentDefinitionNode>();
    for (const d of doc.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d);
    if (op.operation === 'mutation') {
      // Parsed again with locations, once: a mutation's errors point into the document, as Apollo's
      // do. Locations refer to the whole text, which the entry therefore keeps.
      const document = parse(query, { maxTokens: MAX_QUERY_TOKENS });
      const operation = document.definitions[doc.definitions.indexOf(op)] as OperationDefinitionNode;
      return {
        fast: false,
        reason: 'mutation',
        mutation: { document, operation, cost: mutationCost(op, Object.fromEntries(fragments)) },
        bytes: 2 * entryBytes(doc) + 2 * query.length,
      };
    }
    if (op.operation !== 'query') return { fast: false, reason: op.operation, bytes: entryBytes(doc) };
    try {
      const options: CollectOptions = { shape: 'response', fragments: Object.fromEntries(fragments), byResponseKey: true, holes: [] };
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
      // Twice: the SQL of a request (bound once when there are no variables) is about as long again.
      const sql = roots.reduce((n, r) => n + (r.select?.length ?? 0), 0);
      return {
        fast: true,
        op,
        fragments,
        roots,
        holes: options.holes,
        maxCost: operationCost(this.schema, op, fragments, this.options.limits),
        load: { lightUpTo: this.options.heavyReadCost - 1, heavyFrom: Number.POSITIVE_INFINITY },
        bytes: entryBytes(doc) + 4 * sql,
      };
    } catch (err) {
      if (err instanceof NotCompilable) return { fast: false, reason: err.message, bytes: entryBytes(doc) };
      throw err;
    }
  }
}

/** A read that failed for its size: its answer was too large, or PostgreSQL cancelled it (statement timeout). */
function tooHeavy(err: unknown): boolean {
  return err instanceof ReadRefusedError && (err.code === 'RESPONSE_TOO_LARGE' || pgErrorCode(err.cause) === QUERY_CANCELED);
}

function tooLarge(bytes: number, limit: number): ReadRefusedError {
  return new ReadRefusedError(
    'RESPONSE_TOO_LARGE',
    `The answer would be ${bytes} bytes; the limit is ${limit} (MAX_RESPONSE_BYTES). Ask for fewer fields or smaller pages.`,
    undefined,
    { bytes, limit },
  );
}

/**
 * What a parsed document (without locations) takes in memory, estimated from its JSON size: V8
 * objects take a few times their JSON text; 4x is a measured upper bound for GraphQL ASTs.
 */
function entryBytes(doc: DocumentNode): number {
  return 4 * JSON.stringify(doc.definitions).length + 256;
}

function fragmentMap(fragments: Fragments): Map<string, FragmentDefinitionNode> {
  const map = new Map<string, FragmentDefinitionNode>();
  for (const [name, f] of Object.entries(fragments)) if (f) map.set(name, f);
  return map;
}

/** A hole that reads nothing (SQL NULL) when its arguments are bad. */
function orNull(hole: Hole): Hole {
  return {
    ...hole,
    sql: (args, limits, p) => {
      try {
        return hole.sql(args, limits, p);
      } catch (err) {
        if (err instanceof ClientError) return 'NULL::json';
        throw err;
      }
    },
  };
}

/** SQL building the selected JSON of a root field's item from the row document. */
function selectionSql(def: GraphQLField<unknown, unknown>, nodes: FieldNode[], options: CollectOptions, aliases: AliasCounter): string {
  const type = getNamedType(def.type);
  if (!isObjectType(type)) throw new NotCompilable(`root field ${def.name} is not an object`);
  const sets = nodes.map((n) => n.selectionSet).filter((s): s is SelectionSetNode => Boolean(s));
  const fields = collectFields(sets, { ...options, byResponseKey: options.shape === 'response' });
  return objectSql(type as GraphQLObjectType, fields, ROW_DOC, options, aliases);
}
