// The declaration of node-postgres's value serializer, for every program that compiles this file.
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./pg-utils.d.ts" />
import pg from 'pg';
import { prepareValue } from 'pg/lib/utils';
import { IN_FAILED_TRANSACTION } from './errors';

/**
 * Several statements sent as ONE unit of the extended query protocol: Parse (unless the connection
 * has the named statement already), Bind, Describe and Execute for each, then a single Sync.
 *
 * Why: node-postgres ends every statement with its own Sync, even on a pipelined connection where
 * they leave in one write, and PostgreSQL flushes its answer at every Sync: an INLINE create of
 * eight statements woke the API up to seven times and cost PostgreSQL seven `send` calls. With one
 * Sync, PostgreSQL answers the whole transaction at once. And when a statement fails, PostgreSQL
 * skips everything up to the Sync: nothing behind a failed BEGIN can run (see pool.ts).
 *
 * It is a node-postgres Query (the only kind of custom query a pipelined connection accepts) that
 * hands each statement's messages to a Query of its own, so every statement's result is parsed by
 * node-postgres as usual and resolves its own promise, in order. The statement that fails gets
 * PostgreSQL's error; the ones behind it, which PostgreSQL skipped, get IN_FAILED_TRANSACTION
 * (25P02), as they would have without the batch. Every named statement in a batch must already be
 * parsed on its connection (withTransaction sees to it: node-postgres keeps that record per query
 * object, and a batch is one object).
 */
/** A statement as issued to client.query (promise style). */
export interface StatementConfig {
  text: string;
  name?: string;
  values?: unknown[];
  rowMode?: 'array';
  types?: unknown;
}

export interface BatchedStatement extends StatementConfig {
  resolve(result: pg.QueryResult): void;
  reject(err: unknown): void;
}

/** node-postgres's query config for a statement (without the promise's callbacks). */
export function queryConfig(s: StatementConfig): pg.QueryConfig {
  return {
    text: s.text,
    ...(s.name ? { name: s.name } : {}),
    ...(s.values ? { values: s.values } : {}),
    ...(s.rowMode ? { rowMode: s.rowMode } : {}),
    ...(s.types ? { types: s.types as pg.CustomTypesConfig } : {}),
  } as pg.QueryConfig;
}

/** The protocol writer of a node-postgres connection (not in its public types). */
interface ProtocolConnection {
  parse(config: { text: string; name: string; types?: unknown[] }): void;
  bind(config: { portal: string; statement: string; values: unknown[] }): void;
  describe(config: { type: 'P'; name: string }): void;
  execute(config: { portal: string; rows: number }): void;
  sync(): void;
  parsedStatements: Record<string, string | undefined>;
  stream: { cork?(): void; uncork?(): void };
}

/** The message handlers node-postgres calls on the query it is answering (not in its public types). */
interface QueryHandlers {
  handleRowDescription(msg: unknown): void;
  handleDataRow(msg: unknown): void;
  handleCommandComplete(msg: unknown, connection: unknown): void;
  handleReadyForQuery(connection: unknown): void;
  handleError(err: unknown, connection: unknown): void;
  _result?: { _types?: unknown };
}

/** Whether every named statement of `statements` is parsed on this client's connection. */
export function namesParsed(client: pg.ClientBase, statements: readonly { name?: string; text: string }[]): boolean {
  const connection = (client as unknown as { connection: ProtocolConnection }).connection;
  return statements.every((s) => !s.name || connection.parsedStatements[s.name] === s.text);
}

/** The error of a statement PostgreSQL skipped because one before it in the batch failed. */
export function skippedStatement(): Error {
  return Object.assign(new Error('current transaction is aborted: an earlier statement of the same batch failed'), {
    code: IN_FAILED_TRANSACTION,
  });
}

export class StatementBatch extends pg.Query {
  private readonly queries: QueryHandlers[];
  /** The statement whose answer is arriving; the ones before it are settled. */
  private current = 0;
  /** Set when a statement's values could not be serialized: nothing was sent. */
  private unsent = false;

  constructor(
    private readonly statements: BatchedStatement[],
    types?: unknown,
  ) {
    super({ text: 'batch' });
    this.queries = statements.map((s) => {
      const query = new pg.Query({
        ...queryConfig(s),
        callback: (err: Error | null, result: pg.QueryResult) => (err ? s.reject(err) : s.resolve(result)),
      } as pg.QueryConfig) as unknown as QueryHandlers;
      // As client.query() does for the queries it makes: the client's type parsers.
      if (types && query._result && !query._result._types) query._result._types = types;
      return query;
    });
  }

  // A property, as node-postgres's types declare it (the method it replaces is on the prototype).
  override submit = (connection: unknown): Error | null => {
    const con = connection as ProtocolConnection;
    const values: unknown[][] = [];
    for (const s of this.statements) {
      if (s.name && con.parsedStatements[s.name] !== s.text) return new Error(`statement ${s.name} is not prepared on this connection`);
      try {
        values.push((s.values ?? []).map((v) => prepareValue(v)));
      } catch (err) {
        this.unsent = true;
        return err instanceof Error ? err : new Error(String(err));
      }
    }
    con.stream.cork?.();
    try {
      this.statements.forEach((s, i) => {
        if (!s.name) con.parse({ text: s.text, name: '' });
        con.bind({ portal: '', statement: s.name ?? '', values: values[i]! });
        con.describe({ type: 'P', name: '' });
        con.execute({ portal: '', rows: 0 });
      });
      con.sync();
    } finally {
      con.stream.uncork?.();
    }
    return null;
  };

  handleRowDescription(msg: unknown): void {
    this.queries[this.current]?.handleRowDescription(msg);
  }

  handleDataRow(msg: unknown): void {
    this.queries[this.current]?.handleDataRow(msg);
  }

  handleCommandComplete(msg: unknown, connection: unknown): void {
    const query = this.queries[this.current++];
    if (!query) return;
    query.handleCommandComplete(msg, connection);
    query.handleReadyForQuery(connection); // settles its promise
  }

  /** An empty statement answers EmptyQueryResponse instead of CommandComplete. */
  handleEmptyQuery(connection: unknown): void {
    this.queries[this.current++]?.handleReadyForQuery(connection);
  }

  handleError(err: unknown, connection: unknown): void {
    // The failing statement gets the error, every later one is skipped. A batch that was never sent
    // (a value that could not be serialized) fails as a whole, every statement with that error.
    this.queries.forEach((query, i) => {
      if (this.unsent) query.handleError(err, connection);
      else if (i === this.current) query.handleError(err, connection);
      else if (i > this.current) query.handleError(skippedStatement(), connection);
    });
    this.current = this.queries.length;
  }

  handleReadyForQuery(connection: unknown): void {
    // Every statement has been answered by now; should one not have been, it must not hang.
    for (; this.current < this.queries.length; this.current += 1) {
      this.queries[this.current]!.handleError(new Error('no answer to this statement before the end of its batch'), connection);
    }
  }
}
