import type pg from 'pg';

/**
 * Turns every parameterized statement sent on the pool's connections into a named prepared
 * statement (one name per distinct text), so PostgreSQL parses and plans it once per connection
 * instead of on every call. A mutation's transaction runs about a dozen statements, most of them
 * the sync engine's (the dependency map, the projection builders), whose planning costs more than
 * their execution: the dependency map alone plans in milliseconds and runs in half of one.
 *
 * Names are derived from the text, so a text always has the same name on every connection
 * (node-postgres refuses one name for two texts). Statements without parameters (BEGIN, COMMIT)
 * are left alone, and so is a query config that has a `name` property, even an empty one: the read
 * engine names its statements itself, and runs the documents clients send once as the unnamed
 * statement (reads/statement-names.ts). So only the service's own statements (commands, sync) are
 * named here, a set fixed by the code. Bounded all the same: past MAX_NAMES distinct texts, new
 * ones run unnamed.
 */
const MAX_NAMES = 2000;

export function autoPrepare(pool: pg.Pool): void {
  const names = new Map<string, string>();
  const nameFor = (text: string): string | undefined => {
    let name = names.get(text);
    if (!name && names.size < MAX_NAMES) {
      name = `blog_auto_${names.size + 1}`;
      names.set(text, name);
    }
    return name;
  };
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      const [first, second] = args;
      if (typeof first === 'string' && Array.isArray(second)) {
        const name = nameFor(first);
        if (name) return query({ name, text: first, values: second }, ...args.slice(2));
      } else if (first && typeof first === 'object' && !('name' in first)) {
        const config = first as { text?: unknown; values?: unknown; submit?: unknown };
        if (typeof config.text === 'string' && Array.isArray(config.values) && !config.submit) {
          const name = nameFor(config.text);
          if (name) return query({ ...config, name }, ...args.slice(1));
        }
      }
      return query(...args);
    };
  });
}
