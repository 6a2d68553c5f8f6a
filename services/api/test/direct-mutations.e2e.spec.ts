import { ALICE, POST1, seededApi, startApi, writeCounts, type GqlResponse, type TestApi } from './support';

/**
 * Mutations run by DirectMutations (graphql-js straight from the endpoint) answer exactly as Apollo
 * Server does. The same request is sent twice: as it is (the direct path) and with an `extensions`
 * member, which the endpoint leaves to Express and Apollo. Status, headers and body must match.
 */
const seeded = seededApi();

/** How many operations each path ran, from the API's own Prometheus histogram. */
async function operationsByPath(api: TestApi): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const v of (await api.app.metrics.graphqlDuration.get()).values) {
    if (v.metricName?.endsWith('_count')) counts[String(v.labels.path)] = (counts[String(v.labels.path)] ?? 0) + v.value;
  }
  return counts;
}

const UUIDS = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** What must be equal: the body with generated ids masked, and the headers a client acts on. */
function comparable(res: GqlResponse): unknown {
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    cacheControl: res.headers.get('cache-control'),
    retryAfter: res.headers.get('retry-after'),
    body: res.text.replace(UUIDS, '<uuid>'),
  };
}

async function bothPaths(api: TestApi, body: Record<string, unknown>): Promise<{ direct: GqlResponse; apollo: GqlResponse }> {
  const before = await operationsByPath(api);
  const direct = await api.post(body);
  const apollo = await api.post({ ...body, extensions: {} });
  const after = await operationsByPath(api);
  // One operation on each path (a request whose variables do not coerce goes to Apollo twice).
  const directRan = (after.direct ?? 0) - (before.direct ?? 0);
  const apolloRan = (after.apollo ?? 0) - (before.apollo ?? 0);
  expect([directRan, apolloRan]).toEqual(direct.status === 400 ? [0, 2] : [1, 1]);
  return { direct, apollo };
}

const createPost = (title: string, author = ALICE) =>
  `createPost(title: ${JSON.stringify(title)}, content: "Body", authorId: "${author}", published: true, sync: INLINE)`;

const cases: { name: string; body: Record<string, unknown>; status: number; codes?: string[] }[] = [
  { name: 'a create', body: { query: `mutation { ${createPost('Same')} { id title published author { username } } }` }, status: 200 },
  {
    name: 'variables, a fragment and __typename',
    body: {
      query:
        `mutation Make($t: String!) { p: ${createPost('x').replace('"x"', '$t')} { ...P __typename } } ` +
        'fragment P on Post { title commentCount }',
      variables: { t: 'From a variable' },
    },
    status: 200,
  },
  {
    name: 'the operation named among several',
    body: { query: `query Q { posts(limit: 1) { id } } mutation M { ${createPost('Named')} { title } }`, operationName: 'M' },
    status: 200,
  },
  { name: 'a blank title', body: { query: `mutation { ${createPost('  ')} { id } }` }, status: 200, codes: ['BAD_USER_INPUT'] },
  {
    name: 'an unknown author',
    body: { query: `mutation { ${createPost('Orphan', '00000000-0000-0000-0000-0000000000ff')} { id } }` },
    status: 200,
    codes: ['NOT_FOUND'],
  },
  {
    name: 'a taken username',
    body: { query: `mutation { createUser(email: "other@example.com", username: "alice", fullName: "Not Alice") { id } }` },
    status: 200,
    codes: ['CONFLICT'],
  },
  {
    name: 'a malformed id (refused by validation: Apollo answers both)',
    body: { query: `mutation { deletePost(id: "nope") }` },
    status: 400,
    codes: ['GRAPHQL_VALIDATION_FAILED'],
  },
  {
    name: 'two writes, the second refused',
    body: { query: `mutation { a: ${createPost('First of two')} { title } b: updatePost(id: "${POST1}", title: "") { id } }` },
    status: 200,
    codes: ['BAD_USER_INPUT'],
  },
  {
    name: 'variables that do not coerce (Apollo answers both)',
    body: { query: `mutation($t: String!) { ${createPost('x').replace('"x"', '$t')} { id } }`, variables: { t: 7 } },
    status: 400,
    codes: ['BAD_USER_INPUT'],
  },
];

test.each(cases)('$name: the same answer on both paths', async ({ body, status, codes }) => {
  const { direct, apollo } = await bothPaths(seeded.api, body);
  expect(direct.status).toBe(status);
  expect((direct.json.errors ?? []).map((e) => e.extensions?.code)).toEqual(codes ?? []);
  expect(comparable(direct)).toEqual(comparable(apollo));
});

test('the answer keeps Apollo’s shape: errors before data, locations and path, a final newline', async () => {
  const res = await seeded.api.post({ query: `mutation {\n  ${createPost('')} { id }\n}` });
  expect(res.text).toBe(
    '{"errors":[{"message":"title must not be blank.","locations":[{"line":2,"column":3}],"path":["createPost"],' +
      '"extensions":{"code":"BAD_USER_INPUT","field":"title"}}],"data":null}\n',
  );
});

test('a rejected direct mutation leaves nothing written', async () => {
  const before = await writeCounts(seeded.pool);
  const res = await seeded.api.post({ query: `mutation { ${createPost('Orphan', '00000000-0000-0000-0000-0000000000ee')} { id } }` });
  expect(res.json.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  expect(await writeCounts(seeded.pool)).toEqual(before);
});

describe('with a rate limit', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startApi({ rateLimitMutationsPerMinute: 2 });
  });
  afterAll(async () => {
    await api.close();
  });

  test('both paths take from one bucket and refuse alike: 429, Retry-After, RATE_LIMITED', async () => {
    const write = (title: string) => ({ query: `mutation { ${createPost(title)} { title } }` });
    expect((await api.post(write('Limited 1'))).status).toBe(200); // direct
    expect((await api.post({ ...write('Limited 2'), extensions: {} })).status).toBe(200); // Apollo
    const { direct, apollo } = await bothPaths(api, write('Limited 3'));
    expect(direct.status).toBe(429);
    expect(direct.json.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(Number(direct.headers.get('retry-after'))).toBeGreaterThan(0);
    // The wait is computed from the clock at each request: compare all but its figure.
    const figureless = (r: GqlResponse) => {
      const c = comparable(r) as { retryAfter: string | null; body: string };
      return { ...c, retryAfter: c.retryAfter?.replace(/\d+/, '#'), body: c.body.replace(/\d+/g, '#') };
    };
    expect(figureless(direct)).toEqual(figureless(apollo));
  });
});
