import net from 'node:net';
import pg from 'pg';
import { traceQueries } from '../telemetry/statement-span';
import { namesParsed, queryConfig, skippedStatement, StatementBatch, type BatchedStatement, type StatementConfig } from './batch';
import { databaseName } from './database';

/**
 * Every pool the process opens goes through here. Pools are registered until `end()` so that the
 * test environment can fail a test file that leaves one open (see shared/test/environment.cjs).
 */
const OPEN_POOLS_KEY = Symbol.for('blog.openPools');

interface PoolRecord {
  pool: pg.Pool;
  name: string;
  stack: string;
}

function openPools(): Set<PoolRecord> {
  const g = globalThis as unknown as Record<symbol, Set<PoolRecord> | undefined>;
  let set = g[OPEN_POOLS_KEY];
  if (!set) {
    set = new Set();
    g[OPEN_POOLS_KEY] = set;
  }
  return set;
}

/** A pool or a client: anything that runs a query. */
export type Queryable = Pick<pg.Pool, 'query'>;

export interface PoolOptions {
  /** Shown in pg_stat_activity; helps find who holds connections. */
  applicationName: string;
  max?: number;
  /** Server-side statement timeout for every connection, in ms (0 = none). */
  statementTimeoutMs?: number;
  idleTimeoutMillis?: number;
  connectionTimeoutMillis?: number;
  /**
   * Pipeline mode (default on): a statement is sent as soon as it is issued, without waiting for
   * the answer to the one before, which PostgreSQL still runs first. Code that awaits each
   * statement behaves exactly as without it; code that issues several at once (the sync engine's
   * refresh, a transaction's last statement with its COMMIT) saves the round trips between them.
   */
  pipeline?: boolean;
}

/**
 * The type parsers of our connections (createPool, connectClient): node-postgres's, except int8
 * (bigint), which it gives as a string; counts in this project come back as int8 from count(*), and
 * never exceed 2^53: numbers. Per connection, not node-postgres's global table, so that other
 * libraries' connections in the process (pg-boss's) keep the parsing they expect.
 */
export const TYPE_PARSERS: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * The socket of every connection the pools open: a net.Socket whose 'data' listeners cannot crash
 * the process. node-postgres parses the server's messages inside the socket's 'data' event, and its
 * parser throws when a message cannot be decoded (a value longer than Node's largest string, for
 * one), which Node would report as an uncaught exception and exit. Here the connection is destroyed
 * with that error instead: the statement in flight fails with it and the pool replaces the
 * connection. (A TLS connection reads through the TLS socket node-postgres wraps around this one,
 * which this guard does not cover; the read engine's answer cap keeps reads far below such sizes.)
 */
export class GuardedSocket extends net.Socket {
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event !== 'data') return super.emit(event, ...args);
    try {
      return super.emit(event, ...args);
    } catch (err) {
      // Not `instanceof Error`: the error may come from another realm (Node's internals under a VM).
      const reason = typeof (err as { message?: unknown })?.message === 'string' ? (err as { message: string }).message : String(err);
      this.destroy(new Error(`Could not read the database's answer (${reason}); the connection was closed.`, { cause: err }));
      return false;
    }
  }
}

export function createPool(connectionString: string, options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    stream: () => new GuardedSocket(),
    types: TYPE_PARSERS,
    application_name: options.applicationName,
    max: options.max ?? 10,
    idleTimeoutMillis: options.idleTimeoutMillis ?? 30_000,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
    pipeline: options.pipeline ?? true,
    ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
  });
  // An idle client that loses its connection (server restart) emits 'error' on the pool. Without a
  // listener that would crash the process; the next checkout simply opens a new connection.
  pool.on('error', () => undefined);
  // A client checked out of the pool (a transaction between two statements, a LISTEN connection)
  // has no such listener: pg-pool removes its own while the client is lent out. A server restart at
  // that moment would emit 'error' on the client with nobody listening, and crash the process. The
  // error is not lost: the client is marked not queryable, so the statement in flight or the next
  // one fails (a retryable error, see isRetryablePgError) and release() discards the connection.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    // First, so that it is the innermost: the statement observers and spans still see every statement.
    collectStatements(client);
  });
  // Spans for our statements inside traced work (nothing is done when tracing is off).
  traceQueries(pool, namespaceOf(connectionString));
  const record: PoolRecord = {
    pool,
    name: options.applicationName,
    stack: new Error('pool opened here').stack ?? '',
  };
  openPools().add(record);
  const end = pool.end.bind(pool);
  let ended: Promise<void> | undefined;
  pool.end = (() => {
    openPools().delete(record);
    ended ??= end();
    return ended;
  }) as typeof pool.end;
  return pool;
}

/** The database of a connection string, for spans (undefined when the string is not a URL). */
function namespaceOf(connectionString: string): string | undefined {
  try {
    return databaseName(connectionString);
  } catch {
    return undefined;
  }
}

/**
 * A single connection (migrations, roles, database creation) that cannot crash
 * the process: node-postgres emits 'error' on a client whose connection the server ends (a restart,
 * pg_terminate_backend), even while a query is running, and an 'error' event without a listener is
 * an uncaught exception. The query in flight still fails with the error; the listener only keeps
 * the event from killing the process. The caller ends the client.
 */
