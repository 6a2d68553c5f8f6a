/**
 * OpenTelemetry tracing for a service process. Import this module (through the service's
 * `instrument.ts`) before anything else: the instrumentations patch `express`, `graphql` and
 * `pino` when those are first required. Our SQL statements get their spans from
 * ./statement-span.ts (every pool made by createPool; not pg-boss's polling). Incoming HTTP requests get their server span from
 * ./http-span.ts (a lighter replacement for @opentelemetry/instrumentation-http; see there why). It deliberately imports nothing of ours that
 * would load them.
 *
 * Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set,
 * and exports over OTLP/HTTP (Jaeger accepts it on port 4318). Without an endpoint it is off and
 * silent: no SDK, no exporter, no retries against nothing.
 */
import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { GraphQLInstrumentation } from '@opentelemetry/instrumentation-graphql';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace';

export interface TracingOptions {
  serviceName: string;
  /** Where to export; default from OTEL_EXPORTER_OTLP_ENDPOINT. */
  env?: Record<string, string | undefined>;
  /** An exporter to use instead of OTLP (tests). */
  exporter?: SpanExporter;
}

export interface Tracing {
  enabled: boolean;
  /** Flushes pending spans and stops the SDK (call on shutdown). */
  shutdown(): Promise<void>;
}

export function startTracing(options: TracingOptions): Tracing {
  const env = options.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!options.exporter && !endpoint) return { enabled: false, shutdown: async () => undefined };
  if (env.OTEL_LOG_LEVEL === 'debug') diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.DEBUG);

  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    // The exporter reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT and appends /v1/traces itself.
    traceExporter: options.exporter ?? new OTLPTraceExporter(),
    metricReaders: [], // metrics are Prometheus (prom-client), scraped from the services
    logRecordProcessors: [], // logs go to stdout as JSON, with trace ids (see pino below)
    instrumentations: [
      new ExpressInstrumentation(),
      new GraphQLInstrumentation({ mergeItems: true, ignoreTrivialResolveSpans: true }),
      // Adds trace_id and span_id to every log line written inside a span.
      new PinoInstrumentation({ disableLogSending: true }),
    ],
  });
  sdk.start();
  return { enabled: true, shutdown: () => sdk.shutdown() };
}
