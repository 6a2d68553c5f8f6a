import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtFile, refusingPort, testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import { attributeValue, decodeTraceRequest } from '@blog/shared/test/otlp';
import type pg from 'pg';

/**
 * Tracing as operators get it: the built API and worker processes export over OTLP/HTTP to a
 * collector (here a local receiver standing in for Jaeger's port 4318), and one QUEUED mutation
 * can be followed from the HTTP request through GraphQL and SQL into the queue and the worker's
 * batch that projected it.
 */

interface Span {
  service: string;
  scope: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
  kind: number;
  /** The Content-Type of the export that carried it. */
  contentType: string;
}

interface OtlpRequest {
  resourceSpans: {
    resource: { attributes: { key: string; value: Record<string, unknown> }[] };
    scopeSpans: { scope: { name: string }; spans: Record<string, unknown>[] }[];
  }[];
}

/**
 * An OTLP/HTTP receiver in both encodings (protobuf, the services' default, and JSON): collects
 * every span exported to it.
 */
async function startReceiver(): Promise<{ url: string; spans: Span[]; requests: () => number; close: () => Promise<void> }> {
  const spans: Span[] = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests += 1;
      const type = req.headers['content-type'] ?? '';
      const bytes = Buffer.concat(chunks);
      let body: OtlpRequest | undefined;
      if (req.url === '/v1/traces' && type === 'application/x-protobuf') body = decodeTraceRequest(bytes) as unknown as OtlpRequest;
      else if (req.url === '/v1/traces' && type === 'application/json') body = JSON.parse(bytes.toString('utf8')) as OtlpRequest;
      if (body) {
        for (const rs of body.resourceSpans ?? []) {
          const service = String(attributeValue(rs.resource.attributes.find((a) => a.key === 'service.name')?.value) ?? '');
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              const attrs: Record<string, unknown> = {};
              for (const a of (s.attributes as { key: string; value: Record<string, unknown> }[]) ?? []) {
                // Both encodings as one: 64-bit integers arrive as strings in protobuf's decoding.
                const value = attributeValue(a.value);
                attrs[a.key] = a.value && 'intValue' in a.value ? Number(value) : value;
              }
              spans.push({
                service,
                scope: ss.scope.name,
                name: s.name as string,
                traceId: s.traceId as string,
                spanId: s.spanId as string,
                parentSpanId: (s.parentSpanId as string) || undefined,
                links: ((s.links as { traceId: string; spanId: string }[]) ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
                attributes: attrs,
                kind: s.kind as number,
                contentType: type,
              });
            }
          }
        }
      }
      res.writeHead(200, { 'content-type': type || 'application/json' });
      res.end(type === 'application/x-protobuf' ? Buffer.alloc(0) : '{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    spans,
    requests: () => requests,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

function spawnService(
  file: string,
  env: Record<string, string>,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [file], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitFor<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('tracing across the API, the queue and the worker (OTLP/HTTP)', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let api: ReturnType<typeof spawnService>;
  let worker: ReturnType<typeof spawnService>;
  let apiUrl: string;
  let pool: pg.Pool;

  beforeAll(async () => {
    pool = testPool(2);
    receiver = await startReceiver();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      // Export quickly: the test waits for spans.
      OTEL_BSP_SCHEDULE_DELAY: '100',
      DATABASE_URL: testDatabaseUrl(),
    };
    api = spawnService(builtFile('services', 'api', 'dist', 'main.js'), { ...otel, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' });
    worker = spawnService(builtFile('services', 'worker', 'dist', 'main.js'), { ...otel, WORKER_HEALTH_PORT: '0', LOG_LEVEL: 'debug' });
    const [, url] = await waitFor(() => api.output().match(/API ready at (http:\/\/\S+)\/graphql/), 30_000, 'the API');
    apiUrl = url!;
    await waitFor(() => /projection worker started/.test(worker.output()), 30_000, 'the worker');
  });

  afterAll(async () => {
    for (const p of [api, worker]) {
      if (p?.child.exitCode === null) {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    }
    await receiver?.close();
    await pool.end();
  });

  /** Another API process exporting to this file's receiver as `serviceName`, `env` on top; resolves once it is ready. */
  async function extraApi(
    serviceName: string,
    env: Record<string, string>,
  ): Promise<{ service: ReturnType<typeof spawnService>; url: string }> {
    const service = spawnService(builtFile('services', 'api', 'dist', 'main.js'), {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
      OTEL_SERVICE_NAME: serviceName,
      DATABASE_URL: testDatabaseUrl(),
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
    });
    try {
      const [, url] = await waitFor(() => service.output().match(/API ready at (http:\/\/\S+)\/graphql/), 30_000, serviceName);
      return { service, url: url! };
    } catch (err) {
      service.child.kill('SIGTERM');
      throw err;
    }
  }

  it('exports nothing while idle: queue polling makes no spans', async () => {
    // Startup may export a span or two (the GraphQL schema build); let those arrive first.
    await new Promise((r) => setTimeout(r, 1000));
    const before = receiver.spans.length;
    // The worker polls the queue every 50 ms: 3 s is about 60 polls, each several statements.
    await new Promise((r) => setTimeout(r, 3000));
    expect(receiver.spans.slice(before)).toEqual([]);
  });

  const gql = async (query: string, variables: Record<string, unknown> = {}, operationName?: string) => {
    const res = await fetch(`${apiUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables, operationName }),
    });
    const body = (await res.json()) as { data?: Record<string, { id: string }>; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    return body.data!;
  };

  /** The span's ancestors within its trace, nearest first. */
  const ancestors = (span: Span): Span[] => {
    const out: Span[] = [];
    let current: Span | undefined = span;
    while (current?.parentSpanId) {
      const parentId: string = current.parentSpanId;
      current = receiver.spans.find((s) => s.spanId === parentId);
      if (current) out.push(current);
    }
    return out;
  };

  it('follows one QUEUED mutation from HTTP through GraphQL and SQL into the worker batch that projected it', async () => {
    const { createUser } = await gql(
      'mutation { createUser(email: "traced@example.com", username: "traced", fullName: "Traced Author", sync: INLINE) { id } }',
    );
    const { createPost } = await gql(
      'mutation Traced($a: ID!) { ' +
        'createPost(title: "Traced post", content: "Follow me", authorId: $a, published: true, sync: QUEUED) { id } }',
      { a: createUser!.id },
      'Traced',
    );
    // The worker projects it...
    await waitFor(
      async () => (await pool.query('SELECT 1 FROM tv_post WHERE id = $1', [createPost!.id])).rowCount,
      20_000,
      'the worker to project the post',
    );
    // ...and its spans reach the collector.
    const mutation = await waitFor(
      () =>
        receiver.spans.find(
          (s) =>
            s.scope.includes('instrumentation-graphql') &&
            s.name.startsWith('mutation') &&
            s.attributes['graphql.operation.name'] === 'Traced',
        ),
      10_000,
      'the mutation span',
    );
    // The job's insert into pg-boss: made by the worker's relay of the sync outbox, in the trace of
    // the mutation that recorded the job.
    const producer = await waitFor(
      () => receiver.spans.find((s) => s.traceId === mutation.traceId && s.scope === 'pg-boss' && s.name === 'insert projection-sync'),
      10_000,
      'the span of the enqueue',
    );
    expect(producer.service).toBe('blog-worker');
    const trace = receiver.spans.filter((s) => s.traceId === mutation.traceId);
    const batch = await waitFor(
      () =>
        receiver.spans.find(
          (s) =>
            s.service === 'blog-worker' &&
            s.name === 'process projection-sync' &&
            (s.parentSpanId === producer.spanId || s.links.some((l) => l.spanId === producer.spanId)),
        ),
      10_000,
      "the worker's batch span, linked to the enqueue",
    );
    const syncPost = await waitFor(
      () => receiver.spans.find((s) => s.name === 'sync post' && s.parentSpanId === batch.spanId),
      10_000,
      'the sync span of the batch',
    );

    // HTTP server span at the root of the mutation's trace, GraphQL under it, SQL under GraphQL.
    const root = ancestors(mutation).at(-1);
    expect(root).toMatchObject({
      service: 'blog-api',
      scope: '@blog/http-server',
      name: 'POST /graphql',
      kind: 2, // SpanKind.SERVER (OTLP numbering)
    });
    expect(root!.attributes).toMatchObject({ 'http.request.method': 'POST', 'http.route': '/graphql', 'url.path': '/graphql' });
    expect(Number(root!.attributes['http.response.status_code'])).toBe(200);
    expect(root!.parentSpanId).toBeUndefined();
    const sqlUnderGraphql = trace.filter(
      (s) => s.scope === '@blog/sql' && ancestors(s).some((a) => a.scope.includes('instrumentation-graphql')),
    );
    // The mutation's statement (our spans, see shared/src/telemetry/statement-span.ts): a QUEUED
    // create is one statement, named after its leading WITH, holding its INSERT, its counts row, its
    // event, the job recorded in the sync outbox and its author's count.
    // (The worker's statements are in the trace too, under the relay's enqueue.)
    const apiStatements = sqlUnderGraphql.filter((s) => s.service === 'blog-api');
    expect(apiStatements.map((s) => s.name)).toEqual(['WITH tb_post']);
    const statement = apiStatements[0];
    expect(String(statement?.attributes['db.query.text'])).toEqual(
      expect.stringMatching(/INSERT INTO tb_post[\s\S]*INSERT INTO event_log[\s\S]*INSERT INTO sync_outbox[\s\S]*UPDATE tb_user_stats/),
    );
    // (The preview of the answer is a statement named after its leading WITH too: the insert is among them.)
    const insert = sqlUnderGraphql.find(
      (s) => s.name === 'WITH tb_post' && String(s.attributes['db.query.text']).includes('INSERT INTO tb_post'),
    );
    expect(insert?.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.query.text': expect.stringContaining('INSERT INTO tb_post'),
    });
    // The relay's enqueue continues the mutation's trace, under it.
    expect(ancestors(producer).map((a) => a.spanId)).toContain(mutation.spanId);

    // The worker's per-entity sync span says what it did and how late.
    expect(syncPost.service).toBe('blog-worker');
    expect(syncPost.attributes).toMatchObject({
      'blog.sync.entity_type': 'post',
      'blog.sync.entity_count': expect.anything(),
      'blog.sync.duration_ms': expect.any(Number),
      'blog.sync.lag_ms.max': expect.anything(),
      'blog.sync.jobs': expect.anything(),
    });
    expect(Number(syncPost.attributes['blog.sync.entity_count'])).toBeGreaterThanOrEqual(1);
    // And the worker's log lines written inside that batch carry its trace id.
    expect(worker.output()).toContain(`"trace_id":"${batch.traceId}"`);
  });

  it("a compiled read is the request's server span, which names the operation, with its one SQL statement under it", async () => {
    await gql('query GetRecentPosts { posts(limit: 5) { id title } }', {}, 'GetRecentPosts');
    const read = await waitFor(
      () => receiver.spans.find((s) => s.scope === '@blog/http-server' && s.attributes['graphql.operation.name'] === 'GetRecentPosts'),
      10_000,
      'the server span of the read',
    );
    expect(read.name).toBe('POST /graphql');
    expect(read.attributes).toMatchObject({
      'graphql.operation.type': 'query',
      'blog.graphql.path': 'compiled',
      'blog.response_cache': expect.stringMatching(/^(hit|miss)$/),
      'http.response.status_code': 200,
    });
    const statements = await waitFor(
      () => {
        // SQL spans under the server span (the first compile of a document also traces its parse).
        const found = receiver.spans.filter(
          (s) => s.parentSpanId === read.spanId && (s.attributes['db.system.name'] || s.scope.includes('pg')),
        );
        return found.length ? found : undefined;
      },
      10_000,
      'the statement span',
    );
    // No GraphQL span of its own: besides the statement, only the GraphQL instrumentation's parse
    // and validation of the document's first compile.
    const others = receiver.spans.filter((s) => s.parentSpanId === read.spanId && !statements.includes(s));
    expect(others.map((s) => s.name).filter((name) => !/^graphql\.(parse|validate)/.test(name))).toEqual([]);
    // One span for its one statement (see shared/src/telemetry/statement-span.ts).
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({ name: 'SELECT tv_post', scope: '@blog/sql' });
    expect(statements[0]!.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.operation.name': 'SELECT',
      'db.query.summary': 'SELECT tv_post',
    });
    expect(String(statements[0]!.attributes['db.query.text'])).toMatch(/^SELECT blog_read_answer\(json_build_object\('posts'/);
    expect(String(statements[0]!.attributes['db.namespace'])).toMatch(/^blog_test_/);
  });

  it('an unsampled request exports no span at all, read or mutation', async () => {
    const { service: quiet, url } = await extraApi('blog-api-unsampled', { OTEL_TRACES_SAMPLER: 'always_off' });
    try {
      const post = (query: string) =>
        fetch(`${url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) }).then(
          async (r) => [r.status, (await r.json()) as { data?: unknown; errors?: unknown }] as const,
        );
      const [readStatus, read] = await post('query Unsampled { posts(limit: 2) { id title author { username } } }');
      expect([readStatus, read.errors]).toEqual([200, undefined]);
      const [writeStatus, write] = await post(
        'mutation { createUser(email: "unsampled@example.com", username: "unsampled", fullName: "Not Traced", sync: QUEUED) { id } }',
      );
      expect([writeStatus, write.errors]).toEqual([200, undefined]);
      // The traced API of this file exports within 100 ms; give this one ten times that.
      await new Promise((r) => setTimeout(r, 1000));
      expect(receiver.spans.filter((s) => s.service === 'blog-api-unsampled')).toEqual([]);
    } finally {
      quiet.child.kill('SIGTERM');
      await quiet.exited;
    }
  });

  it("continues the caller's trace (W3C traceparent) in its server span", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpanId = '00f067aa0ba902b7';
    const res = await fetch(`${apiUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${callerSpanId}-01` },
      body: JSON.stringify({ query: 'query Continued { posts(limit: 1) { id } }', operationName: 'Continued' }),
    });
    expect(res.status).toBe(200);
    const server = await waitFor(
      () => receiver.spans.find((s) => s.traceId === traceId && s.scope === '@blog/http-server'),
      10_000,
      'the server span of the continued trace',
    );
    expect(server).toMatchObject({ name: 'POST /graphql', parentSpanId: callerSpanId });
    expect(server.attributes['graphql.operation.name']).toBe('Continued');
    const statement = await waitFor(
      () => receiver.spans.find((s) => s.traceId === traceId && s.scope === '@blog/sql'),
      10_000,
      'the statement span of the continued trace',
    );
    expect(statement.parentSpanId).toBe(server.spanId);
  });
  it('exports OTLP protobuf by default, JSON when OTEL_EXPORTER_OTLP_PROTOCOL says so, and refuses gRPC', async () => {
    // This file's API and worker use the default.
    const ours = receiver.spans.filter((s) => s.service === 'blog-api' || s.service === 'blog-worker');
    expect(ours.length).toBeGreaterThan(0);
    expect([...new Set(ours.map((s) => s.contentType))]).toEqual(['application/x-protobuf']);

    const { service: json, url } = await extraApi('blog-api-json', { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' });
    try {
      const res = await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'query InJson { posts(limit: 1) { id } }', operationName: 'InJson' }),
      });
      expect(res.status).toBe(200);
      const read = await waitFor(
        () => receiver.spans.find((s) => s.service === 'blog-api-json' && s.attributes['graphql.operation.name'] === 'InJson'),
        10_000,
        'the JSON export',
      );
      expect(read.contentType).toBe('application/json');
    } finally {
      json.child.kill('SIGTERM');
      await json.exited;
    }

    const grpc = spawnService(builtFile('services', 'api', 'dist', 'main.js'), {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'grpc',
      DATABASE_URL: testDatabaseUrl(),
      PORT: '0',
    });
    expect(await grpc.exited).toBe(2);
    expect(grpc.output()).toContain(
      'blog-api: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be one of http/protobuf, http/json (gRPC is not supported); got "grpc"',
    );
    expect(grpc.output()).not.toMatch(/\n\s+at /); // no stack trace
  });
});

