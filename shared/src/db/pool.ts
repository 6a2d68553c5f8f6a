import pg from 'pg';
import { traceQueries } from '../telemetry/statement-span';
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

// node-postgres parses timestamptz into Date and bigint (int8) into string by default. Counts in
// this project come back as int8 from count(*); parse them as numbers (they never exceed 2^53).
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export function createPool(connectionString: string, options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
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
  const client = new pg.Client(config);
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
   * BEGIN in the same round trip.
   */
  genericPlans?: boolean;
  /**
   * On a pipelined connection, do not wait for BEGIN's answer: the callback's first statements go
   * out in the same write (corkUntilIdle), and a command that sends everything up to its COMMIT
   * without waiting costs one round trip. PostgreSQL runs them after BEGIN; if BEGIN failed on a
   * connection that is still usable, they would run outside a transaction, each committing on its
   * own (in order, so a command's write and then its refresh), while the caller gets BEGIN's error.
   * BEGIN fails that way only if a query cancel or an out-of-memory error lands on it (a broken
   * connection fails what follows too; an aborted transaction is refused by what follows too). The
   * caller then sees an error for a write that is committed, the same ambiguity as a connection lost
   * after COMMIT was sent. For the API's commands; the worker waits for BEGIN.
   */
  beginWithFirstStatement?: boolean;
}

const BEGIN_GENERIC_PLANS = 'BEGIN; SET LOCAL plan_cache_mode = force_generic_plan';

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

/**
 * Corks the connection's socket until the code running now, and every promise continuation it
 * queues, has run (Node's own cork-then-uncork-on-next-tick idiom): the statements it issues in
 * that time leave in one write. Code that awaits an answer meanwhile lets the queue drain, which
 * uncorks, so nothing waits on itself. Used by withTransaction() with beginWithFirstStatement: a
 * command that issues its BEGIN, its write, its refresh and its COMMIT without waiting in between
 * sends the whole transaction at once, and PostgreSQL answers it at once (one round trip).
 */
function corkUntilIdle(client: pg.ClientBase): void {
  const stream = streamOf(client);
  if (!stream?.cork || !stream.uncork) return;
  stream.cork();
  process.nextTick(() => stream.uncork!());
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
 * Runs `fn` inside BEGIN/COMMIT on one client; rolls back and rethrows on any error. `fn` may send
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
    const early = options.beginWithFirstStatement === true && isPipelined(client);
    if (early) corkUntilIdle(client);
    const begun = client.query(options.genericPlans ? BEGIN_GENERIC_PLANS : 'BEGIN');
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
