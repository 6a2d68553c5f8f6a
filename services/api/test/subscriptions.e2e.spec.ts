import { seed } from '@blog/shared';
import { testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import { startWorkerProcess, stopService, waitFor, type Service } from '../bench/fault-harness';
import { createClient, type Client } from 'graphql-ws';
import { SignJWT } from 'jose';
import type pg from 'pg';
import type { AuthConfig } from '../src/auth/config';
import { ALICE, BOB, POST1, POST2, POST3, startApi, type TestApi } from './support';

/**
 * Subscriptions over WebSocket (graphql-transport-ws), across two API processes and a worker
 * process: a subscriber on one API sees writes made through the other and syncs made by the worker.
 */
let pool: pg.Pool;
let a: TestApi;
let b: TestApi;
let worker: Service | undefined;
const clients: Client[] = [];

beforeAll(async () => {
  pool = testPool(4);
  await seed(pool);
  [a, b] = await Promise.all([startApi(), startApi()]);
  worker = await startWorkerProcess({ DATABASE_URL: testDatabaseUrl(), WORKER_NAME: 'blog-worker-subs', LOG_LEVEL: 'info' });
  await waitFor('both feeds', () => a.app.feed.live && b.app.feed.live, 10_000, 20);
}, 40_000);

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  if (worker) await stopService(worker);
  await Promise.all([a?.close(), b?.close()]);
  await pool?.end();
});

function connect(api: TestApi, connectionParams?: Record<string, unknown>, onClosed?: (code: number, reason: string) => void): Client {
  const client = createClient({
    url: `${api.url.replace(/^http/, 'ws')}/graphql`,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: false,
    ...(connectionParams ? { connectionParams } : {}),
    on: { closed: (e) => onClosed?.((e as CloseEvent).code, (e as CloseEvent).reason) },
  });
  clients.push(client);
  return client;
}

/** A subscription's events as they come, and its end (an error or completion). */
function subscribe(client: Client, query: string) {
  const events: Record<string, unknown>[] = [];
  const errors: unknown[] = [];
  let completed = false;
  const stop = client.subscribe<Record<string, unknown>>(
    { query },
    {
      next: (r) => (r.errors ? errors.push(...r.errors) : events.push(r.data!)),
      error: (e) => errors.push(e),
      complete: () => (completed = true),
    },
  );
  return { events, errors, stop, completed: () => completed };
}

/** A subscription is registered once the server counts it. */
const openOn = (api: TestApi) =>
  api.app.metrics.registry.getSingleMetricAsString('blog_subscriptions_open').then((t) => Number(/\} (\d+)/.exec(t)?.[1] ?? 0));

