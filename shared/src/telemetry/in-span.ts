import { SpanStatusCode, context, type Context, type Span } from '@opentelemetry/api';

/**
 * Runs `run` in the context `active` (which holds `span`), then ends the span: a failure is recorded
 * on it (exception and error status) and raised as it is.
 */
export async function inSpan<T>(span: Span, active: Context, run: () => Promise<T>): Promise<T> {
  try {
    return await context.with(active, run);
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}
