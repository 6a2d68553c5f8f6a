import { createSchema, allRules } from '../graphql/schema';
import { ReadEngine, type ReadRequest } from './read-engine';

/**
 * The SQL statement the fast path runs for a read request, without a database: for the
 * benchmark's bare server (which must run exactly our statement) and for looking at what a query
 * costs (EXPLAIN it). undefined when the request is not for the fast path.
 */
export function readStatement(
  request: ReadRequest,
  limits = {
    defaultPageSize: 20,
    maxPageSize: 100,
    maxQueryDepth: 15,
    maxQueryCost: 25_000,
    introspection: true,
    maxResponseBytes: 16 * 1024 * 1024,
  },
): { text: string; values: unknown[] } | undefined {
  const unused = { connect: () => Promise.reject(new Error('readStatement does not run queries')) };
  const engine = new ReadEngine(createSchema(), unused as never, {
    limits,
    rules: allRules(limits),
    cacheSize: 1,
    cacheBytes: 1 << 20,
    maxResponseBytes: limits.maxResponseBytes,
    heavyReadCost: limits.maxQueryCost,
    preparedPerConnection: 0,
  });
  return engine.statementFor(request);
}
