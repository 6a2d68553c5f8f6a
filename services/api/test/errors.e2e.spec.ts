import http from 'node:http';
import { seed } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { ALICE, POST1, startApi, writeCounts, type TestApi } from './support';

/**
 * Bad requests, each with the code it must get, and nothing written: no row in tb_* changes and
 * no job is enqueued. No response is a 500 and none carries a stack trace.
 */
let pool: pg.Pool;
let api: TestApi;
const MAX_BODY_BYTES = 256 * 1024;
const UNKNOWN = '11111111-2222-4333-8444-555555555555';

beforeAll(async () => {
  pool = testPool();
  await seed(pool);
  api = await startApi({ maxBodyBytes: MAX_BODY_BYTES, maxPageSize: 100, maxQueryDepth: 15 });
});

afterAll(async () => {
  await api?.close();
  await pool?.end();
});

interface Case {
  name: string;
  /** A GraphQL document, or a raw body / request spec for malformed requests. */
  query?: string;
  variables?: Record<string, unknown>;
  raw?: string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  code: string;
  field?: string;
}

const createPost = (args: string) => `mutation { createPost(${args}) { id } }`;
const deep = (n: number) =>
  `{ __schema { types { ${'fields { type { '.repeat(Math.ceil(n / 2))}name${' } }'.repeat(Math.ceil(n / 2))} } } }`;

