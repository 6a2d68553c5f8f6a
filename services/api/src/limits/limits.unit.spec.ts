/**
 * @jest-environment-options {"database": false}
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SEED_OPERATIONS } from '@blog/shared';
import { parse, type OperationDefinitionNode } from 'graphql';
import { buildList, graphqlFiles, main } from '../cli/persisted-operations';
import { persistedList, PersistedOperations, sha256 } from './persisted';
import { clientKey, mutationCost, MutationRateLimiter, rateLimitPlugin } from './rate-limit';

describe('MutationRateLimiter', () => {
  test('a full bucket of perMinute tokens, refilled continuously; the wait is until enough are back', () => {
    let now = 0;
    const limiter = new MutationRateLimiter(60, () => now); // one token a second
    for (let i = 0; i < 60; i++) expect(limiter.take('a', 1)).toBe(0);
    expect(limiter.take('a', 1)).toBe(1);
    now += 500;
    expect(limiter.take('a', 1)).toBe(1); // half a token: still a second at most
    now += 500;
    expect(limiter.take('a', 1)).toBe(0);
    expect(limiter.take('a', 5)).toBe(5);
    expect(limiter.take('b', 60)).toBe(0); // clients are independent
  });

  test('more than a minute at once waits for a full bucket; idle buckets are swept when there are too many clients', () => {
    let now = 0;
    const limiter = new MutationRateLimiter(10, () => now, 2);
    expect(limiter.take('a', 11)).toBe(60); // can never pass: a minute, and the message says to split it
    limiter.take('a', 10);
    limiter.take('b', 1);
    now += 60_000; // both refilled: swept when a third client arrives
    expect(limiter.take('c', 1)).toBe(0);
    expect(limiter.take('a', 10)).toBe(0);
  });
});

describe('clientKey', () => {
  const req = (remoteAddress: string, xff?: string) =>
    ({ socket: { remoteAddress }, headers: xff ? { 'x-forwarded-for': xff } : {} }) as never;
  test('the subject wins; else the peer address; X-Forwarded-For only through trusted proxies, counted from the right', () => {
    expect(clientKey(req('10.0.0.1', '1.1.1.1'), 1, 'user-7')).toBe('sub:user-7');
    expect(clientKey(req('10.0.0.1', '1.1.1.1'), 0)).toBe('ip:10.0.0.1');
    expect(clientKey(req('10.0.0.1', '1.1.1.1'), 1)).toBe('ip:1.1.1.1');
    expect(clientKey(req('10.0.0.1', 'spoofed, 1.1.1.1'), 1)).toBe('ip:1.1.1.1');
    expect(clientKey(req('10.0.0.2', 'spoofed, 1.1.1.1, 10.0.0.1'), 2)).toBe('ip:1.1.1.1');
    // Fewer entries than trusted proxies: the leftmost there is.
    expect(clientKey(req('10.0.0.1'), 3)).toBe('ip:10.0.0.1');
  });
});

test('mutationCost: one per root field, fragments expanded, __typename free', () => {
  const doc = parse(
    'mutation { a: publishPost(id: "x") { id } ...F __typename ... on Mutation { c: deletePost(id: "y") { id } } } ' +
      'fragment F on Mutation { b: publishPost(id: "z") { id } }',
  );
  const op = doc.definitions[0] as OperationDefinitionNode;
  const fragments = { F: doc.definitions[1] as never };
  expect(mutationCost(op, fragments)).toBe(3);
});

describe('persisted operations', () => {
  const list = persistedList({ [sha256(SEED_OPERATIONS.GetUser)]: SEED_OPERATIONS.GetUser });
  const hash = sha256(SEED_OPERATIONS.GetUser);

  test('list files are checked: object, hex keys, matching hashes', () => {
    expect(() => persistedList([])).toThrow(/must be a JSON object/);
    expect(() => persistedList({ ABC: '{ a }' })).toThrow(/"ABC" is not a lowercase sha256/);
    expect(() => persistedList({ [hash]: 'query Other { posts { id } }' })).toThrow(/is not the sha256 of its document/);
  });

  test('resolve: hash to document (other extensions kept), unknown hash, only-mode refusal, off leaves bodies alone', () => {
    const allow = new PersistedOperations('allow', list);
    const only = new PersistedOperations('only', list);
    const off = new PersistedOperations('off', list);
    const byHash = (h: string, more: object = {}) => ({
      operationName: 'GetUser',
      extensions: { persistedQuery: { version: 1, sha256Hash: h }, ...more },
    });
    expect(allow.resolve(byHash(hash))).toEqual({ body: { operationName: 'GetUser', query: SEED_OPERATIONS.GetUser } });
    expect(allow.resolve(byHash(hash, { trace: true }))).toEqual({
      body: { operationName: 'GetUser', query: SEED_OPERATIONS.GetUser, extensions: { trace: true } },
    });
    expect(allow.resolve(byHash('0'.repeat(64)))).toMatchObject({ status: 200, code: 'PERSISTED_QUERY_NOT_FOUND' });
    expect(allow.resolve({ query: '{ posts { id } }' })).toEqual({ body: { query: '{ posts { id } }' } });
    expect(only.resolve({ query: '{ posts { id } }' })).toMatchObject({ status: 403, code: 'OPERATION_NOT_ALLOWED' });
    expect(only.resolve({ query: SEED_OPERATIONS.GetUser })).toEqual({ body: { query: SEED_OPERATIONS.GetUser } });
    const untouched = byHash('0'.repeat(64));
    expect(off.resolve(untouched)).toEqual({ body: untouched });
  });
});

describe('the persisted-operations command', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'blog-ops-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('writes the seed documents and a folder of .graphql files; refuses a document the schema does not accept', async () => {
    fs.mkdirSync(path.join(dir, 'ops', 'nested'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'ops', 'a.graphql'), 'query A { posts(limit: 2) { id } }');
    fs.writeFileSync(path.join(dir, 'ops', 'nested', 'b.gql'), 'query B($id: ID!) { post(id: $id) { title } }');
    fs.writeFileSync(path.join(dir, 'ops', 'notes.txt'), 'not a document');
    expect(graphqlFiles(path.join(dir, 'ops')).map((f) => path.basename(f))).toEqual(['a.graphql', 'b.gql']);
    const out = path.join(dir, 'list.json');
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    expect(await main(['--seed', path.join(dir, 'ops'), '--out', out])).toBe(0);
    stderr.mockRestore();
    const written = JSON.parse(fs.readFileSync(out, 'utf8')) as Record<string, string>;
    expect(Object.keys(written)).toHaveLength(Object.keys(SEED_OPERATIONS).length + 2);
    expect(written[sha256('query A { posts(limit: 2) { id } }')]).toBe('query A { posts(limit: 2) { id } }');
    expect(persistedList(written).size).toBe(Object.keys(written).length);
    expect(() => buildList([{ name: 'bad.graphql', document: '{ posts { secret } }' }])).toThrow(
      /bad.graphql: Cannot query field "secret"/,
    );
    await expect(main([])).rejects.toThrow(/Usage/);
  });
});

test(
  'rateLimitPlugin: an authenticated subject is its own client whatever its address; ' + 'a failed verification counts as its address',
  async () => {
    const limiter = new MutationRateLimiter(1);
    const subjects: Record<string, string | Error | undefined> = { alice: 'u-alice', bad: new Error('invalid token') };
    const plugin = rateLimitPlugin<{ clientKey?: string; token?: string }>(limiter, {
      subjectOf: async (c) => {
        const s = c.token ? subjects[c.token] : undefined;
        if (s instanceof Error) throw s;
        return s;
      },
    });
    const document = parse('mutation { publishPost(id: "x") { id } }');
    const run = async (contextValue: { clientKey?: string; token?: string }) => {
      const hooks = await plugin.requestDidStart!({} as never);
      try {
        await hooks!.didResolveOperation!({ operation: document.definitions[0], document, contextValue } as never);
        return 'ok';
      } catch (err) {
        return (err as { extensions: { code: string } }).extensions.code;
      }
    };
    expect(await run({ clientKey: 'ip:1.1.1.1', token: 'alice' })).toBe('ok');
    expect(await run({ clientKey: 'ip:2.2.2.2', token: 'alice' })).toBe('RATE_LIMITED'); // same subject, other address
    expect(await run({ clientKey: 'ip:1.1.1.1' })).toBe('ok'); // the address itself is another client
    expect(await run({ clientKey: 'ip:1.1.1.1', token: 'bad' })).toBe('RATE_LIMITED'); // falls back to the address
    expect(await run({ clientKey: 'ip:3.3.3.3', token: 'bad' })).toBe('ok');
  },
);
