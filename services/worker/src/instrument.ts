/**
 * Loaded first by main.ts, before pg or pino are required, so that OpenTelemetry's
 * instrumentations can patch them. Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT is set
 * (see shared/src/telemetry/tracing.ts).
 */
import { startServiceTracing } from '@blog/shared/dist/telemetry/tracing';

export const tracing = startServiceTracing('blog-worker');