const cases: Case[] = [
  // bad UUIDs
  {
    name: 'createPost with a malformed authorId',
    query: createPost(`title: "t", content: "c", authorId: "not-a-uuid"`),
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'authorId',
  },
  { name: 'post(id) with a malformed id', query: `{ post(id: "42") { id } }`, status: 200, code: 'BAD_USER_INPUT', field: 'id' },
  {
    name: 'deleteComment with a malformed id',
    query: `mutation { deleteComment(id: "x'; DROP TABLE tb_comment; --") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'id',
  },
  {
    name: 'posts with a malformed authorId filter',
    query: `{ posts(authorId: "alice") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'authorId',
  },
  // unknown ids
  {
    name: 'createPost by an unknown author',
    query: createPost(`title: "t", content: "c", authorId: "${UNKNOWN}"`),
    status: 200,
    code: 'NOT_FOUND',
    field: 'authorId',
  },
  {
    name: 'createComment on an unknown post',
    query: `mutation { createComment(postId: "${UNKNOWN}", authorId: "${ALICE}", content: "hi") { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'postId',
  },
  {
    name: 'createComment by an unknown author',
    query: `mutation { createComment(postId: "${POST1}", authorId: "${UNKNOWN}", content: "hi") { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'authorId',
  },
  // the same with INLINE: the refresh and the COMMIT were sent behind the failing insert
  {
    name: 'createPost INLINE by an unknown author',
    query: createPost(`title: "t", content: "c", authorId: "${UNKNOWN}", sync: INLINE`),
    status: 200,
    code: 'NOT_FOUND',
    field: 'authorId',
  },
  {
    name: 'createComment INLINE on an unknown post',
    query: `mutation { createComment(postId: "${UNKNOWN}", authorId: "${ALICE}", content: "hi", sync: INLINE) { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'postId',
  },
  {
    name: 'createComment INLINE by an unknown author',
    query: `mutation { createComment(postId: "${POST1}", authorId: "${UNKNOWN}", content: "hi", sync: INLINE) { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'authorId',
  },
  {
    name: 'updatePost of an unknown post',
    query: `mutation { updatePost(id: "${UNKNOWN}", title: "t") { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'id',
  },
  {
    name: 'publishPost of an unknown post',
    query: `mutation { publishPost(id: "${UNKNOWN}") { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'id',
  },
  {
    name: 'deletePost of an unknown post',
    query: `mutation { deletePost(id: "${UNKNOWN}") { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'id',
  },
  {
    name: 'deleteComment of an unknown comment',
    query: `mutation { deleteComment(id: "${UNKNOWN}") { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'id',
  },
  {
    name: 'updateUser of an unknown user',
    query: `mutation { updateUser(id: "${UNKNOWN}", fullName: "X") { id } }`,
    status: 200,
    code: 'NOT_FOUND',
    field: 'id',
  },
  // empty and oversized strings
  {
    name: 'createPost with an empty title',
    query: createPost(`title: "", content: "c", authorId: "${ALICE}"`),
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'title',
  },
  {
    name: 'createPost with a blank title',
    query: createPost(`title: " \\t\\n ", content: "c", authorId: "${ALICE}"`),
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'title',
  },
  {
    name: 'createPost with a 301-character title',
    query: createPost(`title: "${'t'.repeat(301)}", content: "c", authorId: "${ALICE}"`),
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'title',
  },
  {
    name: 'createPost with 100,001 characters of content',
    query: `mutation($c: String!) { createPost(title: "t", content: $c, authorId: "${ALICE}") { id } }`,
    variables: { c: 'x'.repeat(60_000) + 'é'.repeat(40_001) },
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'content',
  },
  {
    name: 'createComment with empty content',
    query: `mutation { createComment(postId: "${POST1}", authorId: "${ALICE}", content: "") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'content',
  },
  {
    name: 'createComment with a NUL character',
    query: `mutation { createComment(postId: "${POST1}", authorId: "${ALICE}", content: "a\\u0000b") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'content',
  },
  {
    name: 'createUser with a 101-character full name',
    query: `mutation { createUser(email: "z@example.com", username: "zed", fullName: "${'z'.repeat(101)}") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'fullName',
  },
  {
    name: 'createUser with a malformed email',
    query: `mutation { createUser(email: "not an email", username: "zed", fullName: "Zed") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'email',
  },
  {
    name: 'createUser with a two-letter username',
    query: `mutation { createUser(email: "z@example.com", username: "zz", fullName: "Zed") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'username',
  },
  {
    name: 'updatePost with nothing to change',
    query: `mutation { updatePost(id: "${POST1}") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
  },
  {
    name: 'updateUser with a null username',
    query: `mutation { updateUser(id: "${ALICE}", username: null) { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'username',
  },
  // taken usernames and emails (case-insensitive)
  {
    name: 'createUser with a taken username, other case',
    query: `mutation { createUser(email: "new@example.com", username: "ALICE", fullName: "Alice Two") { id } }`,
    status: 200,
    code: 'CONFLICT',
    field: 'username',
  },
  {
    name: 'createUser with a taken email, other case',
    query: `mutation { createUser(email: "Bob@Example.com", username: "bobby", fullName: "Bob Two") { id } }`,
    status: 200,
    code: 'CONFLICT',
    field: 'email',
  },
  {
    name: 'updateUser taking another user’s username',
    query: `mutation { updateUser(id: "${ALICE}", username: "bob") { id } }`,
    status: 200,
    code: 'CONFLICT',
    field: 'username',
  },
  // limits and cursors
  {
    name: 'posts with a limit above the maximum',
    query: `{ posts(limit: 101) { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'limit',
  },
  { name: 'posts with a limit of zero', query: `{ posts(limit: 0) { id } }`, status: 200, code: 'BAD_USER_INPUT', field: 'limit' },
  {
    name: 'posts with a forged cursor',
    query: `{ posts(after: "bm90IGEgY3Vyc29y") { id } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'after',
  },
  {
    name: 'syncMetrics of an unknown entity type',
    query: `{ syncMetrics(entityType: "nothing") { totalSyncs24h } }`,
    status: 200,
    code: 'BAD_USER_INPUT',
    field: 'entityType',
  },
  // wrong types
  {
    name: 'a number where a String is expected',
    query: createPost(`title: 123, content: "c", authorId: "${ALICE}"`),
    status: 400,
    code: 'GRAPHQL_VALIDATION_FAILED',
  },
  {
    name: 'a string variable for a Boolean',
    query: `mutation($p: Boolean) { createPost(title: "t", content: "c", authorId: "${ALICE}", published: $p) { id } }`,
    variables: { p: 'yes' },
    status: 400,
    code: 'BAD_USER_INPUT',
  },
  { name: 'a float limit', query: `{ posts(limit: 2.5) { id } }`, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  {
    name: 'an unknown sync mode',
    query: createPost(`title: "t", content: "c", authorId: "${ALICE}", sync: NOW`),
    status: 400,
    code: 'GRAPHQL_VALIDATION_FAILED',
  },
  { name: 'an unknown field', query: `{ posts { id secret } }`, status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  // malformed requests
  { name: 'a GraphQL syntax error', query: `{ posts { id `, status: 400, code: 'GRAPHQL_PARSE_FAILED' },
  { name: 'a body that is not JSON', raw: '{"query": "{ posts { id } }"', status: 400, code: 'BAD_REQUEST' },
  { name: 'a body without a query', body: { variables: {} }, status: 400, code: 'BAD_REQUEST' },
  { name: 'a query that is not a string', body: { query: 42 }, status: 400, code: 'BAD_REQUEST' },
  { name: 'a batch (arrays are not accepted)', body: [{ query: '{ posts { id } }' }], status: 400, code: 'BAD_REQUEST' },
  {
    name: 'a text/plain POST (CSRF-style)',
    raw: '{"query":"{ posts { id } }"}',
    headers: { 'content-type': 'text/plain' },
    status: 415,
    code: 'BAD_REQUEST',
  },
  // limits
  { name: 'a query deeper than MAX_QUERY_DEPTH', query: deep(20), status: 400, code: 'GRAPHQL_VALIDATION_FAILED' },
  {
    name: 'a body larger than MAX_BODY_BYTES',
    body: { query: `mutation { createPost(title: "t", content: "${'x'.repeat(MAX_BODY_BYTES)}", authorId: "${ALICE}") { id } }` },
    status: 413,
    code: 'PAYLOAD_TOO_LARGE',
  },
];

test.each(cases)('$name: $status $code, nothing written', async (c) => {
  const before = await writeCounts(pool);
  const res =
    c.raw !== undefined
      ? await api.raw(c.raw, c.headers)
      : c.body !== undefined
        ? await api.post(c.body, c.headers)
        : await api.gql(c.query!, c.variables);
  expect({ status: res.status, code: res.json.errors?.[0]?.extensions?.code }).toEqual({ status: c.status, code: c.code });
  if (c.field) expect(res.json.errors?.[0]?.extensions?.field).toBe(c.field);
  expect(res.text).not.toMatch(/stack|at .+\.(ts|js):\d+/i);
  expect(res.headers.get('x-process-time')).toMatch(/^\d+\.\d{3}ms$/);
  expect(await writeCounts(pool)).toEqual(before);
});

test('a rejected argument on one root field leaves the other fields answered', async () => {
  const res = await api.gql(`{ bad: post(id: "nope") { id } good: post(id: "${POST1}") { id } }`);
  expect(res.status).toBe(200);
  expect(res.json.data).toEqual({ bad: null, good: { id: POST1 } });
  expect(res.json.errors).toEqual([expect.objectContaining({ path: ['bad'], extensions: { code: 'BAD_USER_INPUT', field: 'id' } })]);
});

test('an unknown id in a lookup is null, not an error', async () => {
  const res = await api.gql(`{ post(id: "${UNKNOWN}") { id } user(id: "${UNKNOWN}") { id } }`);
  expect(res.json).toEqual({ data: { post: null, user: null } });
});

test('a chunked body (no Content-Length) is cut off at MAX_BODY_BYTES with a 413, and nothing is written', async () => {
  const before = await writeCounts(pool);
  const { port } = new URL(api.url);
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port: Number(port), path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.write(`{"query":"mutation { createPost(title: \\"t\\", authorId: \\"${ALICE}\\", content: \\"`);
    const chunk = 'x'.repeat(16 * 1024);
    let sent = 0;
    const pump = () => {
      // Keep sending until the server answers (it must not wait for the end of the body).
      while (sent < MAX_BODY_BYTES * 4 && req.write(chunk)) sent += chunk.length;
      if (sent < MAX_BODY_BYTES * 4) req.once('drain', pump);
    };
    pump();
  });
  expect(status).toBe(413);
  expect(await writeCounts(pool)).toEqual(before);
});

describe('every invalid argument of a mutation is reported, each naming its argument, and nothing is written', () => {
  // Each mutation with its bad arguments, and the fields the errors must name (in argument order).
  const mutations: { name: string; query: string; variables?: Record<string, unknown>; fields: string[] }[] = [
    {
      name: 'createPost, two bad arguments',
      query: createPost(`title: "   ", content: "c", authorId: "not-a-uuid"`),
      fields: ['title', 'authorId'],
    },
    {
      name: 'createPost, three bad arguments',
      query: createPost(`title: "   ", content: "", authorId: "not-a-uuid"`),
      fields: ['title', 'content', 'authorId'],
    },
    {
      name: 'createUser, two bad arguments',
      query: `mutation { createUser(email: "not-an-email", username: "ok_name", fullName: "") { id } }`,
      fields: ['email', 'fullName'],
    },
    {
      name: 'createUser, three bad arguments (from variables)',
      query: `mutation ($e: String!, $u: String!, $f: String!) { createUser(email: $e, username: $u, fullName: $f) { id } }`,
      variables: { e: 'no-at-sign', u: 'x', f: '\u200b' },
      fields: ['email', 'username', 'fullName'],
    },
    {
      name: 'updatePost, three bad arguments',
      query: `mutation { updatePost(id: "nope", title: "", content: null) { id } }`,
      fields: ['id', 'title', 'content'],
    },
    {
      name: 'createComment, two bad arguments',
      query: `mutation { createComment(postId: "nope", authorId: "${ALICE}", content: " ") { id } }`,
      fields: ['postId', 'content'],
    },
  ];

  // As sent (direct mutation path), and with `extensions: {}` (Apollo Server's path).
  for (const [path, extra] of [
    ['direct', {}],
    ['Apollo', { extensions: {} }],
  ] as const) {
    test.each(mutations)(`$name (${path} path)`, async ({ query, variables, fields }) => {
      const before = await writeCounts(pool);
      const res = await api.gql(query, variables, extra);
      expect(res.status).toBe(200);
      expect(res.json.data ?? null).toBeNull();
      expect(res.json.errors?.map((e) => e.extensions)).toEqual(fields.map((field) => ({ code: 'BAD_USER_INPUT', field })));
      for (const e of res.json.errors ?? []) expect(e.message).toContain(e.extensions!.field);
      expect(await writeCounts(pool)).toEqual(before);
    });
  }
});