export async function connectClient(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client({ types: TYPE_PARSERS, ...config });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** Pools opened through createPool and not yet ended (for leak checks in tests). */
export function listOpenPools(): { name: string; stack: string }[] {
  return [...openPools()].map(({ name, stack }) => ({ name, stack }));
}

export interface TransactionOptions {
  /**
   * Plan the transaction's prepared statements once per connection (plan_cache_mode =
   * force_generic_plan, for this transaction only). PostgreSQL otherwise re-plans a statement on
   * every execution whenever its generic plan looks costlier than a custom one, which is always the
   * case for `id = ANY($1::uuid[])`: the sync statements of an INLINE mutation then spent about as
   * long being planned as being run (their plans are the same index lookups either way). Set with
   * BEGIN in the same round trip (in the same batch, as a statement of its own, with
   * beginWithFirstStatement).
   */
  genericPlans?: boolean;
  /**
   * On a pipelined connection of a pool made by createPool, do not wait for BEGIN's answer: BEGIN
   * and the statements the callback issues before it first waits are sent as one StatementBatch
   * (batchUntilIdle: one write, one Sync, one answer), and a command that sends everything up to
   * its COMMIT without waiting costs one round trip. PostgreSQL skips whatever follows a failed
   * statement up to the Sync, so nothing behind a failed BEGIN runs. A connection's first
   * transaction that names a statement not yet prepared on it waits for BEGIN instead (see
   * batchUntilIdle), and so does every transaction on other connections. For the API's commands;
   * the worker waits for BEGIN.
   */
  beginWithFirstStatement?: boolean;
}

const GENERIC_PLANS = 'SET LOCAL plan_cache_mode = force_generic_plan';
const BEGIN_GENERIC_PLANS = `BEGIN; ${GENERIC_PLANS}`;

/** Whether statements issued on this client are sent at once (pipeline mode; see PoolOptions). */
export function isPipelined(client: pg.ClientBase): boolean {
  return (client as { pipeline?: boolean }).pipeline === true;
}

type CorkableStream = { cork?: () => void; uncork?: () => void };

function streamOf(client: pg.ClientBase): CorkableStream | undefined {
  return (client as { connection?: { stream?: CorkableStream } }).connection?.stream;
}

/**
 * Runs `send`, which issues several statements at once on a pipelined client, with the connection's
 * socket corked, so that they leave in one write (one system call and one packet) instead of one
 * each. `send` must only issue statements, never wait for one: nothing is sent before it returns.
 */
export function sendTogether<T>(client: pg.ClientBase, send: () => T): T {
  const stream = streamOf(client);
  if (!stream?.cork || !stream.uncork) return send();
  stream.cork();
  try {
    return send();
  } finally {
    stream.uncork();
  }
}

/** Statements issued while a batch is being collected (batchUntilIdle), per client. */
const collecting = new WeakMap<pg.ClientBase, BatchedStatement[]>();
/** node-postgres's own query method of each client, under the collector. */
const plainQuery = new WeakMap<pg.ClientBase, (...args: unknown[]) => unknown>();

/**
 * Wraps the client's query method: while a batch is being collected on the client, a statement
 * issued promise-style (text or config, with values, no callback, no cursor) joins the batch and
 * gets a promise of its own result; anything else, and everything outside a batch, runs as usual.
 */
function collectStatements(client: pg.ClientBase): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  plainQuery.set(client, query);
  (client as { query: unknown }).query = (...args: unknown[]) => {
    const batch = collecting.get(client);
    const statement = batch ? batchable(args) : undefined;
    if (!batch || !statement) return query(...args);
    return new Promise<pg.QueryResult>((resolve, reject) => batch.push({ ...statement, resolve, reject }));
  };
}

function batchable(args: unknown[]): StatementConfig | undefined {
  const [first, second, third] = args;
  if (typeof second === 'function' || typeof third === 'function') return undefined;
  const values = Array.isArray(second) ? (second as unknown[]) : undefined;
  if (typeof first === 'string') return { text: first, ...(values ? { values } : {}) };
  if (!first || typeof first !== 'object') return undefined;
  const c = first as {
    text?: unknown;
    name?: string;
    values?: unknown[];
    rowMode?: 'array';
    types?: unknown;
    submit?: unknown;
    rows?: unknown;
    callback?: unknown;
    queryMode?: unknown;
  };
  if (typeof c.text !== 'string' || c.submit || c.rows || c.callback || c.queryMode === 'simple') return undefined;
  const v = values ?? c.values;
  return {
    text: c.text,
    ...(c.name ? { name: c.name } : {}),
    ...(v ? { values: v } : {}),
    ...(c.rowMode ? { rowMode: c.rowMode } : {}),
    ...(c.types ? { types: c.types } : {}),
  };
}

