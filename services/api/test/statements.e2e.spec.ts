import { MODEL, seed } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { ALICE, POST1, readPathOf, SEED_OPERATIONS, startApi, type TestApi } from './support';

/**
 * Every read is ONE SQL statement per GraphQL request, whatever the nesting, and never touches
 * tb_*. The API's pool reports every statement any of its connections sends (createApp's onQuery),
 * so Apollo's path is counted as much as the fast path.
 */
let pool: pg.Pool;
let api: TestApi;
let statements: string[] = [];

beforeAll(async () => {
  pool = testPool();
  await seed(pool);
  api = await startApi({}, (text) => statements.push(text));
});

afterAll(async () => {
  await api?.close();
  await pool?.end();
});

interface ReadCase {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  /** Statements expected: 1, or 0 for introspection alone. */
  count?: number;
  /** Which path answers: the compiled fast path (default) or Apollo Server. */
  path?: 'fast' | 'apollo';
}

const reads: ReadCase[] = [
  { name: 'GetRecentPosts (seed)', query: SEED_OPERATIONS.GetRecentPosts },
  { name: 'GetUser (seed)', query: SEED_OPERATIONS.GetUser },
  { name: 'SyncMetrics (seed)', query: SEED_OPERATIONS.SyncMetrics },
  {
    name: 'every root field at once, nested as deep as the schema goes',
    query: `query All($p: ID!, $u: ID!) {
      posts(limit: 3, published: true) { id title author { id username } comments { id author { username fullName } } }
      post(id: $p) { title comments { content author { username } } }
      users(limit: 2) { username postCount }
      user(id: $u) { username commentCount }
      comments(postId: $p) { content post { id title } author { username } }
      syncMetrics(entityType: "user") { totalSyncs24h successRate }
    }`,
    variables: { p: POST1, u: ALICE },
  },
  {
    name: 'aliases, fragments, inline fragments and __typename',
    query: `query { __typename
      recent: posts(limit: 2) { ...P  t: title ... on Post { commentCount __typename } }
      first: post(id: "${POST1}") { ...P author { ... on Author { __typename username } } }
    }
    fragment P on Post { id comments { c: content author { u: username } } }`,
  },
  {
    name: 'pages after a cursor, filtered by author',
    query: `query($a: ID) { posts(limit: 1, authorId: $a) { id cursor } }`,
    variables: { a: ALICE },
  },
  {
    name: '@include on a variable (Apollo path)',
    query: `query($x: Boolean!) { posts { id title @include(if: $x) comments { id } } users { id } }`,
    variables: { x: false },
    path: 'apollo',
  },
  {
    name: 'introspection next to data (Apollo path)',
    query: `{ __type(name: "Post") { name fields { name } } posts(limit: 1) { id } }`,
    path: 'apollo',
  },
  {
    name: 'a bad argument next to a good field (Apollo path)',
    query: `{ a: post(id: "bad") { id } b: posts(limit: 1) { id } }`,
    path: 'apollo',
  },
  {
    name: '51 keys in one object (json_build_object takes 50; Apollo path)',
    query: `{ posts(limit: 2) { ${Array.from({ length: 51 }, (_, i) => `k${i}: title`).join(' ')} } }`,
    path: 'apollo',
  },
  { name: 'introspection alone needs no statement', query: `{ __schema { queryType { name } } }`, count: 0, path: 'apollo' },
];

/** The tables reads may touch besides tv_* and sync_log: the kept counts, which the commands keep for reads. */
const KEPT_COUNTS = new Set(MODEL.flatMap((e) => (e.keptCounts ? [e.keptCounts.table] : [])));

test.each(reads)('$name: one statement, on tv_* (and kept counts) only', async ({ query, variables, count = 1, path = 'fast' }) => {
  statements = [];
  const res = await api.gql(query, variables);
  expect(res.status).toBe(200);
  expect(res.json.data).toBeTruthy();
  expect(statements).toHaveLength(count);
  for (const text of statements) {
    expect([...text.matchAll(/\btb_\w+/g)].map((m) => m[0]).filter((t) => !KEPT_COUNTS.has(t))).toEqual([]);
    expect(text).toMatch(/\b(tv_(user|post|comment)|sync_log)\b/);
    expect(readPathOf(text)).toBe(path);
  }
});

test('a cursor from one page gives the next page', async () => {
  const q = `query($after: String) { posts(limit: 2, after: $after) { id cursor } }`;
  const page1 = (await api.data(q)).posts as { id: string; cursor: string }[];
  const page2 = (await api.data(q, { after: page1[1]!.cursor })).posts as { id: string }[];
  const all = (await api.data(`{ posts(limit: 4) { id } }`)).posts as { id: string }[];
  expect([...page1, ...page2].map((p) => p.id)).toEqual(all.map((p) => p.id));
});

/**
 * The fast path and Apollo's path answer the same document identically. A request carrying
 * `extensions` always goes to Apollo (the fast path leaves them alone), so it serves as the
 * reference.
 */
test.each(reads.filter((r) => (r.count ?? 1) === 1))(
  '$name: same answer from the fast path and from Apollo',
  async ({ query, variables }) => {
    const fast = await api.gql(query, variables);
    const apollo = await api.gql(query, variables, { extensions: {} });
    expect(apollo.status).toBe(fast.status);
    expect(fast.json).toEqual(apollo.json);
    // Same key order too (GraphQL's order is the selection order).
    expect(JSON.stringify(fast.json)).toBe(JSON.stringify(apollo.json));
  },
);

test('a mutation is not a read: an INLINE create is one statement, an INLINE update its own transaction', async () => {
  statements = [];
  await api.data(`mutation { createComment(postId: "${POST1}", authorId: "${ALICE}", content: "counted", sync: INLINE) { id } }`);
  // The row, its event, its projection and the count changes in one statement, answered with the
  // document it wrote: no transaction around it, no read-back of tv_*.
  const writes = statements.filter((s) => /INSERT INTO tb_comment/.test(s));
  expect(writes).toHaveLength(1);
  expect(writes[0]).toMatch(/INSERT INTO tv_comment/);
  expect(statements.filter((s) => /^(BEGIN|COMMIT)/.test(s))).toEqual([]);
  expect(statements.filter((s) => /SELECT data FROM tv_/.test(s))).toEqual([]);

  statements = [];
  await api.data(`mutation { updatePost(id: "${POST1}", title: "counted", sync: INLINE) { id } }`);
  // BEGIN with generic plans for the transaction, one message (withTransaction).
  expect(statements[0]).toBe('BEGIN; SET LOCAL plan_cache_mode = force_generic_plan');
  expect(statements.at(-1)).toBe('COMMIT');
  // INLINE answers with the document its refresh wrote: no read-back of tv_*.
  expect(statements.filter((s) => /SELECT data FROM tv_/.test(s))).toEqual([]);
  expect(statements.some((s) => s.includes('AS answer'))).toBe(true);
});
