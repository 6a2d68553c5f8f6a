import { context, SpanKind, trace, type Attributes, type Context } from '@opentelemetry/api';
import { isTracingSuppressed, suppressTracing } from '@opentelemetry/core';
import { inSpan } from './in-span';

/**
 * Spans for our SQL statements, made by us instead of @opentelemetry/instrumentation-pg.
 *
 * Why: that instrumentation patches node-postgres as a whole. For every statement, traced or not,
 * it runs its checks and keeps pool-connection metrics up to date on every checkout and release;
 * for every traced statement it wraps the query and its callbacks, reads the connection parameters
 * and sets a dozen attributes. On the compiled read path (one statement and a fraction of a
 * millisecond of CPU per request) that was a large part of what tracing costs (`npm run
 * bench:tracing`). Here:
 *
 *   - only pools made by createPool() are traced (ours: the API's, the worker's), never pg-boss's
 *     own pool, so polling the queue makes no spans at all;
 *   - a statement gets a span only inside a recording span (as `requireParentSpan`): one CLIENT span
 *     with the attributes of the OpenTelemetry database conventions;
 *   - outside a recording span (tracing off, the request not sampled) the statement runs as it is,
 *     after one context lookup.
 */
const tracer = trace.getTracer('@blog/sql');

interface StatementInfo {
  /** The span name: the low-cardinality summary of the statement, such as `SELECT tv_post`. */
  summary: string;
  /** The database (db.namespace). */
  namespace?: string;
  /** The statement's text (parameterized: it carries no values). */
  text: string;
}

function recordingParent(): Context | undefined {
  const parent = context.active();
  if (isTracingSuppressed(parent) || !trace.getSpan(parent)?.isRecording()) return undefined;
  return parent;
}

/**
 * Runs `run` (which sends one statement) inside the statement's span, with tracing suppressed below
 * it. `describe` is called only when the span is recorded.
 */
async function traceStatement<T>(describe: () => StatementInfo, run: () => Promise<T>): Promise<T> {
  const parent = recordingParent();
  if (!parent) return run();
  const info = describe();
  const attributes: Attributes = {
    'db.system.name': 'postgresql',
    // The name of the attribute before semantic conventions 1.26, which Jaeger's UI still shows.
    'db.system': 'postgresql',
    'db.operation.name': info.summary.split(' ', 1)[0]!,
    'db.query.summary': info.summary,
    'db.query.text': info.text,
  };
  if (info.namespace) attributes['db.namespace'] = info.namespace;
  const span = tracer.startSpan(info.summary, { kind: SpanKind.CLIENT, attributes }, parent);
  return inSpan(span, suppressTracing(trace.setSpan(parent, span)), run);
}

const summaries = new Map<string, string>();
const MAX_SUMMARIES = 1000;

/**
 * `OPERATION table`: the statement's first keyword (the one after a leading WITH ... AS (...) is
 * not looked for: `WITH` it is) and the first table it names after FROM, INTO or UPDATE.
 */
function statementSummary(text: string): string {
  let summary = summaries.get(text);
  if (summary === undefined) {
    const operation = (/^\s*([A-Za-z]+)/.exec(text)?.[1] ?? 'SQL').toUpperCase();
    const table = /\b(?:FROM|INTO|UPDATE)\s+([A-Za-z_][\w.]*)/i.exec(text)?.[1];
    summary = table ? `${operation} ${table}` : operation;
    if (summaries.size < MAX_SUMMARIES) summaries.set(text, summary);
  }
  return summary;
}

export type QueryFn = (...args: unknown[]) => unknown;

/** The text of a `query(text, values)` or `query({ text, ... })` call, or undefined for anything else. */
function statementText(args: unknown[]): string | undefined {
  const [first] = args;
  if (typeof args.at(-1) === 'function') return undefined; // callback style: not ours, left alone
  if (typeof first === 'string') return first;
  if (
    first &&
    typeof first === 'object' &&
    typeof (first as { text?: unknown }).text === 'string' &&
    !(first as { submit?: unknown }).submit
  ) {
    return (first as { text: string }).text;
  }
  return undefined;
}

/**
 * `query` (a pool's or a connection's, called on `self`) with a span for each statement sent inside
 * a recording span (the span is made in the caller's context, so `pool.query` has it before the
 * pool lends a connection, and the connection's own query below it is not traced again).
 */
export function tracedQuery(query: QueryFn, self: unknown, namespace: string | undefined): QueryFn {
  return function (...args: unknown[]) {
    if (!recordingParent()) return query.apply(self, args);
    const text = statementText(args);
    if (text === undefined) return query.apply(self, args);
    return traceStatement(
      () => ({ summary: statementSummary(text), text, ...(namespace ? { namespace } : {}) }),
      () => query.apply(self, args) as Promise<unknown>,
    );
  };
}
