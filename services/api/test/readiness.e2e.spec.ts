import { createPool, defaultMigrationsDir, installQueueSchema, Migrator, prepareDatabase, seed } from '@blog/shared';
import { createEmptyDatabase, LOG_LEVELS, recordingLogger, refusingPort, testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { createApp, type ApiApp } from '../src/app';
import { configFor } from '../src/env';
import { SCHEMA_RETRY_MS } from '../src/readiness';
import { mutationAnswer, startApi, type TestApi } from './support';

/**
 * /ready: what it tells anyone (a generic reason) and what only the logs and operators see (the
 * detail: addresses, users, files); and the API's start against a database that is not migrated
 * yet (it waits for the migrations, then finishes starting by itself).
 */
const OPERATOR_TOKEN = 'operator-token-0123456789';
const asOperator = { authorization: `Bearer ${OPERATOR_TOKEN}` };

let pool: pg.Pool;
beforeAll(async () => {
  pool = testPool();
  await seed(pool);
});
afterAll(() => pool?.end());

async function ready(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; json: Record<string, unknown> }> {
  const res = await fetch(`${url}/ready`, { headers });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as Record<string, unknown> };
}

describe('/ready with a read replica that refuses connections', () => {
  let api: TestApi;
  let port: number;
  const logs = recordingLogger();
  beforeAll(async () => {
    port = await refusingPort();
    const replica = new URL(testDatabaseUrl());
    replica.host = `127.0.0.1:${port}`;
    api = await startApi({ databaseReadUrl: replica.toString(), operatorToken: OPERATOR_TOKEN }, { logger: logs.logger });
  });
  afterAll(() => api?.close());

  test('anyone gets 503 and a generic reason, no address', async () => {
    const r = await ready(api.url);
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ status: 'unavailable', reason: 'read replica unavailable' });
    expect(r.text).not.toContain('127.0.0.1');
    expect(r.text).not.toContain(String(port));
    expect(r.text).not.toMatch(/ECONNREFUSED/);
  });

  test('a wrong operator token gets the same; the right one gets the detail', async () => {
    expect((await ready(api.url, { authorization: 'Bearer not-the-operator-token' })).json).toEqual({
      status: 'unavailable',
      reason: 'read replica unavailable',
    });
    const r = await ready(api.url, asOperator);
    expect(r.status).toBe(503);
    expect(r.json).toEqual({
      status: 'unavailable',
      reason: 'read replica unavailable',
      detail: expect.stringMatching(
        new RegExp(`^the read replica \\(DATABASE_READ_URL\\) does not answer: .*127\\.0\\.0\\.1:${port}: connection refused`),
      ),
    });
  });

  test('the detail is logged as a warning, once while it stays the same', async () => {
    for (let i = 0; i < 3; i++) await ready(api.url);
    const warnings = logs.lines.filter((l) => l.level === LOG_LEVELS.warn && l.reason === 'read replica unavailable');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.detail).toContain(`127.0.0.1:${port}`);
  });
});

test('/ready without OPERATOR_TOKEN: migrations out of step are a generic reason, the file is in the log only', async () => {
  const logs = recordingLogger();
  const api = await startApi({}, { logger: logs.logger });
  await pool.query(`INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES (998, 'from_the_future', 'x', 0)`);
  try {
    const r = await ready(api.url, asOperator);
    expect(r.status).toBe(503);
    expect(r.json).toEqual({ status: 'unavailable', reason: 'migrations do not match this build' });
    expect(logs.lines.find((l) => l.level === LOG_LEVELS.warn && l.reason === 'migrations do not match this build')?.detail).toContain(
      '998 (from_the_future)',
    );
  } finally {
    await pool.query('DELETE FROM schema_migrations WHERE version = 998');
  }
  expect((await ready(api.url)).status).toBe(200);
  expect(logs.lines.filter((l) => l.msg === 'ready again')).toHaveLength(1);
  await api.close();
});

