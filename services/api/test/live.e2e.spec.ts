import { seed, type ChangeMessage } from '@blog/shared';
import { testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import { startWorkerProcess, stopService, waitFor, type Service } from '../bench/fault-harness';
import type pg from 'pg';
import { ALICE, POST1, POST2, POST3, startApi, type TestApi } from './support';

/**
 * The change feed, the response cache and sync tokens, with two API processes (in this process,
 * each with its own pools and feed connections) and a worker process on one database.
 */
let pool: pg.Pool;
let a: TestApi;
let b: TestApi;
let worker: Service | undefined;

beforeAll(async () => {
  pool = testPool(4);
  await seed(pool);
  [a, b] = await Promise.all([startApi(), startApi()]);
  worker = await startWorkerProcess({ DATABASE_URL: testDatabaseUrl(), WORKER_NAME: 'blog-worker-live', LOG_LEVEL: 'info' });
  await waitFor('both feeds', () => a.app.feed.live && b.app.feed.live, 10_000, 20);
}, 30_000);

afterAll(async () => {
  if (worker) await stopService(worker);
  await Promise.all([a?.close(), b?.close()]);
  await pool?.end();
});

const titleOf = async (api: TestApi, id: string, headers: Record<string, string> = {}) => {
  const res = await api.post<{ post: { title: string } }>({ query: `{ post(id: "${id}") { title } }` }, headers);
  return res;
};

describe('sync tokens', () => {
  test('a read with the token of a QUEUED write on one process sees it on the other, 100 times out of 100', async () => {
    let seen = 0;
    for (let i = 0; i < 100; i++) {
      // The other process has the old answer in its cache.
      expect((await titleOf(b, POST1)).status).toBe(200);
      const written = await a.gql<{ updatePost: { title: string } }>(
        `mutation { updatePost(id: "${POST1}", title: "Queued ${i}", sync: QUEUED) { title } }`,
      );
      const token = written.json.extensions!.syncToken!;
      expect(token).toMatch(/^st1\./);
      const read = await titleOf(b, POST1, { 'X-Sync-Token': token });
      expect(read.status).toBe(200);
      if (read.json.data?.post.title === `Queued ${i}`) seen += 1;
    }
    expect(seen).toBe(100);
    const metrics = await (await fetch(`${b.url}/metrics/prometheus`)).text();
    expect(metrics).toMatch(/blog_sync_token_wait_seconds_count\{[^}]*outcome="synced"[^}]*\} 100/);
  }, 60_000);

  test('writes the relay merged into one job: each token waits for that job, and reads its write', async () => {
    // No worker while the writes are made, so one relay finds them all in the outbox.
    await stopService(worker!);
    worker = undefined;
    const written: { id: string; token: string }[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await a.gql<{ createPost: { id: string } }>(
        `mutation { createPost(title: "Merged ${i}", content: "c", authorId: "${ALICE}", sync: QUEUED) { id } }`,
      );
      written.push({ id: res.json.data!.createPost.id, token: res.json.extensions!.syncToken! });
    }
    expect((await titleOf(b, written[0]!.id)).json).toEqual({ data: { post: null } });
    // The reads wait while a worker process starts, which can take seconds on a loaded machine: an
    // API that waits longer than the default SYNC_WAIT_TIMEOUT_MS (5 s) for a token.
    const patient = await startApi({ syncWaitTimeoutMs: 30_000 });
    try {
      const reads = written.map((w) => titleOf(patient, w.id, { 'X-Sync-Token': w.token }));
      worker = await startWorkerProcess({ DATABASE_URL: testDatabaseUrl(), WORKER_NAME: 'blog-worker-live', LOG_LEVEL: 'info' });
      const answers = await Promise.all(reads);
      expect(answers.map((r) => r.json)).toEqual(written.map((_, i) => ({ data: { post: { title: `Merged ${i}` } } })));
    } finally {
      await patient.close();
    }
    const merged = await pool.query<{ writes: number }>(
      `SELECT jsonb_array_length(data->'writes') AS writes FROM pgboss.job
        WHERE name = 'projection-sync' AND data->'writes' @> jsonb_build_array(jsonb_build_object('id', $1::text))`,
      [Buffer.from(written[0]!.token.slice('st1.'.length), 'base64url').toString('utf8')],
    );
    expect(merged.rows).toEqual([{ writes: 20 }]);
  }, 60_000);

  test('past SYNC_WAIT_TIMEOUT_MS: SYNC_TIMEOUT and no data; a token this API did not issue: 400', async () => {
    const impatient = await startApi({ syncWaitTimeoutMs: 300 });
    try {
      // DEFERRED: its job waits DEFER_SECONDS (30 s) before any worker may take it.
      const written = await a.gql(`mutation { updatePost(id: "${POST3}", title: "Deferred", sync: DEFERRED) { title } }`);
      const token = written.json.extensions!.syncToken!;
      const started = Date.now();
      const read = await titleOf(impatient, POST3, { 'X-Sync-Token': token });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(read.status).toBe(504);
      expect(read.json).toEqual({
        errors: [
          { message: expect.stringMatching(/not projected within \d+ ms \(SYNC_WAIT_TIMEOUT_MS\)/), extensions: { code: 'SYNC_TIMEOUT' } },
        ],
      });
      for (const bad of ['nonsense', 'st1.bm90LWEtdXVpZA']) {
        const res = await titleOf(impatient, POST3, { 'X-Sync-Token': bad });
        expect(res.status).toBe(400);
        expect(res.json.errors?.[0]?.message).toMatch(/^X-Sync-Token: /);
      }
      // An INLINE write's token is satisfied at once.
      const inline = await a.gql(`mutation { updatePost(id: "${POST3}", title: "Inline", sync: INLINE) { title } }`);
      const now = await titleOf(impatient, POST3, { 'X-Sync-Token': inline.json.extensions!.syncToken! });
      expect(now.json).toEqual({ data: { post: { title: 'Inline' } } });
    } finally {
      await impatient.close();
    }
  });
});

