import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

/**
 * Failed span exports, told to the service's log instead of nowhere. The SDK drops the spans of a
 * failed export and reports it only to OpenTelemetry's diagnostic logger, silent by default, so an
 * unreachable collector went unnoticed. A warning at the first failure, then at most one every
 * `intervalMs` (a minute) with the number of failures since the last one; an info line when exports
 * work again. Imports nothing that OpenTelemetry instruments (see ./tracing.ts): the log is handed
 * over later, once the service has made it (`reportTo`); failures before that are counted.
 */
export interface ExportFailureLog {
  warn(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export const EXPORT_FAILURE_INTERVAL_MS = 60_000;

export class ExportFailureReporter {
  private log: ExportFailureLog | undefined;
  /** Failures not told yet. */
  private untold = 0;
  /** Failures since the last success (told or not). */
  private sinceSuccess = 0;
  private lastToldAt: number | undefined;
  private lastError = '';

  constructor(
    private readonly endpoint: string,
    private readonly options: { intervalMs?: number; now?: () => number } = {},
  ) {}

  reportTo(log: ExportFailureLog): void {
    this.log = log;
    if (this.untold) this.tell();
  }

  failed(error: Error | undefined): void {
    this.untold += 1;
    this.sinceSuccess += 1;
    this.lastError = error?.message || 'unknown error';
    const interval = this.options.intervalMs ?? EXPORT_FAILURE_INTERVAL_MS;
    if (this.lastToldAt === undefined || this.now() - this.lastToldAt >= interval) this.tell();
  }

  succeeded(): void {
    if (!this.sinceSuccess) return;
    this.log?.info(
      { endpoint: this.endpoint, failures: this.sinceSuccess },
      `trace export to ${this.endpoint} works again (${this.sinceSuccess} failed exports before)`,
    );
    this.sinceSuccess = 0;
    this.untold = 0;
    this.lastToldAt = undefined;
  }

  private tell(): void {
    if (!this.log) return;
    const first = this.lastToldAt === undefined;
    const seconds = Math.round((this.options.intervalMs ?? EXPORT_FAILURE_INTERVAL_MS) / 1000);
    this.log.warn(
      { endpoint: this.endpoint, failures: this.untold, error: this.lastError },
      first
        ? `trace export to ${this.endpoint} failed (${this.lastError}): spans are being dropped; ` +
            `further failures are counted and told at most every ${seconds} s`
        : `trace export to ${this.endpoint} failed ${this.untold} time(s) since the last warning ` +
            `(last error: ${this.lastError}): spans are being dropped`,
    );
    this.untold = 0;
    this.lastToldAt = this.now();
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }
}

/** The exporter, unchanged, with the result of each export told to the reporter. */
export function reportingExporter(exporter: SpanExporter, reporter: ExportFailureReporter): SpanExporter {
  return {
    export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
      exporter.export(spans, (result) => {
        if (result.code === ExportResultCode.SUCCESS) reporter.succeeded();
        else reporter.failed(result.error);
        resultCallback(result);
      });
    },
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  };
}
