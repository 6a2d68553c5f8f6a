import { context, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';

/**
 * The span of one SQL statement on a hot path, made by us instead of
 * @opentelemetry/instrumentation-pg.
 *
 * Why: for every statement in a sampled trace, that instrumentation wraps the query and its
 * callbacks, parses the connection string and sets a dozen attributes; on the compiled read path
 * (one statement per request, a fraction of a millisecond of CPU in all) it was a large part of
 * what tracing costs (`npm run bench:tracing`). Here a statement costs one span with the
 * attributes of the OpenTelemetry database conventions, and the statement runs with tracing
 * suppressed so the pg instrumentation does not add its own span. Everywhere else (mutations, the
 * worker, Apollo's path) the pg instrumentation's spans remain.
 *
 * Outside a recording span (tracing off, or the request not sampled) the statement just runs.
 */
const tracer = trace.getTracer('@blog/sql');

export interface StatementInfo {
  /** The span name: the low-cardinality summary of the statement, such as `SELECT tv_post`. */
  summary: string;
  /** The database (db.namespace). */
  namespace?: string;
  /** The statement's text (parameterized: it carries no values). */
  text: string;
}

/** Runs `run` (which sends the statement) inside the statement's span; `describe` is called only when recorded. */
export async function traceStatement<T>(describe: () => StatementInfo, run: () => Promise<T>): Promise<T> {
  const parent = context.active();
  if (!trace.getSpan(parent)?.isRecording()) return run();
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
  try {
    return await context.with(suppressTracing(trace.setSpan(parent, span)), run);
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}
