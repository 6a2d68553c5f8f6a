/**
 * OpenTelemetry tracing for a service process. Import this module (through the service's
 * `instrument.ts`) before anything else: the instrumentations patch `express`, `graphql` and
 * `pino` when those are first required. Our SQL statements get their spans from
 * ./statement-span.ts (every pool made by createPool; not pg-boss's polling). Incoming HTTP requests get their server span from
 * ./http-span.ts (a lighter replacement for @opentelemetry/instrumentation-http; see there why), which
 * is also a compiled read's GraphQL span. Both use the global tracer, which the SDK started here provides.
 * It deliberately imports nothing of ours that would load the instrumented modules.
 *
 * Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set,
 * and exports over OTLP/HTTP (Jaeger accepts it on port 4318). Without an endpoint it is off and
 * silent: no SDK, no exporter, no retries against nothing.
 *
 * The protocol is OTLP's default, `http/protobuf`, through the SDK's protobuf exporter (timeouts,
 * retries, headers and compression from the standard OTEL_EXPORTER_OTLP_* variables).
 * OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL=http/json selects the SDK's JSON exporter instead; gRPC is
 * not supported (no gRPC stack in the services).
 */
import { diag, DiagConsoleLogger, DiagLogLevel } from '@opentelemetry/api';
import { OTLPTraceExporter as OTLPJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OTLPProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { GraphQLInstrumentation } from '@opentelemetry/instrumentation-graphql';
import { PinoInstrumentation } from '@opentelemetry/instrumentation-pino';
import { NodeSDK } from '@opentelemetry/sdk-node';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { ExportFailureReporter, reportingExporter, type ExportFailureLog } from './export-failures';

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
  /**
   * Where failed exports are told (a warning, at most one a minute: ./export-failures.ts). The
   * service's logger does not exist yet when tracing starts; failures until then are counted.
   */
  reportTo(log: ExportFailureLog): void;
}

export function startTracing(options: TracingOptions): Tracing {
  const env = options.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!options.exporter && !endpoint) return { enabled: false, shutdown: async () => undefined, reportTo: () => undefined };
  if (env.OTEL_LOG_LEVEL === 'debug') diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.DEBUG);

  const failures = new ExportFailureReporter(endpoint || 'the configured exporter');
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    traceExporter: reportingExporter(options.exporter ?? otlpExporter(env), failures),
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
  return {
    enabled: true,
    shutdown: () => sdk.shutdown(),
    reportTo: (log) => failures.reportTo(log),
  };
}

export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;

/** Thrown by startTracing for a setting it cannot honour; the message names the variable. */
export class TracingConfigError extends Error {
  override readonly name = 'TracingConfigError';
}

/**
 * The OTLP/HTTP span exporter for OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL. Both read
 * OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT and append /v1/traces to the former themselves.
 */
export function otlpExporter(env: Record<string, string | undefined>): SpanExporter {
  const forTraces = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL;
  const variable = forTraces ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = (forTraces || env.OTEL_EXPORTER_OTLP_PROTOCOL || 'http/protobuf').trim();
  if (protocol === 'http/json') return new OTLPJsonTraceExporter();
  if (protocol !== 'http/protobuf') {
    throw new TracingConfigError(`${variable} must be one of ${OTLP_PROTOCOLS.join(', ')} (gRPC is not supported); got "${protocol}"`);
  }
  return new OTLPProtoTraceExporter();
}

/**
 * startTracing for a service's instrument.ts: a setting it cannot honour stops the process with
 * the message (exit code 2, as for the services' other configuration errors), not a stack trace.
 */
export function startServiceTracing(serviceName: string): Tracing {
  try {
    return startTracing({ serviceName: process.env.OTEL_SERVICE_NAME || serviceName });
  } catch (err) {
    if (!(err instanceof TracingConfigError)) throw err;
    process.stderr.write(`${serviceName}: ${err.message}\n`);
    process.exit(2);
  }
}
