import type pg from 'pg';
import { tracedQuery, type QueryFn } from '../telemetry/statement-span';

export interface QueryHooks {
  /**
   * Name every parameterized statement (one name per distinct text) so that PostgreSQL parses and
   * plans it once per connection instead of on every call (DB_AUTO_PREPARE). A mutation's
   * transaction runs about a dozen statements, most of them the sync engine's, whose planning costs
   * more than their execution. Names are derived from the text, so a text has the same name on every
   * connection (node-postgres refuses one name for two texts). Statements without parameters (BEGIN,
   * COMMIT) are left alone, and so is a query config that has a `name` property, even an empty one:
   * the read engine names its statements itself, and runs the documents clients send once as the
   * unnamed statement. So only the service's own statements (commands, sync), a set fixed by the
   * code, are named; bounded all the same (past MAX_NAMES texts, new ones run unnamed).
   */
  prepare?: boolean;
  /** Told the text of every statement the pool's connections send (tests count them). */
  onStatement?: (text: string) => void;
  /** The database, for spans (db.namespace). */
  namespace?: string;
}

const MAX_NAMES = 2000;

/** The statement names of one pool (see QueryHooks.prepare). */
class StatementNames {
  private readonly names = new Map<string, string>();

  private nameFor(text: string): string | undefined {
    let name = this.names.get(text);
    if (!name && this.names.size < MAX_NAMES) {
      name = `blog_auto_${this.names.size + 1}`;
      this.names.set(text, name);
    }
    return name;
  }

  /** The query's arguments, with a name added when it is a parameterized statement without one. */
  named(args: unknown[]): unknown[] {
    const [first, second] = args;
    if (typeof first === 'string' && Array.isArray(second)) {
      const name = this.nameFor(first);
      if (name) return [{ name, text: first, values: second }, ...args.slice(2)];
    } else if (first && typeof first === 'object' && !('name' in first)) {
      const config = first as { text?: unknown; values?: unknown; submit?: unknown };
      if (typeof config.text === 'string' && Array.isArray(config.values) && !config.submit) {
        const name = this.nameFor(config.text);
        if (name) return [{ ...config, name }, ...args.slice(1)];
      }
    }
    return args;
  }
}

/**
 * The one wrapper of node-postgres's query method on a pool made by createPool (its own `query`,
 * and that of every connection it opens). Each statement is, in this order: reported to
 * `onStatement`, named (`prepare`), and sent under a span of its own when it runs inside a recording
 * span (telemetry/statement-span.ts). Only public node-postgres API below it: `query` itself.
 */
export function wrapQueries(pool: pg.Pool, hooks: QueryHooks): void {
  const names = hooks.prepare ? new StatementNames() : undefined;
  const { onStatement, namespace } = hooks;
  (pool as { query: unknown }).query = tracedQuery(pool.query as QueryFn, pool, namespace);
  pool.on('connect', (client) => {
    const send = tracedQuery(client.query as QueryFn, client, namespace);
    (client as { query: unknown }).query = (...args: unknown[]) => {
      if (onStatement) onStatement(typeof args[0] === 'string' ? args[0] : String((args[0] as { text?: unknown } | undefined)?.text ?? ''));
      return send(...(names ? names.named(args) : args));
    };
  });
}