/**
 * Collects the statements issued on this client by the code running now and every promise
 * continuation it queues (Node's own cork-then-uncork-on-next-tick window: code that awaits an answer
 * meanwhile lets the queue drain, which ends the window, so nothing waits on itself), then sends
 * them as one StatementBatch: one write and one Sync, so PostgreSQL answers them at once and skips
 * everything behind a statement that fails. The first statement is the transaction's BEGIN.
 *
 * A connection's first transaction of a kind names statements node-postgres has not parsed on it
 * yet; a batch cannot record them (node-postgres keeps that record per query object). That
 * transaction waits for its BEGIN, then sends the rest together as before (one round trip more),
 * and node-postgres parses and records them; the connection's later transactions are batched.
 */
function batchUntilIdle(client: pg.ClientBase): void {
  const batch: BatchedStatement[] = [];
  collecting.set(client, batch);
  process.nextTick(() => {
    collecting.delete(client);
    if (!batch.length) return;
    const query = plainQuery.get(client)!;
    if (namesParsed(client, batch)) {
      query(new StatementBatch(batch, (client as { _types?: unknown })._types));
      return;
    }
    const [begin, ...rest] = batch;
    const send = (s: BatchedStatement) => (query(queryConfig(s)) as Promise<pg.QueryResult>).then(s.resolve, s.reject);
    (query(begin!.text) as Promise<pg.QueryResult>).then(
      (result) => {
        begin!.resolve(result);
        sendTogether(client, () => rest.forEach(send));
      },
      (err: unknown) => {
        begin!.reject(err);
        for (const s of rest) s.reject(skippedStatement());
      },
    );
  });
}

/** The COMMIT a withTransaction() callback sent early (commitNow), per client inside withTransaction(). */
const transactions = new WeakMap<pg.ClientBase, { commit?: Promise<pg.QueryResult> }>();

/**
 * Sends COMMIT now, right behind the statements already sent on this pipelined connection, without
 * waiting for their answers; withTransaction() then awaits it instead of sending its own. PostgreSQL
 * runs the COMMIT after them, and answers it with ROLLBACK (not an error) if one of them failed, in
 * which case withTransaction() raises that statement's error and nothing is written. Row locks are
 * released without a round trip back to us first. The caller must send nothing more in this
 * transaction. Returns false, and sends nothing, when the client does not pipeline or is not inside
 * withTransaction(): the transaction then commits as usual when the callback returns.
 */
export function commitNow(client: pg.ClientBase): boolean {
  const transaction = transactions.get(client);
  if (!transaction || transaction.commit) return false;
  transaction.commit = client.query('COMMIT');
  transaction.commit.catch(() => undefined); // observed now; awaited by withTransaction()
  return true;
}

/**
 * Runs `fn` inside BEGIN/COMMIT on a connection the caller holds; rolls back and rethrows on any
 * error. When the ROLLBACK itself fails (the connection is gone), `onRollbackFailure` is told, so
 * the caller can discard the connection.
 */
export async function inTransaction<T>(
  client: pg.ClientBase,
  fn: () => Promise<T>,
  options: { onRollbackFailure?: (err: Error) => void } = {},
): Promise<T> {
  await client.query('BEGIN');
  try {
    const result = await fn();
    // PostgreSQL answers a COMMIT that follows a failed statement with ROLLBACK, not an error.
    const committed = await client.query('COMMIT');
    if (committed.command !== 'COMMIT') throw new Error('the transaction was rolled back at COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackErr: Error) => options.onRollbackFailure?.(rollbackErr));
    throw err;
  }
}

/**
 * Runs `fn` inside BEGIN/COMMIT on one client of `pool`; rolls back and rethrows on any error. `fn` may send
 * the COMMIT itself, early, with commitNow(). See TransactionOptions.beginWithFirstStatement for
 * sending BEGIN without waiting for its answer.
 */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect();
  const transaction: { commit?: Promise<pg.QueryResult> } = {};
  if (isPipelined(client)) transactions.set(client, transaction);
  try {
    // BEGIN not waited for (see beginWithFirstStatement): its error, if any, is raised below.
    const early = options.beginWithFirstStatement === true && isPipelined(client) && plainQuery.has(client);
    let begun: Promise<unknown>;
    if (early) {
      // One batch (one statement per protocol message: BEGIN and the plan setting apart).
      batchUntilIdle(client);
      begun = Promise.all([client.query('BEGIN'), ...(options.genericPlans ? [client.query(GENERIC_PLANS)] : [])]);
    } else {
      begun = client.query(options.genericPlans ? BEGIN_GENERIC_PLANS : 'BEGIN');
    }
    if (early) begun.catch(() => undefined);
    else await begun;
    let result: T;
    try {
      result = await fn(client);
    } catch (err) {
      await begun; // a failed BEGIN is the cause
      throw err;
    }
    await begun;
    transactions.delete(client);
    // PostgreSQL answers a COMMIT that follows a failed statement with ROLLBACK, not an error.
    const committed = await (transaction.commit ?? client.query('COMMIT'));
    if (committed.command !== 'COMMIT') throw new Error('the transaction was rolled back at COMMIT');
    return result;
  } catch (err) {
    transactions.delete(client);
    if (transaction.commit) await transaction.commit.catch(() => undefined);
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
