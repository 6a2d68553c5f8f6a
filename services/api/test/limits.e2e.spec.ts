import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { SEED_OPERATIONS } from '@blog/shared';
import { LOG_LEVELS, recordingLogger } from '@blog/shared/test/helpers';
import { getIntrospectionQuery } from 'graphql';
import { buildList } from '../src/cli/persisted-operations';
import { loadConfig } from '../src/env';
import { sha256 } from '../src/limits/persisted';
import { ALICE, POST1, readPathOf, seededApis, startApi, writeCounts, type TestApi } from './support';

/**
 * Abuse limits over HTTP: the cost limit, the mutation rate limit, persisted operations and the
 * production defaults (introspection and the IDE off), each on the compiled read path and on
 * Apollo Server's.
 */
const seeded = seededApis();
const api = seeded.api;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blog-limits-'));

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A GET request (GraphQL over GET is Apollo's alone; the IDE page and its assets). */
const GET = (a: TestApi, pathname: string, headers: Record<string, string> = {}) => fetch(`${a.url}${pathname}`, { headers });

describe('cost limit', () => {
  let a: TestApi;
  beforeAll(async () => {
    a = await api({ maxQueryCost: 500, defaultPageSize: 20, maxPageSize: 100 });
  });

  test(
    'the seed GetRecentPosts (cost 1,236) passes a limit of 2,000; ' + 'at limit 10 (2,471) it is refused with the cost and the limit',
    async () => {
      const b = await api({ maxQueryCost: 2000, defaultPageSize: 20, maxPageSize: 100 });
      expect((await b.gql(SEED_OPERATIONS.GetRecentPosts)).json.errors).toBeUndefined();
      const res = await b.gql(SEED_OPERATIONS.GetRecentPosts.replace('limit: 5', 'limit: 10'));
      expect(res.status).toBe(400);
      // Per post: id, title, author { username fullName }, commentCount, comments (20 × (content 10 + author { username })).
      expect(res.json.errors).toEqual([
        expect.objectContaining({
          message: expect.stringContaining('costs 2471; the cost limit is 2000'),
          extensions: expect.objectContaining({
            code: 'QUERY_TOO_COMPLEX',
            cost: 1 + 10 * (1 + 1 + 3 + 1 + 1 + 20 * (10 + 2)),
            limit: 2000,
          }),
        }),
      ]);
    },
  );

  test(
    'a text field costs 1 per 1,000 characters it can hold: ' +
      "nine aliases of 100 posts' content (up to 100,000 characters each) are refused",
    async () => {
      const def = await api({});
      const aliases = Array.from({ length: 9 }, (_, i) => `c${i}: content`).join(' ');
      const res = await def.gql(`{ posts(limit: 100, published: true) { ${aliases} } }`);
      expect(res.status).toBe(400);
      expect(res.json.errors?.[0]?.extensions).toEqual(
        expect.objectContaining({ code: 'QUERY_TOO_COMPLEX', cost: 1 + 100 * 9 * 100, limit: 25_000 }),
      );
      // Short text fields still cost 1: a hundred titles are cheap.
      expect((await def.gql(`{ posts(limit: 100) { title } }`)).json.errors).toBeUndefined();
    },
  );

  test('a variable limit counts as MAX_PAGE_SIZE, an omitted one as DEFAULT_PAGE_SIZE', async () => {
    // posts { id }: 1 + items × 1.
    const withVariable = await a.gql(`query($n: Int) { posts(limit: $n) { id title author { username } comments { id } } }`, { n: 1 });
    expect(withVariable.json.errors?.[0]?.extensions).toEqual(
      expect.objectContaining({ code: 'QUERY_TOO_COMPLEX', cost: 1 + 100 * (1 + 1 + 2 + 21) }),
    );
    const omitted = await a.gql(`{ posts { id title author { username } } }`);
    expect(omitted.json.errors).toBeUndefined();
  });

  test('refused identically whichever path would have run it: a read (compiled path) and a mutation (Apollo)', async () => {
    const read = await a.gql(`{ ${Array.from({ length: 501 }, (_, i) => `a${i}: __typename`).join(' ')} }`);
    const write = await a.gql(
      `mutation { ${Array.from(
        { length: 20 },
        (_, i) => `p${i}: createPost(title: "t", content: "c", authorId: "${ALICE}") { id comments { id content } }`,
      ).join(' ')} }`,
    );
    for (const res of [read, write]) {
      expect(res.status).toBe(400);
      expect(res.json.errors?.[0]?.extensions?.code).toBe('QUERY_TOO_COMPLEX');
    }
    expect(read.json.errors?.[0]?.extensions).toEqual(expect.objectContaining({ cost: 501, limit: 500 }));
  });

  test("GraphiQL's introspection query is counted exactly (1,980) and passes the default limit", async () => {
    const small = await a.gql(getIntrospectionQuery());
    expect(small.json.errors?.[0]?.message).toMatch(/costs more than 500/);
    const def = await api({});
    const res = await def.gql(getIntrospectionQuery());
    expect(res.json.errors).toBeUndefined();
    expect((res.json.data as { __schema: { types: unknown[] } }).__schema.types.length).toBeGreaterThan(10);
  });
});

describe('mutation rate limit', () => {
  let a: TestApi;
  beforeAll(async () => {
    a = await api({ rateLimitMutationsPerMinute: 3, trustProxy: 1 });
  });
  const createUser = (n: string) => `mutation { createUser(email: "${n}@example.com", username: "${n}", fullName: "${n}") { id } }`;
  const as = (ip: string) => ({ 'x-forwarded-for': ip });

  test(
    'a client gets its limit, then 429 RATE_LIMITED with Retry-After, nothing written; ' + 'another client and reads are unaffected',
    async () => {
      for (let i = 0; i < 3; i++) {
        const ok = await a.post({ query: createUser(`rl_a${i}`) }, as('203.0.113.1'));
        expect(ok.json.errors).toBeUndefined();
      }
      const before = await writeCounts(seeded.pool);
      const limited = await a.post({ query: createUser('rl_a3') }, as('203.0.113.1'));
      expect(limited.status).toBe(429);
      // A token every 20 s: the next one is at most 20 s away.
      const wait = Number(limited.headers.get('retry-after'));
      expect(wait).toBeGreaterThanOrEqual(15);
      expect(wait).toBeLessThanOrEqual(20);
      expect(limited.json.errors?.[0]?.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: wait });
      expect(limited.json.errors?.[0]?.message).toMatch(/Too many mutations/);
      expect(limited.json.data ?? null).toBeNull();
      expect(await writeCounts(seeded.pool)).toEqual(before);

      // Another client (another address behind the same proxy) still writes.
      const other = await a.post({ query: createUser('rl_b0') }, as('203.0.113.2'));
      expect(other.status).toBe(200);
      expect(other.json.errors).toBeUndefined();
      // Reads of the limited client: the compiled path and Apollo's.
      const read = await a.post({ query: `{ post(id: "${POST1}") { id } }` }, as('203.0.113.1'));
      expect(read.json).toEqual({ data: { post: { id: POST1 } } });
      const apolloRead = await a.post(
        { query: `query($s: Boolean!) { post(id: "${POST1}") { id title @include(if: $s) } }`, variables: { s: false } },
        as('203.0.113.1'),
      );
      expect(apolloRead.json).toEqual({ data: { post: { id: POST1 } } });
    },
  );

  test('each root field of a mutation takes a token: a document of more writes than the bucket holds is refused whole', async () => {
    const before = await writeCounts(seeded.pool);
    const res = await a.post(
      {
        query: `mutation { ${[0, 1, 2, 3]
          .map((i) => `u${i}: createUser(email: "rl_c${i}@example.com", username: "rl_c${i}", fullName: "C") { id }`)
          .join(' ')} }`,
      },
      as('203.0.113.3'),
    );
    expect(res.status).toBe(429);
    expect(res.json.errors?.[0]?.message).toBe('Too many mutations: this operation makes 4 writes and the limit is 3 a minute; split it.');
    expect(await writeCounts(seeded.pool)).toEqual(before);
    // Three fit.
    const three = await a.post(
      {
        query: `mutation { ${[0, 1, 2]
          .map((i) => `u${i}: createUser(email: "rl_c${i}@example.com", username: "rl_c${i}", fullName: "C") { id }`)
          .join(' ')} }`,
      },
      as('203.0.113.3'),
    );
    expect(three.json.errors).toBeUndefined();
    expect((await writeCounts(seeded.pool)).tb_user).toBe(before.tb_user! + 3);
  });

  test('X-Forwarded-For entries left of the trusted proxy do not change the client', async () => {
    // The proxy (our peer) appends what it saw; the client may prepend anything: the key stays the last hop.
    const spoof = await a.post({ query: createUser('rl_d0') }, { 'x-forwarded-for': '198.51.100.9, 203.0.113.1' });
    expect(spoof.status).toBe(429);
  });

  test('without TRUST_PROXY the header is ignored: clients are told apart by their address', async () => {
    const b = await api({ rateLimitMutationsPerMinute: 1 });
    expect((await b.post({ query: createUser('rl_e0') }, as('203.0.113.50'))).status).toBe(200);
    // A different X-Forwarded-For from the same socket address: the same client.
    const again = await b.post({ query: createUser('rl_e1') }, as('203.0.113.51'));
    expect(again.status).toBe(429);
    expect(Number(again.headers.get('retry-after'))).toBeGreaterThanOrEqual(55);
  });

  test('0 turns the limit off', async () => {
    const c = await api({ rateLimitMutationsPerMinute: 0 });
    for (let i = 0; i < 5; i++) expect((await c.gql(createUser(`rl_f${i}`))).json.errors).toBeUndefined();
  });
});

