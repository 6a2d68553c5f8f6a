import net from 'node:net';
import pg from 'pg';
import { databaseName } from './database';
import { wrapQueries, type QueryHooks } from './queries';

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

export interface PoolOptions extends Omit<QueryHooks, 'namespace'> {
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
 * The socket of every connection the pools open, a net.Socket that adds two things:
 *
 * - Writes made in the same turn of the event loop leave together: the first write corks the socket
 *   and setImmediate uncorks it once the turn's callbacks and their promise continuations have run
 *   (writable.cork's pattern, at the end of the turn rather than of the tick). A transaction whose
 *   statements are issued without waiting (pipeline mode: BEGIN, the write, the enqueue, the refresh,
 *   COMMIT), whoever issues them, reaches PostgreSQL in one system call and one packet instead of one
 *   per statement, and PostgreSQL reads them in one wake-up.
 * - Its 'data' listeners cannot crash the process. node-postgres parses the server's messages inside
 *   the socket's 'data' event, and its parser throws when a message cannot be decoded (a value longer
 *   than Node's largest string, for one), which Node would report as an uncaught exception and exit.
 *   Here the connection is destroyed with that error instead: the statement in flight fails with it
 *   and the pool replaces the connection. (A TLS connection reads through the TLS socket
 *   node-postgres wraps around this one, which this guard does not cover; the read engine's answer
 *   cap keeps reads far below such sizes.)
 */
export class GuardedSocket extends net.Socket {
  /** Turns of the event loop in which a socket of this class sent something: each is one write to the kernel. */
  static flushes = 0;
  private corked = false;

  override connect(...args: unknown[]): this {
    (super.connect as (...a: unknown[]) => this).apply(this, args);
    // net.Socket.connect sets its own write method on the instance (undoing an earlier end's), which
    // would hide the one below: removed, so that this class's write applies again.
    if (Object.hasOwn(this, 'write') && this.write === net.Socket.prototype.write) delete (this as { write?: unknown }).write;
    return this;
  }

  override write(chunk: unknown, encodingOrCallback?: unknown, callback?: unknown): boolean {
    if (!this.corked) {
      this.corked = true;
      this.cork();
      setImmediate(() => {
        this.corked = false;
        if (this.writableLength > 0) GuardedSocket.flushes += 1;
        this.uncork();
      });
    }
    return (super.write as (...args: unknown[]) => boolean).call(this, chunk, encodingOrCallback, callback);
  }

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

/** The connections of pools opened with pipeline mode (see PoolOptions.pipeline). */
const pipelinedClients = new WeakSet<pg.ClientBase>();

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
  const pipeline = options.pipeline ?? true;
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    if (pipeline) pipelinedClients.add(client);
  });
  // Statement names, observers, and spans inside traced work (queries.ts).
  const namespace = namespaceOf(connectionString);
  wrapQueries(pool, {
    ...(options.prepare ? { prepare: true } : {}),
    ...(options.onStatement ? { onStatement: options.onStatement } : {}),
    ...(namespace ? { namespace } : {}),
  });
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
   * Settings for this transaction only (`SET LOCAL name = value`), sent in the same message as
   * BEGIN. Names and values are the code's constants (checked: lower-case words), never input.
   * GENERIC_PLANS is the commands' setting.
   */
  settings?: Readonly<Record<string, string>>;
  /**
   * On a pipelined connection (createPool's default), do not wait for BEGIN's answer: the statements
   * the callback issues follow it at once, and a transaction that sends everything up to its COMMIT
   * without waiting (commitNow) costs one round trip. BEGIN (with the settings, one simple-protocol
   * message) is a constant statement that PostgreSQL fails only with the connection itself, and then
   * nothing sent behind it runs either; a statement of the callback that fails aborts the
   * transaction, so PostgreSQL refuses every later one (25P02) and answers COMMIT with ROLLBACK.
   */
  beginWithFirstStatement?: boolean;
  /** Told when the ROLLBACK after a failure fails too (the connection is gone), so the caller can discard the connection. */
  onRollbackFailure?: (err: Error) => void;
}

/**
 * Plan the transaction's prepared statements once per connection. PostgreSQL otherwise re-plans a
 * statement on every execution whenever its generic plan looks costlier than a custom one, which is
 * always the case for `id = ANY($1::uuid[])`: the sync statements of an INLINE mutation then spent
 * about as long being planned as being run (their plans are the same index lookups either way).
 */
export const GENERIC_PLANS = { plan_cache_mode: 'force_generic_plan' } as const;

const SETTING_WORD = /^[a-z_]+$/;

const beginTexts = new WeakMap<object, string>();

/** BEGIN and the transaction's settings, as one simple-protocol message (made once per settings object). */
function beginText(settings?: Readonly<Record<string, string>>): string {
  if (!settings) return 'BEGIN';
  let text = beginTexts.get(settings);
  if (text === undefined) {
    const sets = Object.entries(settings).map(([name, value]) => {
      if (!SETTING_WORD.test(name) || !SETTING_WORD.test(value)) throw new Error(`not a transaction setting: ${name} = ${value}`);
      return `; SET LOCAL ${name} = ${value}`;
    });
    text = `BEGIN${sets.join('')}`;
    beginTexts.set(settings, text);
  }
  return text;
}

/** Whether statements issued on this client are sent at once (pipeline mode; see PoolOptions). */
export function isPipelined(client: pg.ClientBase): boolean {
  return pipelinedClients.has(client);
}

/** The COMMIT a transaction's callback sent early (commitNow), per client inside inTransaction(). */
const transactions = new WeakMap<pg.ClientBase, { commit?: Promise<pg.QueryResult> }>();

/**
 * Sends COMMIT now, right behind the statements already sent on this pipelined connection, without
 * waiting for their answers; the transaction then awaits it instead of sending its own. PostgreSQL
 * runs the COMMIT after them, and answers it with ROLLBACK (not an error) if one of them failed, in
 * which case the transaction raises that statement's error and nothing is written. Row locks are
 * released without a round trip back to us first. The caller must send nothing more in this
 * transaction. Returns false, and sends nothing, when the client does not pipeline or is not inside
 * a transaction of inTransaction() or withTransaction(): the transaction then commits as usual when
 * the callback returns.
 */
export function commitNow(client: pg.ClientBase): boolean {
  const transaction = transactions.get(client);
  if (!transaction || transaction.commit) return false;
  transaction.commit = client.query('COMMIT');
  transaction.commit.catch(() => undefined); // observed now; awaited by inTransaction()
  return true;
}

/**
 * Runs `fn` inside BEGIN/COMMIT on a connection the caller holds; rolls back and rethrows on any
 * error. The one transaction helper: withTransaction() is this on a connection of a pool. See
 * TransactionOptions for settings, not waiting for BEGIN and committing early.
 */
export async function inTransaction<T>(client: pg.ClientBase, fn: () => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const transaction: { commit?: Promise<pg.QueryResult> } = {};
  const pipelined = isPipelined(client);
  if (pipelined) transactions.set(client, transaction);
  try {
    const begun = client.query(beginText(options.settings));
    if (options.beginWithFirstStatement && pipelined)
      begun.catch(() => undefined); // raised below
    else await begun;
    let result: T;
    try {
      result = await fn();
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
    await client.query('ROLLBACK').catch((rollbackErr: Error) => options.onRollbackFailure?.(rollbackErr));
    throw err;
  }
}

/** inTransaction() on one connection of `pool`, given back to the pool afterwards. */
export async function withTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect();
  try {
    return await inTransaction(client, () => fn(client), options);
  } finally {
    client.release();
  }
}