describe('the response cache under concurrent writes', () => {
  test('once a write has committed and its message has arrived, no process answers an older version', async () => {
    const WRITES = 150;
    const answeredAt: number[] = []; // by version: when the test had the mutation's answer
    const toldAt = new Map<TestApi, number[]>([
      [a, []],
      [b, []],
    ]);
    // A message of A's publisher sent after version n's answer tells of n (its sends are in order).
    for (const api of [a, b]) {
      api.app.feed.onChange((m: ChangeMessage) => {
        const ids = m.changes.post;
        if (!ids || (ids !== '*' && !ids.includes(POST2))) return;
        const told = toldAt.get(api)!;
        for (let n = told.length; n < answeredAt.length && answeredAt[n]! <= m.at; n++) told.push(Date.now());
      });
    }
    const reads: { api: TestApi; started: number; version: number }[] = [];
    let writing = true;
    const reader = async (api: TestApi) => {
      while (writing) {
        const started = Date.now();
        const res = await titleOf(api, POST2);
        const m = /^v(\d+)$/.exec(res.json.data?.post.title ?? '');
        reads.push({ api, started, version: m ? Number(m[1]) : -1 });
      }
    };
    const hitsBefore = a.app.reads.responseCacheStats()!.hits + b.app.reads.responseCacheStats()!.hits;
    const readers = [reader(a), reader(a), reader(b), reader(b)];
    for (let n = 0; n < WRITES; n++) {
      const res = await a.gql(`mutation { updatePost(id: "${POST2}", title: "v${n}", sync: INLINE) { title } }`);
      expect(res.status).toBe(200);
      answeredAt[n] = Date.now();
      await new Promise((r) => setTimeout(r, n % 3));
    }
    writing = false;
    await Promise.all(readers);

    const violations = reads.filter((r) => {
      const told = toldAt.get(r.api)!;
      let must = -1;
      for (let n = 0; n < told.length; n++) if (told[n]! < r.started) must = n;
      // On A, what it wrote itself is applied to its cache before it answers.
      if (r.api === a) for (let n = 0; n < answeredAt.length; n++) if (answeredAt[n]! < r.started) must = Math.max(must, n);
      return r.version < must;
    });
    expect(violations).toEqual([]);
    expect(reads.length).toBeGreaterThan(WRITES);
    expect(toldAt.get(b)!.length).toBeGreaterThan(WRITES - 5);
    const hits = a.app.reads.responseCacheStats()!.hits + b.app.reads.responseCacheStats()!.hits - hitsBefore;
    expect(hits).toBeGreaterThan(0);
    // Quiet again: both answer the last version.
    await waitFor('the last version on B', async () => (await titleOf(b, POST2)).json.data?.post.title === `v${WRITES - 1}`, 5000, 20);
  }, 60_000);
});