describe('persisted operations', () => {
  const list = buildList(Object.entries(SEED_OPERATIONS).map(([name, document]) => ({ name, document })));
  const file = path.join(dir, 'persisted.json');
  const recent = sha256(SEED_OPERATIONS.GetRecentPosts);
  const addComment = sha256(SEED_OPERATIONS.AddComment);
  const unknown = sha256('{ posts { id } }');
  const byHash = (hash: string, variables?: Record<string, unknown>) => ({
    extensions: { persistedQuery: { version: 1, sha256Hash: hash } },
    ...(variables ? { variables } : {}),
  });
  let statements: string[] = [];
  let allow: TestApi;
  let only: TestApi;
  let off: TestApi;
  const logs = recordingLogger();

  beforeAll(async () => {
    fs.writeFileSync(file, JSON.stringify(list));
    allow = await api({ persistedOperations: 'allow', persistedOperationsFile: file }, { logger: logs.logger });
    only = await api(
      { persistedOperations: 'only', persistedOperationsFile: file },
      { onQuery: (text) => statements.push(text), logger: logs.logger },
    );
    off = await api({ persistedOperations: 'off' }, { logger: logs.logger });
  });

  test('the list maps the sha256 of each seed document to it', () => {
    expect(list[recent]).toBe(SEED_OPERATIONS.GetRecentPosts);
    expect(Object.keys(list)).toHaveLength(Object.keys(SEED_OPERATIONS).length);
  });

  test('allow: a read by hash is answered by the compiled path (one statement), a mutation by hash by Apollo', async () => {
    const full = await allow.gql(SEED_OPERATIONS.GetRecentPosts);
    const hashed = await allow.post(byHash(recent));
    expect(hashed.status).toBe(200);
    expect(hashed.text).toBe(full.text);
    const write = await allow.post(byHash(addComment));
    expect(write.json.errors).toBeUndefined();
    expect((write.json.data as { createComment: { content: string } }).createComment.content).toBe('Great post!');
  });

  test(
    'allow: full documents not in the list are accepted; ' + 'an unknown hash is PERSISTED_QUERY_NOT_FOUND; nothing is registered',
    async () => {
      expect((await allow.gql('{ posts(limit: 1) { id } }')).json.errors).toBeUndefined();
      const miss = await allow.post(byHash(unknown));
      expect(miss.json.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
      // APQ registration (hash + document) does not add to the list.
      await allow.post({ query: '{ posts { id } }', ...byHash(unknown) });
      expect((await allow.post(byHash(unknown))).json.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
    },
  );

  test(
    'only: listed documents run, by hash or in full; ' +
      'anything else is OPERATION_NOT_ALLOWED (403) before it is compiled, nothing written',
    async () => {
      statements = [];
      const hashed = await only.post(byHash(recent));
      expect(hashed.status).toBe(200);
      expect(statements.filter((s) => readPathOf(s) === 'fast')).toHaveLength(1);
      expect((await only.gql(SEED_OPERATIONS.GetUser)).json.errors).toBeUndefined();
      const before = await writeCounts(seeded.pool);
      statements = [];
      for (const query of ['{ posts(limit: 1) { id } }', `mutation { deletePost(id: "${POST1}") { id } }`, SEED_OPERATIONS.GetUser + ' ']) {
        const res = await only.gql(query);
        expect({ status: res.status, code: res.json.errors?.[0]?.extensions?.code }).toEqual({
          status: 403,
          code: 'OPERATION_NOT_ALLOWED',
        });
      }
      expect(statements).toEqual([]);
      expect((await only.post(byHash(unknown))).json.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_NOT_FOUND');
      expect(await writeCounts(seeded.pool)).toEqual(before);
    },
  );

  test('only: GraphQL over GET (Apollo only) is held to the list as well', async () => {
    const listed = await GET(only, `/graphql?query=${encodeURIComponent(SEED_OPERATIONS.GetUser)}`, { 'apollo-require-preflight': 'true' });
    expect(listed.status).toBe(200);
    const other = await GET(only, `/graphql?query=${encodeURIComponent('{ users { id } }')}`, { 'apollo-require-preflight': 'true' });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
      'OPERATION_NOT_ALLOWED',
    );
    const byGet = await GET(only, `/graphql?extensions=${encodeURIComponent(JSON.stringify(byHash(recent).extensions))}`, {
      'apollo-require-preflight': 'true',
    });
    expect(byGet.status).toBe(200);
  });

  test(
    'a hash that is not the sha256 of the query sent with it: 400 BAD_REQUEST saying so, ' +
      'off, allow and only alike, POST and GET, nothing logged as an error',
    async () => {
      const mismatched = { query: SEED_OPERATIONS.GetUser, ...byHash(unknown) };
      const errorsBefore = logs.lines.filter((l) => l.level >= LOG_LEVELS.error).length;
      for (const [mode, a] of [
        ['off', off],
        ['allow', allow],
        ['only', only],
      ] as const) {
        const posted = await a.post(mismatched);
        expect({ mode, status: posted.status, errors: posted.json.errors }).toEqual({
          mode,
          status: 400,
          errors: [{ message: 'provided sha does not match query', extensions: { code: 'BAD_REQUEST' } }],
        });
        const params = new URLSearchParams({ query: mismatched.query, extensions: JSON.stringify(mismatched.extensions) });
        const got = await GET(a, `/graphql?${params}`, { 'apollo-require-preflight': 'true' });
        expect({
          mode,
          status: got.status,
          code: ((await got.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code,
        }).toEqual({
          mode,
          status: 400,
          code: 'BAD_REQUEST',
        });
      }
      expect(logs.lines.filter((l) => l.level >= LOG_LEVELS.error).length).toBe(errorsBefore);
    },
  );

  test('a list file whose hash does not match its document stops the start, naming it', async () => {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, JSON.stringify({ [unknown]: '{ users { id } }' }));
    await expect(startApi({ persistedOperations: 'only', persistedOperationsFile: bad })).rejects.toThrow(
      /is not the sha256 of its document/,
    );
  });
});

describe('production mode: introspection and the IDE', () => {
  const browser = { accept: 'text/html' };

  test('introspection refused on both paths with INTROSPECTION_DISABLED; __typename still answers; the IDE is not served', async () => {
    const a = await api({ introspection: false, ide: false });
    for (const query of [
      getIntrospectionQuery(),
      '{ __type(name: "Post") { name } }',
      `{ posts(limit: 1) { id } __schema { queryType { name } } }`,
    ]) {
      const res = await a.gql(query);
      expect({ status: res.status, code: res.json.errors?.[0]?.extensions?.code }).toEqual({ status: 400, code: 'INTROSPECTION_DISABLED' });
    }
    // Over GET (Apollo only) as well.
    const overGet = await GET(a, `/graphql?query=${encodeURIComponent('{ __schema { types { name } } }')}`, {
      'apollo-require-preflight': 'true',
    });
    expect(overGet.status).toBe(400);
    expect(await a.gql('{ __typename }')).toEqual(expect.objectContaining({ json: { data: { __typename: 'Query' } } }));
    expect((await a.gql(`{ posts(limit: 1) { __typename id } }`)).json.errors).toBeUndefined();
    const page = await GET(a, '/graphql', browser);
    expect(page.status).toBe(404);
    expect((await GET(a, '/ide/graphiql.js')).status).toBe(404);
  });

  test(
    'with introspection off, errors suggest no names ("Did you mean"), ' +
      'for reads and mutations, fields, arguments, enum values and variables',
    async () => {
      const off = await api({ introspection: false, ide: false });
      const on = await api({});
      // Each document with the name a suggestion would reveal.
      const misspelled: [string, string, Record<string, unknown>?][] = [
        ['{ posts(limit: 1) { titl } }', 'title'],
        ['{ posts(limt: 1) { id } }', 'limit'],
        ['query ($n: Int) { postz(limit: $n) { id } }', 'posts', { n: 1 }],
        [`mutation { createPost(title: "t", content: "c", authorI: "${ALICE}") { id } }`, 'authorId'],
        [`mutation { createPost(title: "t", content: "c", authorId: "${ALICE}") { titl } }`, 'title'],
        [`mutation { publishPost(id: "${POST1}", sync: INLIN) { id } }`, 'INLINE'],
        [`mutation ($s: SyncMode) { publishPost(id: "${POST1}", sync: $s) { id } }`, 'INLINE', { s: 'INLIN' }],
      ];
      const before = await writeCounts(seeded.pool);
      for (const [query, name, variables] of misspelled) {
        const shown = await on.gql(query, variables);
        expect({ query, message: shown.json.errors?.[0]?.message }).toEqual({ query, message: expect.stringContaining(`Did you mean`) });
        expect(shown.json.errors?.[0]?.message).toContain(`"${name}"`);
        const hidden = await off.gql(query, variables);
        expect({ query, status: hidden.status, errors: hidden.json.errors?.length }).toEqual({ query, status: 400, errors: 1 });
        expect({ query, message: hidden.json.errors![0]!.message }).toEqual({
          query,
          message: expect.not.stringContaining('Did you mean'),
        });
        expect(hidden.json.errors![0]!.message).not.toContain(`"${name}"`);
      }
      expect(await writeCounts(seeded.pool)).toEqual(before);
    },
  );

  test('development defaults: both on', async () => {
    const a = await api({});
    expect((await a.gql('{ __schema { queryType { name } } }')).json).toEqual({ data: { __schema: { queryType: { name: 'Query' } } } });
    const page = await GET(a, '/graphql', browser);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('GraphiQL');
  });

  test('in-process config matches what NODE_ENV=production and the overrides give', async () => {
    const url = 'postgres://u@h/db';
    expect(loadConfig({ DATABASE_URL: url, NODE_ENV: 'production' })).toMatchObject({ introspection: false, ide: false });
    expect(loadConfig({ DATABASE_URL: url, NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true', GRAPHQL_IDE: '1' })).toMatchObject({
      introspection: true,
      ide: true,
    });
    // Enabled by override, production or not: the page and introspection are back.
    const enabled = loadConfig({ DATABASE_URL: url, NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true', GRAPHQL_IDE: 'true' });
    const a = await api({ introspection: enabled.introspection, ide: enabled.ide });
    expect((await GET(a, '/graphql', browser)).status).toBe(200);
    expect((await a.gql('{ __type(name: "Post") { name } }')).json).toEqual({ data: { __type: { name: 'Post' } } });
  });
});

test('a mutation over a keep-alive connection is limited like any other (no per-connection state)', async () => {
  const a = await api({ rateLimitMutationsPerMinute: 1 });
  const agent = new http.Agent({ keepAlive: true });
  const send = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(`${a.url}/graphql`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  const q = (n: string) =>
    JSON.stringify({ query: `mutation { createUser(email: "${n}@example.com", username: "${n}", fullName: "K") { id } }` });
  expect(await send(q('ka_0'))).toBe(200);
  expect(await send(q('ka_1'))).toBe(429);
  agent.destroy();
});