it('an OTLP endpoint that refuses connections is told in the log: a warning naming it, then no more than one a minute', async () => {
  const port = await refusingPort();
  const api = spawnService(builtFile('services', 'api', 'dist', 'main.js'), {
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_EXPORTER_OTLP_TIMEOUT: '1000',
    DATABASE_URL: testDatabaseUrl(),
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
  });
  try {
    const [, url] = await waitFor(() => api.output().match(/API ready at (http:\/\/\S+)\/graphql/), 30_000, 'the API');
    const warnings = () =>
      api
        .output()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as { level: string; msg: string; endpoint?: string; failures?: number })
        .filter((line) => line.level === 'warn' && /^trace export to /.test(line.msg));
    // Spans to export, in several batches, for about three seconds.
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      await fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ posts(limit: 1) { id } }' }),
      });
      await new Promise((r) => setTimeout(r, 200));
    }
    await waitFor(() => warnings().length > 0, 10_000, 'the warning');
    expect(warnings()).toEqual([
      expect.objectContaining({
        endpoint: `http://127.0.0.1:${port}`,
        msg: expect.stringContaining(`trace export to http://127.0.0.1:${port} failed (`),
      }),
    ]);
  } finally {
    api.child.kill('SIGTERM');
    await api.exited;
  }
}, 60_000);
