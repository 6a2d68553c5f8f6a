/**
 * @jest-environment-options {"database": false}
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { ExportFailureReporter, reportingExporter } from './export-failures';

/** The rate limit of the warnings, on a clock of the test's. (The e2e test is in services/api/test/tracing.e2e.spec.ts.) */
function setup() {
  let now = 0;
  const lines: { level: 'warn' | 'info'; fields: Record<string, unknown>; message: string }[] = [];
  const log = {
    warn: (fields: object, message: string) => void lines.push({ level: 'warn', fields: fields as Record<string, unknown>, message }),
    info: (fields: object, message: string) => void lines.push({ level: 'info', fields: fields as Record<string, unknown>, message }),
  };
  let next: ExportResult = { code: ExportResultCode.FAILED, error: new Error('connect ECONNREFUSED 127.0.0.1:4318') };
  const inner: SpanExporter = { export: (_spans, done) => done(next), shutdown: async () => undefined };
  const reporter = new ExportFailureReporter('http://127.0.0.1:4318', { intervalMs: 60_000, now: () => now });
  const exporter = reportingExporter(inner, reporter);
  const results: ExportResult[] = [];
  const exportOnce = () => exporter.export([] as ReadableSpan[], (r) => results.push(r));
  return {
    lines,
    reporter,
    log,
    exportOnce,
    results,
    tick: (ms: number) => (now += ms),
    succeedFromNowOn: () => (next = { code: ExportResultCode.SUCCESS }),
  };
}

test('the first failure is a warning naming the endpoint and the error; the next ones within a minute are only counted', () => {
  const t = setup();
  t.reporter.reportTo(t.log);
  for (let i = 0; i < 5; i++) {
    t.exportOnce();
    t.tick(5_000);
  }
  expect(t.lines).toEqual([
    {
      level: 'warn',
      fields: { endpoint: 'http://127.0.0.1:4318', failures: 1, error: 'connect ECONNREFUSED 127.0.0.1:4318' },
      message: expect.stringMatching(/^trace export to http:\/\/127\.0\.0\.1:4318 failed \(connect ECONNREFUSED/),
    },
  ]);
  // The exporter's own result still reaches the SDK.
  expect(t.results.map((r) => r.code)).toEqual(new Array(5).fill(ExportResultCode.FAILED));
});

test('a minute after the last warning, the next failure is warned with the count since', () => {
  const t = setup();
  t.reporter.reportTo(t.log);
  t.exportOnce(); // warned
  for (let i = 0; i < 4; i++) {
    t.tick(15_000);
    t.exportOnce(); // at 15, 30, 45, 60 s: the last one is a minute after the warning
  }
  expect(t.lines.map((l) => [l.level, l.fields.failures])).toEqual([
    ['warn', 1],
    ['warn', 4],
  ]);
  expect(t.lines[1]!.message).toMatch(/failed 4 time\(s\) since the last warning/);
});

test('exports that work again are said once, with the failures before', () => {
  const t = setup();
  t.reporter.reportTo(t.log);
  t.exportOnce();
  t.exportOnce();
  t.succeedFromNowOn();
  t.exportOnce();
  t.exportOnce();
  expect(t.lines.map((l) => [l.level, l.fields.failures])).toEqual([
    ['warn', 1],
    ['info', 2],
  ]);
});

test('failures before the service has its logger are told when it arrives', () => {
  const t = setup();
  t.exportOnce();
  t.exportOnce();
  t.exportOnce();
  expect(t.lines).toEqual([]);
  t.reporter.reportTo(t.log);
  expect(t.lines.map((l) => [l.level, l.fields.failures])).toEqual([['warn', 3]]);
});
