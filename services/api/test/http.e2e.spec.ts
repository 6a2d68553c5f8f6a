import { recordLag } from '@blog/shared';
import { seededApi } from './support';

/** The HTTP surface around GraphQL: operator endpoints, the IDE page, X-Process-Time everywhere. */
const seeded = seededApi();

const PROCESS_TIME = /^\d+\.\d{3}ms$/;

test('GET /health: alive', async () => {
  const res = await fetch(`${seeded.api.url}/health`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: 'ok' });
});

test('GET /ready: 200 when migrations are current, 503 (with a generic reason) when they are not', async () => {
  const ok = await fetch(`${seeded.api.url}/ready`);
  expect(ok.status).toBe(200);
  expect(await ok.json()).toEqual({ status: 'ready' });
  // A migration recorded in the database but absent from disk: this build does not match the schema.
  await seeded.pool.query(`INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES (999, 'from_the_future', 'x', 0)`);
  try {
    const bad = await fetch(`${seeded.api.url}/ready`);
    expect(bad.status).toBe(503);
    expect(await bad.json()).toEqual({ status: 'unavailable', reason: 'migrations do not match this build' });
  } finally {
    await seeded.pool.query('DELETE FROM schema_migrations WHERE version = 999');
  }
  expect((await fetch(`${seeded.api.url}/ready`)).status).toBe(200);
});

test('GET /metrics: 24-hour sync metrics, entity counts and queue depth', async () => {
  await seeded.api.data(`mutation { createUser(email: "m@example.com", username: "metrics", fullName: "M", sync: QUEUED) { id } }`);
  const res = await fetch(`${seeded.api.url}/metrics`);
  expect(res.status).toBe(200);
  const m = (await res.json()) as {
    sync_metrics_24h: { overall: unknown; by_entity: { entity_type: string }[] };
    entity_counts: unknown;
    projection_counts: unknown;
    queue: unknown;
    projection_lag_24h: unknown;
  };
  expect(m.sync_metrics_24h.overall).toEqual({ total_syncs: expect.any(Number), avg_duration_ms: expect.any(Number), success_rate: 100 });
  expect(m.sync_metrics_24h.by_entity.map((e: { entity_type: string }) => e.entity_type)).toEqual(['comment', 'post', 'user']);
  expect(m.sync_metrics_24h.by_entity[0]).toEqual({
    entity_type: 'comment',
    total_syncs: expect.any(Number),
    avg_duration_ms: expect.any(Number),
    max_duration_ms: expect.any(Number),
    success_rate: 100,
    failures: 0,
  });
  expect(m.entity_counts).toEqual({ users: 4, posts: 3, comments: 4 });
  expect(m.projection_counts).toEqual({ users: 3, posts: 3, comments: 4 }); // the new user's sync is queued
  // The new user's job is ready, still in the sync outbox (no worker relays it in this test).
  expect(m.queue).toEqual({ name: 'projection-sync', ready: 1, scheduled: 0, outbox: 1, retrying: 0, active: 0, dead_letters: 0 });
  // No worker ran in this test: no lag measured yet.
  expect(m.projection_lag_24h).toEqual({ QUEUED: null, DEFERRED: null });
});

test('GET /metrics: one naming style, snake case, in every key (projection_lag_24h as sync_metrics_24h)', async () => {
  await recordLag(seeded.pool, 'http-test', { QUEUED: [5, 10, 20] });
  const m = (await (await fetch(`${seeded.api.url}/metrics`)).json()) as { projection_lag_24h: Record<string, unknown> };
  expect(m.projection_lag_24h.QUEUED).toEqual({
    samples: 3,
    avg_ms: expect.any(Number),
    max_ms: 20,
    p50_ms: expect.any(Number),
    p95_ms: expect.any(Number),
    p99_ms: expect.any(Number),
  });
  const keys = (value: unknown): string[] =>
    value && typeof value === 'object' ? Object.entries(value).flatMap(([k, v]) => [...(Array.isArray(value) ? [] : [k]), ...keys(v)]) : [];
  // The sync modes are values of an enum, kept as they are spelled everywhere else.
  expect(keys(m).filter((k) => !/^[a-z0-9]+(_[a-z0-9]+)*$/.test(k) && k !== 'QUEUED' && k !== 'DEFERRED')).toEqual([]);
});

test('X-Process-Time is on every response: fast path, Apollo, operators, IDE, errors, 404', async () => {
  const responses = await Promise.all([
    seeded.api.gql('{ posts { id } }'),
    seeded.api.gql('{ __schema { queryType { name } } }'),
    seeded.api.raw('not json'),
    fetch(`${seeded.api.url}/health`),
    fetch(`${seeded.api.url}/metrics`),
    fetch(`${seeded.api.url}/graphql`, { headers: { accept: 'text/html' } }),
    fetch(`${seeded.api.url}/ide/graphiql.css`),
    fetch(`${seeded.api.url}/nowhere`),
    fetch(`${seeded.api.url}/graphql?query=${encodeURIComponent('{ posts { id } }')}`, { headers: { 'apollo-require-preflight': 'true' } }),
  ]);
  for (const res of responses) expect(res.headers.get('x-process-time')).toMatch(PROCESS_TIME);
  expect(responses.map((r) => r.status)).toEqual([200, 200, 400, 200, 200, 200, 200, 404, 200]);
});

test('GET /graphql in a browser is the IDE page, with every asset served by us', async () => {
  const res = await fetch(`${seeded.api.url}/graphql`, { headers: { accept: 'text/html,application/xhtml+xml' } });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/html/);
  const html = await res.text();
  expect(html).toContain('GraphiQL');
  const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  expect(assets.length).toBe(4);
  for (const asset of assets) {
    expect(asset.startsWith('/')).toBe(true); // same origin: nothing from the internet
    const a = await fetch(`${seeded.api.url}${asset}`);
    expect(a.status).toBe(200);
    expect((await a.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  }
});

test('GET /graphql with a query still answers GraphQL (Apollo, with its CSRF rule)', async () => {
  const q = encodeURIComponent('{ user(id: "00000000-0000-0000-0000-000000000002") { username } }');
  const blocked = await fetch(`${seeded.api.url}/graphql?query=${q}`);
  expect(blocked.status).toBe(400);
  const ok = await fetch(`${seeded.api.url}/graphql?query=${q}`, { headers: { 'apollo-require-preflight': 'true' } });
  expect(await ok.json()).toEqual({ data: { user: { username: 'bob' } } });
});
