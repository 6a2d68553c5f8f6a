import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Span } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { attributeValue, decodeTraceRequest } from '../../test/otlp';
import { decodeTraceResponse, encodeTraceRequest } from './otlp-protobuf';

/**
 * Our OTLP protobuf encoder against the SDK's own protobuf serializer: the same spans, decoded from
 * both encodings, must be equal, for spans that use every part of the format.
 */

function provider(serviceName: string, exporter: InMemorySpanExporter): TracerProvider {
  return new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.instance.id': 'i-1', 'process.pid': 4242 }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
}

/** Spans of two services, several scopes, every attribute type, events, links, statuses, a remote parent. */
async function makeSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const api = provider('blog-api', exporter);
  const worker = provider('blog-worker', exporter);
  const http = api.getTracer('@blog/http-server');
  const sql = api.getTracer('@blog/sql', '1.2.3', { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' });
  const jobs = worker.getTracer('blog-worker');

  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('vendor=one,other=two'),
  });
  const server = http.startSpan('POST /graphql', { kind: SpanKind.SERVER, startTime: [1796018314, 999_999_999] }, remote);
  server.setAttributes({
    'http.request.method': 'POST',
    'url.path': '/graphql',
    'http.response.status_code': 200,
    'user_agent.original': 'curl/8 — “quoted” ünïcode 🚀',
    'blog.empty': '',
    'blog.long': 'x'.repeat(300),
    'blog.longer': 'é'.repeat(70_000), // two bytes a char: a length of three varint bytes
    'blog.ratio': 0.25,
    'blog.negative': -7,
    'blog.zero': 0,
    'blog.big': 2 ** 40 + 3,
    'blog.flag': true,
    'blog.off': false,
    'blog.names': ['a', 'ß', ''],
    'blog.numbers': [1, 2.5, -3],
    'blog.flags': [true, false],
    'blog.holes': ['a', null, 'b'] as string[],
  });
  server.addEvent('ready', { 'blog.step': 1 }, [1796018315, 5]);
  server.addEvent('no attributes');
  const child = trace.setSpan(remote, server);
  const statement = sql.startSpan('SELECT tv_post', { kind: SpanKind.CLIENT, attributes: { 'db.query.text': 'SELECT 1' } }, child);
  statement.setStatus({ code: SpanStatusCode.ERROR, message: 'relation "tv_post" does not exist' });
  statement.recordException(new Error('boom'));
  statement.end([4294967295, 5]);
  const ok = sql.startSpan('COMMIT', { kind: SpanKind.CLIENT }, child);
  ok.setStatus({ code: SpanStatusCode.OK });
  ok.end();
  server.end();

  const job: Span = jobs.startSpan('sync batch', {
    kind: SpanKind.CONSUMER,
    links: [
      { context: server.spanContext(), attributes: { 'messaging.message.id': 'job-1', 'blog.lag_ms': 12.5 } },
      { context: trace.getSpanContext(remote)! },
    ],
  });
  const inJob = trace.setSpan(ROOT_CONTEXT, job);
  jobs.startSpan('sync post', { kind: SpanKind.INTERNAL, attributes: { 'blog.entity.count': 3 } }, inJob).end();
  jobs.startSpan('producer', { kind: SpanKind.PRODUCER }, inJob).end();
  job.end();
  await api.forceFlush();
  await worker.forceFlush();
  return exporter.getFinishedSpans();
}

describe('OTLP protobuf encoding', () => {
  let spans: ReadableSpan[];
  beforeAll(async () => {
    spans = await makeSpans();
    expect(spans).toHaveLength(6);
  });

  test('decodes to what the SDK protobuf serializer sends, for every part of the format', () => {
    const ours = decodeTraceRequest(encodeTraceRequest(spans));
    const theirs = decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(spans)!);
    expect(ours).toEqual(theirs);
    // The comparison saw the spans: two services, and every span once.
    const resourceSpans = ours.resourceSpans as { scopeSpans: { spans: unknown[] }[] }[];
    expect(resourceSpans).toHaveLength(2);
    expect(resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))).toHaveLength(spans.length);
  });

  test('carries the values themselves: ids, exact nanosecond times, flags, attributes', () => {
    const request = decodeTraceRequest(encodeTraceRequest(spans)) as {
      resourceSpans: { resource: { attributes: { key: string; value: Record<string, unknown> }[] }; scopeSpans: { scope: { name: string }; spans: Record<string, unknown>[] }[] }[];
    };
    const all = request.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));
    const server = all.find((s) => s.name === 'POST /graphql')!;
    const statement = all.find((s) => s.name === 'SELECT tv_post')!;
    expect(server).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      parentSpanId: 'b7ad6b7169203331',
      traceState: 'vendor=one,other=two',
      kind: 2, // SPAN_KIND_SERVER
      startTimeUnixNano: '1796018314999999999',
      flags: 0x301, // sampled, parent known to be remote
    });
    expect(statement).toMatchObject({ parentSpanId: server.spanId, endTimeUnixNano: '4294967295000000005', flags: 0x101, kind: 3 });
    expect(statement.status).toEqual({ code: 2, message: 'relation "tv_post" does not exist' });
    const attrs = Object.fromEntries((server.attributes as { key: string; value: Record<string, unknown> }[]).map((a) => [a.key, attributeValue(a.value)]));
    expect(attrs).toMatchObject({
      'user_agent.original': 'curl/8 — “quoted” ünïcode 🚀',
      'http.response.status_code': '200',
      'blog.negative': '-7',
      'blog.big': String(2 ** 40 + 3),
      'blog.ratio': 0.25,
      'blog.flag': true,
      'blog.off': false,
      'blog.zero': '0',
      'blog.empty': '',
      'blog.names': ['a', 'ß', ''],
      'blog.holes': ['a', undefined, 'b'],
      'blog.numbers': ['1', 2.5, '-3'],
    });
    expect((attrs['blog.longer'] as string).length).toBe(70_000);
    expect(request.resourceSpans[0]!.resource.attributes.map((a) => a.key)).toContain('service.name');
  });

  test('grows past its first buffer, and each request is its own copy', () => {
    const many = Array.from({ length: 400 }, () => spans).flat(); // about 30 MB of attributes
    const first = encodeTraceRequest(spans);
    const copy = Buffer.from(first);
    const big = encodeTraceRequest(many);
    expect(big.length).toBeGreaterThan(64 * 1024);
    expect(Buffer.from(first).equals(copy)).toBe(true); // not overwritten by the next request
    const decoded = decodeTraceRequest(big) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] };
    expect(decoded.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans))).toHaveLength(many.length);
    expect(decoded).toEqual(decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(many)!));
  });

  test('reads the partial success of a response, and an empty response as none', () => {
    // ExportTraceServiceResponse { partial_success { rejected_spans: 3, error_message: "too many" } }
    const message = Buffer.from('too many');
    const partial = Buffer.concat([Buffer.from([0x08, 3, 0x12, message.length]), message]);
    expect(decodeTraceResponse(Buffer.concat([Buffer.from([0x0a, partial.length]), partial]))).toEqual({
      partialSuccess: { rejectedSpans: 3, errorMessage: 'too many' },
    });
    expect(decodeTraceResponse(new Uint8Array())).toEqual({});
    expect(() => decodeTraceResponse(Buffer.from([0x0a, 5, 1]))).toThrow(/truncated/);
  });
});