describe('the response cache', () => {
  test('answers a hit with the same bytes as the read that stored it, non-ASCII text included', async () => {
    const title = 'Café, naïve 日本語 ✓';
    await b.gql(`mutation { updatePost(id: "${POST1}", title: ${JSON.stringify(title)}, sync: INLINE) { title } }`);
    await waitFor('B current', async () => (await titleOf(b, POST1)).json.data?.post.title === title, 10_000, 20);
    // A miss (its statement stores the answer), then the same read until it is a hit.
    let miss = await titleOf(b, POST1);
    let hit = miss;
    await waitFor(
      'a cached answer on B',
      async () => {
        const hits = b.app.reads.responseCacheStats()!.hits;
        miss = hit;
        hit = await titleOf(b, POST1);
        return b.app.reads.responseCacheStats()!.hits === hits + 1;
      },
      10_000,
      20,
    );
    expect(hit.json.data?.post.title).toBe(title);
    expect(hit.text).toBe(miss.text);
    expect(Number(hit.headers.get('content-length'))).toBe(Buffer.byteLength(hit.text));
    expect(hit.headers.get('content-type')).toBe(miss.headers.get('content-type'));
  }, 30_000);
});

describe('a feed that was lost', () => {
  test('after its connection is killed, what was cached is dropped: no stale answer afterwards', async () => {
    await b.gql(`mutation { updatePost(id: "${POST3}", title: "Before the loss", sync: INLINE) { title } }`);
    await waitFor('B current', async () => (await titleOf(b, POST3)).json.data?.post.title === 'Before the loss', 10_000, 20);
    // Answered from B's cache (once the messages of earlier tests have all arrived).
    await waitFor(
      'a cached answer on B',
      async () => {
        const hits = b.app.reads.responseCacheStats()!.hits;
        const title = (await titleOf(b, POST3)).json.data?.post.title;
        return title === 'Before the loss' && b.app.reads.responseCacheStats()!.hits === hits + 1;
      },
      10_000,
      20,
    );

    // Every listener's connection killed (a network cut, a restarted server), and a write while
    // nobody listens: its message is lost for good.
    await pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'blog-api-listen'");
    await waitFor('B noticing the loss', () => !b.app.feed.live, 10_000, 20);
    await pool.query("UPDATE tb_post SET title = 'Written while the feed was down' WHERE id = $1", [POST3]);
    await pool.query("UPDATE tv_post SET data = jsonb_set(data, '{title}', '\"Written while the feed was down\"') WHERE id = $1", [POST3]);
    // Not live: reads go to the database.
    expect((await titleOf(b, POST3)).json.data?.post.title).toBe('Written while the feed was down');
    await waitFor('B listening again', () => b.app.feed.live, 10_000, 20);
    expect((await titleOf(b, POST3)).json.data?.post.title).toBe('Written while the feed was down');
    expect((await titleOf(a, POST3)).json.data?.post.title).toBe('Written while the feed was down');
  }, 30_000);
});
