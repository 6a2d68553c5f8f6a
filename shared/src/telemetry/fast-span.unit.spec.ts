import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Span, type Tracer } from '@opentelemetry/api';
import { suppressTracing } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { fastTracer } from './fast-span';
import { startTracing, type Tracing } from './tracing';

/**
 * Our hot-path spans (fast-span.ts) against the SDK's own, through the real wiring: startTracing
 * with an exporter that keeps what it is given. The same calls on both tracers must export the same
 * spans, field for field, with the SDK's sampling, limits, resource and processor.
 */

const exported: ReadableSpan[] = [];
const exporter: SpanExporter = {
  export(spans, done) {
    exported.push(...spans);
    done({ code: 0 });
  },
  shutdown: async () => undefined,
};

let tracing: Tracing;
const before = fastTracer('@blog/test-fast').fast;

beforeAll(() => {
  tracing = startTracing({ serviceName: 'fast-span-test', exporter });
});

afterAll(async () => {
  await tracing.shutdown();
});

/** Ends every span made so far into `exported` (shutting the processor down only at the end). */
async function flush(): Promise<void> {
  const provider = trace.getTracerProvider() as unknown as { getDelegate(): { forceFlush(): Promise<void> } };
  await provider.getDelegate().forceFlush();
}

const LINKED = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED };

/** One scenario: a server span with attributes, a link and an event, a child that fails, an exception and a rename. */
function scenario(tracer: Tracer, label: string): void {
  const root = tracer.startSpan(`root ${label}`, { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'POST', skipped: undefined } }, ROOT_CONTEXT);
  root.setAttributes({ 'url.path': '/graphql', count: 3, ok: true, list: ['a', 'b'] });
  root.addLink({ context: LINKED, attributes: { 'link.kind': 'job', skipped: undefined } });
  root.addEvent('checkpoint', { step: 1 });
  context.with(trace.setSpan(ROOT_CONTEXT, root), () => {
    tracer.startActiveSpan(`child ${label}`, (child: Span) => {
      child.setAttribute('db.query.text', 'SELECT 1');
      child.recordException(Object.assign(new Error('boom'), { name: 'TypeError' }));
      child.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' });
      child.setStatus({ code: SpanStatusCode.UNSET }); // ignored, as by the SDK
      child.updateName(`child ${label} renamed`);
      child.end();
      child.setAttribute('after.end', 1); // ignored: the span has ended
    });
  });
  root.setAttribute('http.response.status_code', 200);
  root.end();
}

function shape(s: ReadableSpan) {
  return {
    name: s.name.replace(/ (fast|sdk)/, ''),
    kind: s.kind,
    attributes: s.attributes,
    status: s.status,
    // The stack traces differ (they name each scenario's caller); their presence is compared.
    events: s.events.map((e) => {
      const { 'exception.stacktrace': stack, ...attributes } = e.attributes ?? {};
      return { name: e.name, attributes, stack: typeof stack, droppedAttributesCount: e.droppedAttributesCount ?? 0 };
    }),
    links: s.links,
    droppedAttributesCount: s.droppedAttributesCount,
    droppedEventsCount: s.droppedEventsCount,
    droppedLinksCount: s.droppedLinksCount,
    ended: s.ended,
    scopeVersion: s.instrumentationScope.version,
  };
}

describe('fast spans', () => {
  it('are made here only while tracing is on', () => {
    expect(before).toBe(false);
    expect(fastTracer('@blog/test-fast').fast).toBe(true);
  });

  it('export what the SDK exports for the same calls', async () => {
    exported.length = 0;
    const started = Date.now();
    scenario(fastTracer('@blog/test-fast'), 'fast');
    scenario(trace.getTracer('@blog/test-sdk'), 'sdk');
    await flush();
    const finished = Date.now();
    const fast = exported.filter((s) => s.instrumentationScope.name === '@blog/test-fast');
    const sdk = exported.filter((s) => s.instrumentationScope.name === '@blog/test-sdk');
    expect(fast.map(shape)).toEqual(sdk.map(shape));
    expect(fast.map((s) => s.name)).toEqual(['child fast renamed', 'root fast']);

    const [child, root] = fast as [ReadableSpan, ReadableSpan];
    expect(child.spanContext().traceId).toBe(root.spanContext().traceId);
    expect(child.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(root.parentSpanContext).toBeUndefined();
    expect(root.spanContext().traceFlags).toBe(TraceFlags.SAMPLED);
    expect(root.resource).toBe(sdk[0]!.resource);
    expect(root.resource.attributes['service.name']).toBe('fast-span-test');
    expect(child.events[0]!.attributes).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'boom' });
    expect(root.links).toEqual([{ context: LINKED, attributes: { 'link.kind': 'job' }, droppedAttributesCount: 0 }]);
    expect(root.events.map((e) => e.name)).toEqual(['checkpoint']);
    for (const s of fast) {
      const start = s.startTime[0] * 1000 + s.startTime[1] / 1e6;
      const end = s.endTime[0] * 1000 + s.endTime[1] / 1e6;
      expect(start).toBeGreaterThanOrEqual(started - 1);
      expect(end).toBeGreaterThanOrEqual(start);
      expect(end).toBeLessThanOrEqual(finished + 1);
      expect(s.duration[0] * 1000 + s.duration[1] / 1e6).toBeCloseTo(end - start, 3);
    }
  });

  it('keep the SDK attribute limit (128 by default) and count what they drop', async () => {
    exported.length = 0;
    const many = Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`a${i}`, i]));
    for (const tracer of [fastTracer('@blog/test-fast'), trace.getTracer('@blog/test-sdk')]) {
      const span = tracer.startSpan('many', { attributes: many }, ROOT_CONTEXT);
      span.setAttribute('one.more', 'x');
      span.end();
    }
    await flush();
    expect(exported).toHaveLength(2);
    const [fast, sdk] = exported as [ReadableSpan, ReadableSpan];
    expect(Object.keys(fast.attributes)).toHaveLength(128);
    expect(fast.droppedAttributesCount).toBe(3);
    expect(fast.attributes).toEqual(sdk.attributes);
    expect(fast.droppedAttributesCount).toBe(sdk.droppedAttributesCount);
  });

  it('follow the sampler: a child of an unsampled remote parent is not recorded, and nothing is exported', async () => {
    exported.length = 0;
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.NONE,
      isRemote: true,
    });
    const span = fastTracer('@blog/test-fast').startSpan('unsampled', {}, parent);
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(span.spanContext().traceFlags).toBe(TraceFlags.NONE);
    span.end();
    await flush();
    expect(exported).toHaveLength(0);
  });

  it('make nothing where tracing is suppressed', () => {
    const span = fastTracer('@blog/test-fast').startSpan('suppressed', {}, suppressTracing(ROOT_CONTEXT));
    expect(span.isRecording()).toBe(false);
    expect(trace.isSpanContextValid(span.spanContext())).toBe(false);
  });
});
