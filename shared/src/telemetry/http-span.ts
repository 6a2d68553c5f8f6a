import type http from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';

/**
 * The server span of an incoming HTTP request, made by us rather than by
 * @opentelemetry/instrumentation-http.
 *
 * Why: that instrumentation patches `http` as a whole and, for every request, builds a dozen
 * attributes from the headers and the URL, wraps the response's methods and listeners, and does
 * most of it whether or not the trace is sampled. On the compiled read path (a fraction of a
 * millisecond of CPU per request) that was the largest single cost of tracing (`npm run
 * bench:tracing`). Here a request costs one sampler decision when it is not sampled (and runs with
 * tracing suppressed), and one span with the attributes operators use when it is. Our services make
 * no outgoing HTTP calls of their own, so nothing else of that instrumentation is missed.
 *
 * The span follows the HTTP semantic conventions (name `METHOD route`, kind SERVER, the
 * `http.request.method`, `url.path`, `http.route`, `http.response.status_code` attributes, ERROR
 * status for 5xx) and continues a W3C `traceparent` sent by the client.
 */
const tracer = trace.getTracer('@blog/http-server');

export interface HttpServerTracing {
  /**
   * Runs `handle` inside the request's server span (ended when the response finishes or the
   * connection closes). With tracing off, `handle` runs as it is. The request's
   * own listeners ('data', 'end') run in the socket's context, not this one: a handler that reads
   * the body carries `context.active()` into them itself (see the API's graphql-endpoint.ts).
   */
  run(req: http.IncomingMessage, res: http.ServerResponse, handle: () => void): void;
}

export interface HttpServerTracingOptions {
  /** Whether tracing is on in this process (startTracing's `enabled`); off: requests run untouched. */
  enabled: boolean;
  /** Paths that get no span (probes and scrapes). */
  untraced?: ReadonlySet<string>;
  /** Routes named in span names; any other path is named by its method alone (bounded names). */
  routes?: ReadonlySet<string>;
}

export function httpServerTracing(options: HttpServerTracingOptions): HttpServerTracing {
  if (!options.enabled) return { run: (_req, _res, handle) => handle() };
  const untraced = options.untraced ?? new Set<string>();
  const routes = options.routes ?? new Set<string>();
  return {
    run(req, res, handle) {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (untraced.has(path)) return handle();
      const method = req.method ?? 'GET';
      const route = routes.has(path) ? path : undefined;
      const parent: Context = req.headers.traceparent ? propagation.extract(ROOT_CONTEXT, req.headers) : ROOT_CONTEXT;
      const span = tracer.startSpan(route ? `${method} ${route}` : method, { kind: SpanKind.SERVER }, parent);
      if (!span.isRecording()) {
        // Not sampled, so nothing under it would be recorded either: run the request with tracing
        // suppressed, which sends everything below down its cheapest path (no span objects, ids or
        // attributes; the statement spans of db/queries.ts return at their first check). One
        // consequence: a QUEUED mutation of an unsampled request stores no trace context in its
        // job, so the worker samples that batch on its own (at the same ratio).
        context.with(suppressTracing(parent), handle);
        return;
      }
      const active = trace.setSpan(parent, span);
      span.setAttributes({
        'http.request.method': method,
        'url.path': path,
        'url.scheme': 'http',
        ...(route ? { 'http.route': route } : {}),
        ...(req.socket.remoteAddress ? { 'network.peer.address': req.socket.remoteAddress } : {}),
        ...(req.headers['user-agent'] ? { 'user_agent.original': req.headers['user-agent'] } : {}),
      });
      let ended = false;
      const end = (aborted: boolean) => {
        if (ended) return;
        ended = true;
        span.setAttribute('http.response.status_code', res.statusCode);
        if (aborted) span.setStatus({ code: SpanStatusCode.ERROR, message: 'connection closed before the response finished' });
        else if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      };
      res.once('finish', () => end(false));
      res.once('close', () => end(!res.writableFinished));
      context.with(active, handle);
    },
  };
}
