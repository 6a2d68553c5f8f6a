import { insertPosts } from '@blog/shared/test/factory';
import { ALICE, BOB, POST1, SEED_OPERATIONS, seededApis, type GqlResponse } from './support';

/**
 * What one client's reads can cost the service (issue: "Defects found by trying the product as a
 * new user and an attacker would"): answers are capped in bytes, heavy reads cannot take the pool
 * from cheap reads and writes, one client cannot hold every heavy turn.
 *
 * The data: 100 published posts of 100,000 characters U+0001 each, stored as one byte each and
 * written as six (`\u0001`) in JSON: every post's content is 600 KB of answer.
 */
jest.setTimeout(120_000);

const file = seededApis();
const api = file.api;
const CONTROL = '\u0001'.repeat(100_000);
/** One alias of 100 such posts: about 60 MB of JSON, over the default MAX_RESPONSE_BYTES (16 MiB). */
const HEAVY = '{ posts(limit: 100, published: true) { content } }';

beforeAll(async () => {
  const ids = await insertPosts(file.pool, [ALICE], 100, { content: CONTROL, published: true });
  await (await api()).app.sync.posts(ids);
});

const as = (ip: string) => ({ 'x-forwarded-for': ip });

describe('the size of an answer', () => {
  test('an answer over MAX_RESPONSE_BYTES is RESPONSE_TOO_LARGE (400) with its size, on both read paths, and is never sent', async () => {
    // STATEMENT_TIMEOUT_MS=0 as in the report: nothing but the cap stops the read.
    const a = await api({ statementTimeoutMs: 0 });
    const fast = await a.gql(HEAVY);
    const apollo = await a.gql('query($x: Boolean!) { posts(limit: 100, published: true) { content @include(if: $x) } }', { x: true });
    for (const res of [fast, apollo]) {
      expect(res.status).toBe(400);
      expect(res.json.errors?.[0]?.extensions).toEqual(expect.objectContaining({ code: 'RESPONSE_TOO_LARGE', limit: 16 * 1024 * 1024 }));
      const bytes = (res.json.errors![0]!.extensions as { bytes: number }).bytes;
      // 100 × (100,000 × 6 + the JSON around it).
      expect(bytes).toBeGreaterThan(60_000_000);
      expect(res.json.errors?.[0]?.message).toMatch(/The answer would be \d+ bytes; the limit is 16777216 \(MAX_RESPONSE_BYTES\)/);
      expect(res.text.length).toBeLessThan(2000);
    }
    // The process is still serving.
    expect((await a.gql(SEED_OPERATIONS.GetUser)).json.errors).toBeUndefined();
  });

  test('an answer under the cap is sent whole', async () => {
    const a = await api({ maxResponseBytes: 1_300_000 });
    const two = await a.gql('{ posts(limit: 2, published: true) { content } }');
    expect(two.status).toBe(200);
    expect((two.json.data as { posts: { content: string }[] }).posts.map((p) => p.content)).toEqual([CONTROL, CONTROL]);
    const three = await a.gql('{ posts(limit: 3, published: true) { content } }');
    expect(three.json.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');
  });
});

describe('heavy reads and the pool', () => {
  test('ten heavy reads at once leave a cheap lookup and a mutation their connections; at most two heavy reads run at a time', async () => {
    const a = await api({ trustProxy: 1 });
    // Precondition: a heavy read alone takes long enough for the comparison below to mean something.
    const t0 = performance.now();
    expect((await a.post({ query: HEAVY }, as('198.51.100.99'))).json.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');
    const alone = performance.now() - t0;
    expect(alone).toBeGreaterThan(150);

    let most = 0;
    const sampler = setInterval(() => {
      most = Math.max(most, a.app.reads.gate!.heavyInFlight);
    }, 5);
    const done: { what: string; at: number; res: GqlResponse }[] = [];
    const started = performance.now();
    const track = (what: string, p: Promise<GqlResponse>) => p.then((res) => done.push({ what, at: performance.now() - started, res }));
    const heavy = Array.from({ length: 10 }, (_, i) => track('heavy', a.post({ query: HEAVY }, as(`198.51.100.${i + 1}`))));
    await new Promise((r) => setTimeout(r, 50));
    const cheap = [
      track('lookup', a.post({ query: `{ user(id: "${BOB}") { username } }` }, as('203.0.113.50'))),
      track(
        'mutation',
        a.post(
          { query: `mutation { createComment(postId: "${POST1}", authorId: "${BOB}", content: "still here", sync: INLINE) { id } }` },
          as('203.0.113.51'),
        ),
      ),
    ];
    await Promise.all([...heavy, ...cheap]);
    clearInterval(sampler);

    const firstHeavy = Math.min(...done.filter((d) => d.what === 'heavy').map((d) => d.at));
    for (const what of ['lookup', 'mutation']) {
      const d = done.find((x) => x.what === what)!;
      expect({ what, errors: d.res.json.errors }).toEqual({ what, errors: undefined });
      expect({ what, before: d.at < firstHeavy }).toEqual({ what, before: true });
    }
    expect(most).toBeLessThanOrEqual(2);
    // Every heavy read was answered by the cap or told to come back: none failed.
    for (const d of done.filter((x) => x.what === 'heavy')) {
      expect([400, 503]).toContain(d.res.status);
      expect(['RESPONSE_TOO_LARGE', 'SERVICE_UNAVAILABLE']).toContain(d.res.json.errors?.[0]?.extensions?.code);
      if (d.res.status === 503) expect(d.res.headers.get('retry-after')).toBe('1');
    }
  });

  test(
    'one client gets at most HEAVY_READS_PER_CLIENT heavy reads running or waiting; ' +
      'more are RATE_LIMITED (429, Retry-After), other clients unaffected',
    async () => {
      // Smaller heavy reads here (10 posts, 6 MB, over a 1 MB cap): one client's run one after another.
      const a = await api({ trustProxy: 1, heavyReadsPerClient: 3, maxResponseBytes: 1_000_000 });
      const tenPosts = '{ posts(limit: 10, published: true) { content } }';
      const mine = await Promise.all(Array.from({ length: 5 }, () => a.post({ query: tenPosts }, as('198.51.100.200'))));
      const limited = mine.filter((r) => r.status === 429);
      expect(limited).toHaveLength(2);
      for (const r of limited) {
        expect(r.json.errors?.[0]?.extensions).toEqual({ code: 'RATE_LIMITED', retryAfterSeconds: 1 });
        expect(r.headers.get('retry-after')).toBe('1');
      }
      expect(mine.filter((r) => r.json.errors?.[0]?.extensions?.code === 'RESPONSE_TOO_LARGE')).toHaveLength(3);
      expect((await a.post({ query: tenPosts }, as('198.51.100.201'))).json.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');
    },
  );

  test('a document whose cost may be heavy takes a heavy turn until it has answered lightly at that cost', async () => {
    const a = await api();
    const gate = a.app.reads.gate!;
    // GetRecentPosts costs 1,236 (HEAVY_READ_COST is 1,000): its first run is heavy, the next ones are not.
    await a.data(SEED_OPERATIONS.GetRecentPosts);
    expect(gate.counts.heavy).toBe(1);
    await a.data(SEED_OPERATIONS.GetRecentPosts);
    await a.data(SEED_OPERATIONS.GetRecentPosts);
    expect(gate.counts.heavy).toBe(1);
    // With a variable limit, a larger page costs more than what was seen: heavy again, once.
    const q = 'query($n: Int) { posts(limit: $n, published: false) { id title comments { content } } }';
    await a.data(q, { n: 5 });
    await a.data(q, { n: 5 });
    expect(gate.counts.heavy).toBe(2);
    await a.data(q, { n: 50 });
    await a.data(q, { n: 50 });
    expect(gate.counts.heavy).toBe(3);
    // A document seen answering heavily stays heavy at that cost.
    for (let i = 0; i < 2; i++) expect((await a.gql(HEAVY)).json.errors?.[0]?.extensions?.code).toBe('RESPONSE_TOO_LARGE');
    expect(gate.counts.heavy).toBe(5);
  });
});
