import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { startApi, writeCounts, type TestApi } from './support';

/**
 * A mutation whose connection is killed before it commits (in a create's one statement, or in an
 * update's transaction after its UPDATE) answers SERVICE_UNAVAILABLE with HTTP 503 and leaves neither rows nor jobs; the API
 * carries on (the dead connection is discarded, the next mutation succeeds).
 *
 * How: another session holds a lock on a table the mutation writes (sync_outbox for a QUEUED create,
 * tv_comment for an INLINE one: both are one statement; tv_post for an INLINE update, whose
 * transaction has updated its row by then), so the mutation waits there; that backend is then
 * terminated (pg_terminate_backend), as a server restart or a network cut would.
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
  post = (
    await api.data(`mutation { createPost(title: "Hello", content: "x", authorId: "${alice}", published: true, sync: INLINE) { id } }`)
  ).createPost.id;
});

afterAll(async () => {
  await api?.close();
  await pool?.end();
});

/**
 * The API's backend waiting for a lock on `relation` (or one of its partitions, if it is
 * partitioned), once it is. Found through pg_locks (the lock
 * it waits for), not through pg_stat_activity's query text, which can still show the statement
 * before while the next one waits at its Parse.
 */
async function blockedApiBackend(relation: string): Promise<{ pid: number }> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await pool.query<{ pid: number }>(
      `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE NOT l.granted
          AND l.relation IN (SELECT $1::regclass UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)
          AND a.datname = current_database() AND a.application_name = 'blog-api'`,
      [relation],
    );
    if (rows[0]) return rows[0];
    if (Date.now() > deadline) throw new Error(`the mutation never waited for its lock on ${relation}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cases = [
  {
    name: 'QUEUED createPost, killed while waiting to write its outbox row (its one statement)',
    lock: 'sync_outbox',
    syncFailures: 0,
    adds: 1,
    mutation: () =>
      `mutation { createPost(title: "Killed midway", content: "x", authorId: "${alice}", published: true, sync: QUEUED) { id } }`,
  },
  {
    name: 'INLINE createComment, killed while waiting to write its projection (its one statement)',
    lock: 'tv_comment',
    // A create's one statement failed: the command's failure, not a sync's.
    syncFailures: 0,
    adds: 1,
    mutation: () => `mutation { createComment(postId: "${post}", authorId: "${bob}", content: "Killed midway", sync: INLINE) { id } }`,
  },
  {
    name: 'INLINE updatePost, killed while refreshing the projections (its tb_post row updated)',
    lock: 'tv_post',
    // The refresh failed (its connection killed under it): recorded as a sync failure, on a connection of its own.
    syncFailures: 1,
    adds: 0,
    mutation: () => `mutation { updatePost(id: "${post}", title: "Renamed midway", sync: INLINE) { id } }`,
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
    try {
      const blocked = await Promise.race([
        blockedApiBackend(c.lock),
        pending.then((r) => Promise.reject(new Error(`the mutation answered instead of blocking: ${r.text}`))),
      ]);
      const { rows } = await locker.query<{ killed: boolean }>('SELECT pg_terminate_backend($1) AS killed', [blocked.pid]);
      expect(rows[0]!.killed).toBe(true);
    } finally {
      await locker.query('ROLLBACK');
    }
    // Settled before anything else runs (a failure above must not leave it writing into the next case).
    answer = await pending;
  } finally {
    locker.release();
  }
  expect(answer.status).toBe(503);
  expect(answer.json.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
  expect(answer.text).not.toMatch(/terminat|at .*\.js|pg_|tb_/i); // no database message, no stack trace
  expect(await writeCounts(pool)).toEqual({ ...before, sync_failures: before.sync_failures! + c.syncFailures });

  // The API is fine: the same mutation now succeeds, and writes its row (and its job, if QUEUED).
  const again = await api.gql(c.mutation());
  expect(again.status).toBe(200);
  expect(again.json.errors).toBeUndefined();
  const after = await writeCounts(pool);
  expect(after.tb_post! + after.tb_comment!).toBe(before.tb_post! + before.tb_comment! + c.adds);
});
