import { randomBytes } from 'node:crypto';
import { createPool, seed, withDatabase } from '@blog/shared';
import { testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import pg from 'pg';
import { loadConfig } from '../src/env';
import { ALICE, POST1, startApi, type TestApi } from './support';

/**
 * DATABASE_READ_URL: reads of tv_* go to the replica URL; writes, INLINE syncs, a mutation's own
 * answer and pg-boss stay on the primary (DATABASE_URL).
 *
 * There is no streaming replication here, so the "replica" is a second database cloned from the
 * same migrated template and seeded the same way, then given different tv_* documents (titles that
 * start with "REPLICA:"). An answer therefore says which database it came from. Being a separate
 * database, the "replica" never receives the primary's writes: that is the worst case of
 * replication lag, and the test shows what a reader on a lagging replica sees.
 */
let primary: pg.Pool;
let replica: pg.Pool;
let replicaUrl: string;
let replicaName: string;
let api: TestApi;

beforeAll(async () => {
  primary = testPool();
  await seed(primary);
  replicaName = `blog_test_${process.pid}_${randomBytes(4).toString('hex')}_replica`;
  await admin((c) =>
    c.query(`CREATE DATABASE ${c.escapeIdentifier(replicaName)} TEMPLATE ${c.escapeIdentifier(process.env.BLOG_TEST_TEMPLATE!)}`),
  );
  replicaUrl = withDatabase(testDatabaseUrl(), replicaName);
  replica = createPool(replicaUrl, { applicationName: 'blog-test-replica', max: 2 });
  await seed(replica);
  await replica.query(`UPDATE tv_post SET data = jsonb_set(data, '{title}', to_jsonb('REPLICA: ' || (data->>'title')))`);
  await replica.query(`UPDATE tv_user SET data = jsonb_set(data, '{fullName}', to_jsonb('REPLICA: ' || (data->>'fullName')))`);
  api = await startApi({ databaseReadUrl: replicaUrl });
});

afterAll(async () => {
  await api?.close();
  await replica?.end();
  await primary?.end();
  if (replicaName) await admin((c) => c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(replicaName)} WITH (FORCE)`));
});

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: process.env.BLOG_TEST_ADMIN_URL, application_name: 'blog-test-admin' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

test('DATABASE_READ_URL is read from the environment and defaults to DATABASE_URL', () => {
  const url = 'postgres://u@primary:5432/blog';
  expect(loadConfig({ DATABASE_URL: url }).databaseReadUrl).toBe(url);
  expect(loadConfig({ DATABASE_URL: url, DATABASE_READ_URL: '' }).databaseReadUrl).toBe(url);
  expect(loadConfig({ DATABASE_URL: url, DATABASE_READ_URL: 'postgres://u@replica:5432/blog' }).databaseReadUrl).toBe(
    'postgres://u@replica:5432/blog',
  );
  expect(() => loadConfig({ DATABASE_URL: url, DATABASE_READ_URL: 'mysql://x' })).toThrow(/DATABASE_READ_URL: must be a postgres/);
});

test('the API opened a second pool on the replica URL', () => {
  expect(api.app.readPool).not.toBe(api.app.pool);
});

test('reads come from the replica, on the compiled fast path and on the Apollo path', async () => {
  const fast = await api.data(`{ post(id: "${POST1}") { title } user(id: "${ALICE}") { fullName } }`);
  expect(fast).toEqual({ post: { title: 'REPLICA: Getting Started with FraiseQL' }, user: { fullName: 'REPLICA: Alice Johnson' } });

  // @include on a variable is left to Apollo Server (the fast path does not compile it).
  const apollo = await api.data(`query($all: Boolean!) { posts(limit: 5) @include(if: $all) { title } }`, { all: true });
  expect(apollo.posts.length).toBe(3);
  for (const p of apollo.posts as { title: string }[]) expect(p.title).toMatch(/^REPLICA: /);

  // The primary's documents are unchanged: the replica answered.
  const { rows } = await primary.query(`SELECT data->>'title' AS title FROM tv_post WHERE id = $1`, [POST1]);
  expect(rows[0].title).toBe('Getting Started with FraiseQL');
});

test('a QUEUED write lands in the primary with its sync job; the replica has neither', async () => {
  const created = await api.data(
    `mutation { createPost(title: "Queued on the primary", content: "Body", authorId: "${ALICE}", sync: QUEUED) { id title } }`,
  );
  const id = created.createPost.id as string;
  expect(created.createPost.title).toBe('Queued on the primary');
  const inPrimary = await primary.query(`SELECT 1 FROM tb_post WHERE id = $1`, [id]);
  const inReplica = await replica.query(`SELECT 1 FROM tb_post WHERE id = $1`, [id]);
  expect([inPrimary.rowCount, inReplica.rowCount]).toEqual([1, 0]);
  // Its job, recorded in the sync outbox by the write's transaction (the workers relay it to pg-boss).
  const job = `SELECT count(*)::int AS n FROM sync_outbox WHERE data->'plan'->'post' ? $1`;
  expect((await primary.query(job, [id])).rows[0].n).toBe(1);
  expect((await replica.query(job, [id])).rows[0].n).toBe(0);
});

test('an INLINE mutation answers from the primary; a reader on a replica that lags does not see it yet', async () => {
  // Only the content changes: the title in the answer says which database answered.
  const updated = await api.data(`mutation { updatePost(id: "${POST1}", content: "Edited inline", sync: INLINE) { title content } }`);
  expect(updated.updatePost).toEqual({ title: 'Getting Started with FraiseQL', content: 'Edited inline' });
  const { rows } = await primary.query(`SELECT data->>'content' AS content FROM tv_post WHERE id = $1`, [POST1]);
  expect(rows[0].content).toBe('Edited inline');

  const created = await api.data(
    `mutation { createPost(title: "Inline on the primary", content: "Body", authorId: "${ALICE}", ` +
      'published: true, sync: INLINE) { id title } }',
  );
  const id = created.createPost.id as string;
  expect(created.createPost.title).toBe('Inline on the primary');
  expect((await primary.query(`SELECT 1 FROM tv_post WHERE id = $1`, [id])).rowCount).toBe(1);
  // The read goes to the replica, which never received the write (replication lag, at its worst).
  expect(await api.data(`query($id: ID!) { post(id: $id) { title } }`, { id })).toEqual({ post: null });
});

test('/ready checks the replica too; /metrics counts the primary', async () => {
  const ready = await fetch(`${api.url}/ready`);
  expect(ready.status).toBe(200);
  const metrics = (await (await fetch(`${api.url}/metrics`)).json()) as { entity_counts: { posts: number } };
  const { rows } = await primary.query(`SELECT count(*)::int AS n FROM tb_post`);
  expect(metrics.entity_counts.posts).toBe(rows[0].n);
  const inReplica = (await replica.query(`SELECT count(*)::int AS n FROM tb_post`)).rows[0].n;
  expect(metrics.entity_counts.posts).not.toBe(inReplica);
});

test('/ready answers 503 when the replica does not answer (read replica unavailable)', async () => {
  const other = await startApi({ databaseReadUrl: 'postgres://postgres@127.0.0.1:1/nowhere' });
  try {
    const res = await fetch(`${other.url}/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'unavailable', reason: 'read replica unavailable' });
  } finally {
    await other.close();
  }
});