describe('an API started on a database that is not migrated yet', () => {
  let empty: { url: string; drop: () => Promise<void> };
  let app: ApiApp | undefined;
  const logs = recordingLogger();
  beforeAll(async () => {
    empty = await createEmptyDatabase();
  });
  afterAll(async () => {
    await app?.close();
    await empty?.drop();
  });

  test('starts, is alive but not ready, answers GraphQL 503, and finishes starting by itself once migrated', async () => {
    app = await createApp(configFor(empty.url), { logger: logs.logger });
    expect(logs.lines.some((l) => l.level === LOG_LEVELS.warn && /not migrated yet/.test(l.msg ?? ''))).toBe(true);
    expect((await fetch(`${app.url}/health`)).status).toBe(200);
    const waiting = await ready(app.url);
    expect(waiting.status).toBe(503);
    expect(waiting.json).toEqual({ status: 'unavailable', reason: 'migrations pending' });
    const post = (query: string) =>
      fetch(`${app!.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    for (const query of [
      '{ posts { id } }',
      'mutation { createUser(email: "w@example.com", username: "waiting", fullName: "W") { id } }',
    ]) {
      const res = await post(query);
      expect(res.status).toBe(503);
      expect(((await res.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('SERVICE_UNAVAILABLE');
    }

    // What `npm run migrate -- up` does (shared/src/db/prepare.ts), while the API runs.
    await new Migrator(empty.url, { dir: defaultMigrationsDir }).up();
    expect((await ready(app.url)).status).toBe(503); // pg-boss's schema is not there yet
    await installQueueSchema(empty.url);

    const deadline = Date.now() + SCHEMA_RETRY_MS + 5000;
    let status = 0;
    while (Date.now() < deadline && (status = (await ready(app.url)).status) !== 200) await new Promise((r) => setTimeout(r, 100));
    expect(status).toBe(200);
    expect(logs.lines.some((l) => /is ready for this release/.test(l.msg ?? ''))).toBe(true);
    expect(await (await post('{ posts { id } }')).json()).toEqual({ data: { posts: [] } });
    const created = (await (
      await post('mutation { createUser(email: "w@example.com", username: "waiting", fullName: "W") { username } }')
    ).json()) as unknown;
    expect(created).toEqual(mutationAnswer({ createUser: { username: 'waiting' } }));
  }, 30_000);
});

describe('an API whose release reads a projection table that is still being built', () => {
  let db: { url: string; drop: () => Promise<void> };
  let app: ApiApp | undefined;
  let dbPool: pg.Pool | undefined;
  const logs = recordingLogger();
  beforeAll(async () => {
    db = await createEmptyDatabase();
    await prepareDatabase(db.url, { seedWhenEmpty: true });
  });
  afterAll(async () => {
    await app?.close();
    await dbPool?.end();
    await db?.drop();
  });

  test('is not ready and answers GraphQL 503 until the table is built, shows the build in /metrics, then serves', async () => {
    dbPool = createPool(db.url, { applicationName: 'blog-test', max: 2 });
    // As `npm run migrate` leaves the table of a new version until the workers have built it.
    await dbPool.query(
      `INSERT INTO sync_shape (entity_type, version, table_name, state, rows_done, rows_total, followed_to)
       VALUES ('post', 1, 'tv_post', 'building', 3, 8, now())`,
    );
    app = await createApp(configFor(db.url, { operatorToken: OPERATOR_TOKEN }), { logger: logs.logger });
    expect(
      logs.lines.some((l) => l.level === LOG_LEVELS.warn && /the workers are building this release's projection tables/.test(l.msg ?? '')),
    ).toBe(true);
    expect(await ready(app.url)).toEqual(
      expect.objectContaining({ status: 503, json: { status: 'unavailable', reason: 'projections building' } }),
    );
    expect((await ready(app.url, asOperator)).json.detail).toBe('post v1 (tv_post) building, 37% (3 of about 8 rows)');
    const post = (query: string) =>
      fetch(`${app!.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    const refused = await post('{ posts { id } }');
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(
      /waiting for the workers to build its projection tables/,
    );
    const metrics = await (await fetch(`${app.url}/metrics/prometheus`, { headers: asOperator })).text();
    expect(metrics).toMatch(/blog_projection_versions\{entity_type="post",version="1",table="tv_post",state="building"[^}]*\} 1/);
    expect(metrics).toMatch(/blog_projection_build_rows\{entity_type="post",version="1",kind="done"[^}]*\} 3/);
    expect(metrics).toMatch(/blog_projection_build_rows\{entity_type="post",version="1",kind="total"[^}]*\} 8/);

    // What the worker does when it has built it.
    await dbPool.query("UPDATE sync_shape SET state = 'ready', ready_at = now(), rows_done = 8 WHERE entity_type = 'post'");
    const deadline = Date.now() + SCHEMA_RETRY_MS + 5000;
    let status = 0;
    while (Date.now() < deadline && (status = (await ready(app.url)).status) !== 200) await new Promise((r) => setTimeout(r, 100));
    expect(status).toBe(200);
    const answered = (await (await post('{ posts(limit: 1) { title } }')).json()) as { data: { posts: unknown[] } };
    expect(answered.data.posts).toHaveLength(1);
    // It says that it runs (the workers of another release follow what it writes).
    const { rows } = await dbPool.query<{ n: number }>('SELECT count(*)::int AS n FROM sync_shape WHERE seen_at IS NOT NULL');
    expect(rows[0]!.n).toBe(4);
  }, 30_000);
});
