import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { startApi, writeCounts, type TestApi } from './support';

/**
 * A mutation whose connection is killed in the middle of its transaction (after its INSERT, before
 * its COMMIT) answers SERVICE_UNAVAILABLE with HTTP 503 and leaves neither rows nor jobs; the API
 * carries on (the dead connection is discarded, the next mutation succeeds).
 *
 * How: another session holds a lock on the table the mutation writes after its INSERT (pgboss.job
 * for QUEUED: the enqueue; tv_comment for INLINE: the projection refresh), so the mutation waits
 * there with its row inserted; that backend is then terminated (pg_terminate_backend), as a server
 * restart or a network cut would.
 */
let api: TestApi;
let pool: pg.Pool;
let alice: string;
let bob: string;
let post: string;

beforeAll(async () => {
  pool = testPool();
  api = await startApi();
  const users = await api.data(`mutation {
    a: createUser(email: "alice@example.com", username: "alice", fullName: "Alice", sync: INLINE) { id }
    b: createUser(email: "bob@example.com", username: "bob", fullName: "Bob", sync: INLINE) { id }
  }`);
  alice = users.a.id;
  bob = users.b.id;
  post = (await api.data(`mutation { createPost(title: "Hello", content: "x", authorId: "${alice}", published: true, sync: INLINE) { id } }`))
    .createPost.id;
});

afterAll(async () => {
  await api?.close();
  await pool?.end();
});

/** The API's backend blocked on a lock, once it is. */
async function blockedApiBackend(): Promise<{ pid: number; query: string }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await pool.query<{ pid: number; query: string }>(
      `SELECT pid, query FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'blog-api' AND wait_event_type = 'Lock'`,
    );
    if (rows[0]) return rows[0];
    if (Date.now() > deadline) throw new Error('the mutation never blocked on the lock');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cases = [
  {
    name: 'QUEUED createPost, killed while enqueueing (its tb_post row inserted)',
    lock: 'pgboss.job',
    mutation: () => `mutation { createPost(title: "Killed midway", content: "x", authorId: "${alice}", published: true, sync: QUEUED) { id } }`,
    blockedOn: /pgboss/i,
  },
  {
    name: 'INLINE createComment, killed while refreshing the projections (its tb_comment row inserted)',
    lock: 'tv_comment',
    mutation: () => `mutation { createComment(postId: "${post}", authorId: "${bob}", content: "Killed midway", sync: INLINE) { id } }`,
    blockedOn: /tv_comment/i,
  },
];

test.each(cases)('$name: 503 SERVICE_UNAVAILABLE, no row, no job, and the API carries on', async (c) => {
  const before = await writeCounts(pool);
  const locker = await pool.connect();
  let answer: Awaited<ReturnType<TestApi['gql']>>;
  try {
    await locker.query('BEGIN');
    await locker.query(`LOCK TABLE ${c.lock} IN EXCLUSIVE MODE`);
    const pending = api.gql(c.mutation());
    // (If the mutation answered instead of blocking, say what it answered.)
    const blocked = await Promise.race([
      blockedApiBackend(),
      pending.then((r) => Promise.reject(new Error(`the mutation answered instead of blocking: ${r.text}`))),
    ]);
    expect(blocked.query).toMatch(c.blockedOn);
    const { rows } = await locker.query<{ killed: boolean }>('SELECT pg_terminate_backend($1) AS killed', [blocked.pid]);
    expect(rows[0]!.killed).toBe(true);
    answer = await pending;
  } finally {
    await locker.query('ROLLBACK');
    locker.release();
  }
  expect(answer.status).toBe(503);
  expect(answer.json.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
  expect(answer.text).not.toMatch(/terminat|at .*\.js|pg_|tb_/i); // no database message, no stack trace
  expect(await writeCounts(pool)).toEqual(before);

  // The API is fine: the same mutation now succeeds, and writes its row (and its job, if QUEUED).
  const again = await api.gql(c.mutation());
  expect(again.status).toBe(200);
  expect(again.json.errors).toBeUndefined();
  const after = await writeCounts(pool);
  expect(after.posts! + after.comments!).toBe(before.posts! + before.comments! + 1);
});