describe('postChanged and commentAdded across processes', () => {
  test(
    'a subscriber on B gets the post as refreshed by A (INLINE) and by the worker (QUEUED), ' + 'and the comments added to it only',
    async () => {
      const client = connect(b);
      const before = await openOn(b);
      const post = subscribe(client, `subscription { postChanged(id: "${POST1}") { id title commentCount author { username } } }`);
      const comments = subscribe(client, `subscription { commentAdded(postId: "${POST1}") { content author { username } } }`);
      await waitFor('two subscriptions open on B', async () => (await openOn(b)) === before + 2, 10_000, 20);

      await a.gql(`mutation { updatePost(id: "${POST1}", title: "Through A, inline", sync: INLINE) { id } }`);
      await waitFor('the INLINE change', () => post.events.length === 1, 10_000, 20);
      expect(post.events[0]).toEqual({
        postChanged: { id: POST1, title: 'Through A, inline', commentCount: expect.any(Number), author: { username: expect.any(String) } },
      });

      await a.gql(`mutation { updatePost(id: "${POST1}", title: "Through A, queued", sync: QUEUED) { id } }`);
      await waitFor('the change synced by the worker', () => post.events.length === 2, 10_000, 20);
      expect((post.events[1]!.postChanged as { title: string }).title).toBe('Through A, queued');

      await a.gql(`mutation { createComment(postId: "${POST1}", authorId: "${BOB}", content: "First, queued", sync: QUEUED) { id } }`);
      await b.gql(`mutation { createComment(postId: "${POST2}", authorId: "${BOB}", content: "Elsewhere", sync: INLINE) { id } }`);
      await b.gql(`mutation { createComment(postId: "${POST1}", authorId: "${ALICE}", content: "Second, inline", sync: INLINE) { id } }`);
      await waitFor('both comments', () => comments.events.length === 2, 10_000, 20);
      expect(comments.events.map((e) => e.commentAdded).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
        { content: 'First, queued', author: { username: 'bob' } },
        { content: 'Second, inline', author: { username: 'alice' } },
      ]);
      // Once each: nothing more comes. (A comment changes its post's count, merged in at read time,
      // not the post's document: the post is not refreshed, so postChanged does not fire.)
      await new Promise((r) => setTimeout(r, 300));
      expect(comments.events).toHaveLength(2);
      expect(post.events).toHaveLength(2);
      expect(post.errors).toEqual([]);
      post.stop();
      comments.stop();
      await waitFor('the subscriptions closed on B', async () => (await openOn(b)) === before, 10_000, 20);
    },
  );

  test('a change missed while the feed was lost is delivered once it listens again', async () => {
    const client = connect(b);
    const post = subscribe(client, `subscription { postChanged(id: "${POST3}") { title } }`);
    await waitFor('the subscription', async () => (await openOn(b)) >= 1, 10_000, 20);
    await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'blog-api-listen'");
    await waitFor('B noticing the loss', () => !b.app.feed.live, 10_000, 20);
    await pool.query("UPDATE tb_post SET title = 'Missed by the feed' WHERE id = $1", [POST3]);
    await pool.query("UPDATE tv_post SET data = jsonb_set(data, '{title}', '\"Missed by the feed\"') WHERE id = $1", [POST3]);
    await waitFor('the missed change', () => post.events.length === 1, 15_000, 20);
    expect(post.events[0]).toEqual({ postChanged: { title: 'Missed by the feed' } });
    post.stop();
  });

  test('a deleted post ends its subscription; bad ids and other operations are refused', async () => {
    const client = connect(b);
    const { rows } = await pool.query<{ id: string }>(
      "INSERT INTO tb_post (author_id, title, content) VALUES ($1, 'Doomed', 'x') RETURNING id",
      [ALICE],
    );
    const doomed = rows[0]!.id;
    await pool.query('INSERT INTO tb_post_stats (post_id) VALUES ($1)', [doomed]);
    const post = subscribe(client, `subscription { postChanged(id: "${doomed}") { title } }`);
    await waitFor('the subscription', async () => (await openOn(b)) >= 1, 10_000, 20);
    await a.gql(`mutation { deletePost(id: "${doomed}", sync: INLINE) { id } }`);
    await waitFor('the end of the subscription', () => post.completed(), 10_000, 20);

    const bad = subscribe(client, 'subscription { postChanged(id: "not-a-uuid") { title } }');
    const query = subscribe(client, '{ posts { id } }');
    await waitFor('both refused', () => bad.errors.length > 0 && query.errors.length > 0, 10_000, 20);
    expect(JSON.stringify(bad.errors)).toMatch(/id/);
    expect(JSON.stringify(query.errors)).toMatch(/Over WebSocket this API serves subscriptions only/);
  });
});

describe('authentication, limits and shutdown', () => {
  const SECRET = 'a-test-secret-of-at-least-32-characters!!';
  const token = (sub: string) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(SECRET));

  test('AUTH_MODE=jwt: a bad token closes the connection (4403); per-client limits; closing the API ends its subscriptions', async () => {
    const api = await startApi({
      auth: { mode: 'jwt', key: { kind: 'secret', secret: SECRET }, roleClaim: 'role', maxAgeSeconds: 3600 } satisfies AuthConfig,
      maxWsConnectionsPerClient: 2,
      maxSubscriptionsPerClient: 1,
    });
    try {
      const closes: number[] = [];
      connect(api, { Authorization: 'Bearer not.a.token' }, (code) => closes.push(code));
      await waitFor('the bad token refused', () => closes.includes(4403), 10_000, 20);

      const good = connect(api, { Authorization: `Bearer ${await token(ALICE)}` }, (code) => closes.push(code));
      const first = subscribe(good, `subscription { postChanged(id: "${POST2}") { title } }`);
      const second = subscribe(good, `subscription { postChanged(id: "${POST3}") { title } }`);
      await waitFor('the second subscription refused', () => second.errors.length > 0, 10_000, 20);
      expect(JSON.stringify(second.errors)).toMatch(/At most 1 subscriptions per client/);
      connect(api, { Authorization: `Bearer ${await token(ALICE)}` }, (code) => closes.push(code));
      connect(api, { Authorization: `Bearer ${await token(ALICE)}` }, (code) => closes.push(code));
      await waitFor('the third connection of one client refused', () => closes.includes(4429), 10_000, 20);

      await api
        .gql(`mutation { updatePost(id: "${POST2}", title: "Seen before shutdown", sync: INLINE) { id } }`, undefined)
        .catch(() => undefined);
      await api.close();
      await waitFor('the subscription ended by the shutdown', () => closes.includes(1001) || first.completed(), 10_000, 20);
    } finally {
      await api.close();
    }
  });
});
