/**
 * Benchmark: the change feed and subscriptions (docs/live.md), with two API processes and a worker
 * process on one database. Prints tables with the machine's load next to them; it is not a test.
 *
 *   npm run bench:live
 *
 *   1. Feed delay. BENCH_LIVE_RATE (500) writes a second for BENCH_LIVE_SECONDS (20) through API A,
 *      sent at a steady rate whatever the answers' latency (open loop): updatePost and createComment,
 *      INLINE and QUEUED in turn (QUEUED ones are synced by the worker). Measured two ways:
 *      - as each API process reports it: `blog_feed_delay_seconds`, the time from a refresh's commit
 *        (the sender's clock) to its message reaching the process, a histogram on
 *        /metrics/prometheus read before and after; p50 and p99 interpolated within the buckets as
 *        Prometheus' histogram_quantile does. One observation per message: a message carries every
 *        refresh its sender committed while its previous message was being sent, and its time is
 *        that of the first of them, so a message's delay is the longest of its refreshes';
 *      - end to end, for some of the writes (part of the rate): every BENCH_LIVE_TRACK_MS (100) an
 *        updatePost of one of 20 posts watched by a subscriber on API B (postChanged), alternately
 *        INLINE and QUEUED: the time from the mutation's answer on A to the change reaching that
 *        subscriber. For QUEUED this includes the worker taking the job (it polls every 50 ms).
 *   2. Fan-out. BENCH_LIVE_SUBSCRIBERS (1,000) graphql-ws clients (one WebSocket each, Node's global
 *      WebSocket, lazy: false), half on API A and half on API B, each subscribed to postChanged of
 *      one post; then one INLINE updatePost of that post through A: the time from the mutation's
 *      answer to the first and to the last delivery, BENCH_LIVE_ROUNDS (10) times. The subscribers
 *      live in this process: the last delivery includes the time this process takes to receive and
 *      parse the 1,000 messages, on the same 2 CPUs as the servers.
 *
 * Environment: BENCH_LIVE_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/blog_bench_live;
 * dropped and made again on every run), BENCH_LIVE_RATE, BENCH_LIVE_SECONDS, BENCH_LIVE_TRACK_MS,
 * BENCH_LIVE_SUBSCRIBERS, BENCH_LIVE_ROUNDS, BENCH_LIVE_ONLY=1,2 (run only these parts).
 */
import http from 'node:http';
import os from 'node:os';
import shared from '@blog/shared';
import { createClient, type Client } from 'graphql-ws';
import type pg from 'pg';
import { insertDataset } from './dataset.mts';
import { API_MAIN, f, loadAvg, log, onlyParts, pct, startProcess, stopProcess, WORKER_MAIN } from './harness.mts';

const env = process.env;

const DATABASE_URL = env.BENCH_LIVE_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/blog_bench_live';
const RATE = Number(env.BENCH_LIVE_RATE ?? 500);
const SECONDS = Number(env.BENCH_LIVE_SECONDS ?? 20);
const TRACK_MS = Number(env.BENCH_LIVE_TRACK_MS ?? 100);
const SUBSCRIBERS = Number(env.BENCH_LIVE_SUBSCRIBERS ?? 1000);
const ROUNDS = Number(env.BENCH_LIVE_ROUNDS ?? 10);
const runs = onlyParts(env.BENCH_LIVE_ONLY);
/** Posts watched on B in part 1 (each updated at most once every TRACKED * TRACK_MS ms). */
const TRACKED = 20;
/** Requests in flight at most in part 1 (tracked ones aside); a write due beyond it is not sent (and counted). */
const MAX_IN_FLIGHT = 256;
const SIZE = { users: 1000, posts: 2000, commentsPerPost: 5, contentChars: 1000 };

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en') : '-');
const { sleep } = shared;
const table = (header: string[], rows: string[][]) => {
  log(`| ${header.join(' | ')} |`);
  log(`|${header.map((_, i) => (i ? '---:' : '---')).join('|')}|`);
  for (const r of rows) log(`| ${r.join(' | ')} |`);
};

// ---- processes and requests -----------------------------------------------------------------------

interface Api {
  name: string;
  port: number;
  url: string;
  stop: () => Promise<void>;
}

async function startApi(name: string): Promise<Api> {
  const port = await shared.freePort();
  const child = await startProcess(
    name,
    [API_MAIN],
    {
      DATABASE_URL,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      // One client (this process, one address) writes hundreds a second and holds every subscriber.
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
      MAX_WS_CONNECTIONS_PER_CLIENT: String(SUBSCRIBERS + 100),
      MAX_SUBSCRIPTIONS_PER_CLIENT: String(SUBSCRIBERS + 100),
      DEFAULT_SYNC_MODE: 'QUEUED',
    },
    /API ready at/,
  );
  const url = `http://127.0.0.1:${port}`;
  // Serving GraphQL (the database checked) and its change feed listening: /ready says the first;
  // the feed connects at start-up and a few hundred ms are left to it.
  await shared.waitFor(`${name} ready`, async () => (await fetch(`${url}/ready`).catch(() => undefined))?.ok ?? false, 30_000, 100);
  await sleep(500);
  return { name, port, url, stop: () => stopProcess(child) };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
/**
 * The tracked writes' own connections: they are the end-to-end measurement, so they neither wait
 * for a free socket behind the other writes nor are skipped when too many of those are in flight.
 */
const trackedAgent = new http.Agent({ keepAlive: true, maxSockets: 8 });

interface Answer {
  status: number;
  text: string;
  /** performance.now() when the answer had arrived whole. */
  at: number;
  ms: number;
}

function send(port: number, query: string, variables: Record<string, unknown>, via = agent): Promise<Answer> {
  const body = JSON.stringify({ query, variables });
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: '/graphql',
        method: 'POST',
        agent: via,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const at = performance.now();
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString(), at, ms: at - started });
        });
        res.on('error', (err) => resolve({ status: 0, text: err.message, at: performance.now(), ms: performance.now() - started }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, text: err.message, at: performance.now(), ms: performance.now() - started }));
    req.end(body);
  });
}

/** What is wrong with a mutation's answer, or undefined. */
function failure(a: Answer): string | undefined {
  if (a.status !== 200) return `HTTP ${a.status}: ${a.text.slice(0, 160)}`;
  const body = JSON.parse(a.text) as { errors?: { message: string; extensions?: { code?: string } }[] };
  return body.errors?.length ? `${body.errors[0]!.extensions?.code ?? 'ERROR'}: ${body.errors[0]!.message.slice(0, 160)}` : undefined;
}

const UPDATE_POST = (mode: string) => `mutation ($id: ID!, $title: String!) { updatePost(id: $id, title: $title, sync: ${mode}) { id } }`;
const CREATE_COMMENT = (mode: string) =>
  'mutation ($postId: ID!, $authorId: ID!) { ' +
  `createComment(postId: $postId, authorId: $authorId, content: "Written at a steady rate.", sync: ${mode}) { id } }`;

function subscriber(api: Api, on: { connected?: () => void } = {}): Client {
  return createClient({
    url: `ws://127.0.0.1:${api.port}/graphql`,
    webSocketImpl: WebSocket,
    lazy: false,
    retryAttempts: 0,
    on: { connected: () => on.connected?.() },
  });
}

/** Subscribes to postChanged(id) { title }; `seen` gets each title as it arrives. */
function watch(client: Client, postId: string, seen: (title: string) => void, failed: (err: unknown) => void): () => void {
  return client.subscribe<{ postChanged: { title: string } }>(
    { query: `subscription ($id: ID!) { postChanged(id: $id) { title } }`, variables: { id: postId } },
    {
      next: (r) => (r.data ? seen(r.data.postChanged.title) : failed(r.errors)),
      error: failed,
      complete: () => undefined,
    },
  );
}

async function subscriptionsOpen(api: Api): Promise<number> {
  return metric(await scrape(api), 'blog_subscriptions_open');
}

// ---- Prometheus --------------------------------------------------------------------------------------

async function scrape(api: Api): Promise<string> {
  const res = await fetch(`${api.url}/metrics/prometheus`);
  if (!res.ok) throw new Error(`${api.name}: GET /metrics/prometheus answered ${res.status}`);
  return res.text();
}

/** The sum of a metric's samples whose labels include `labels` (text exposition format). */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(m[3]);
  }
  return sum;
}

interface Histogram {
  /** Upper bounds (seconds), ascending, +Inf last, with cumulative counts. */
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

function histogram(text: string, name: string): Histogram {
  const les = new Set<string>();
  for (const m of text.matchAll(new RegExp(`^${name}_bucket\\{[^}]*le="([^"]+)"`, 'gm'))) les.add(m[1]!);
  const buckets = [...les]
    .map((le) => ({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), count: metric(text, `${name}_bucket`, { le }) }))
    .sort((a, b) => a.le - b.le);
  return { buckets, count: metric(text, `${name}_count`), sum: metric(text, `${name}_sum`) };
}

function minus(after: Histogram, before: Histogram): Histogram {
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (before.buckets.find((x) => x.le === b.le)?.count ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  };
}

function plus(a: Histogram, b: Histogram): Histogram {
  return {
    buckets: a.buckets.map((x) => ({ le: x.le, count: x.count + (b.buckets.find((y) => y.le === x.le)?.count ?? 0) })),
    count: a.count + b.count,
    sum: a.sum + b.sum,
  };
}

/**
 * The q-quantile in seconds, interpolated linearly within its bucket (as histogram_quantile does),
 * and the bucket's upper bound; in the +Inf bucket, the largest finite bound (the value is above it).
 */
function quantile(h: Histogram, q: number): { value: number; bound: number; above: boolean } {
  if (!h.count) return { value: Number.NaN, bound: Number.NaN, above: false };
  const rank = q * h.count;
  let lower = 0;
  let below = 0;
  for (const b of h.buckets) {
    if (b.count >= rank && b.count > below) {
      if (b.le === Number.POSITIVE_INFINITY) return { value: lower, bound: lower, above: true };
      return { value: lower + ((b.le - lower) * (rank - below)) / (b.count - below), bound: b.le, above: false };
    }
    lower = b.le;
    below = b.count;
  }
  return { value: Number.NaN, bound: Number.NaN, above: false };
}

const FEED_DELAY = 'blog_feed_delay_seconds';

// ---- data --------------------------------------------------------------------------------------------

async function freshDatabase(): Promise<void> {
  const admin = shared.createPool(shared.withDatabase(DATABASE_URL, 'postgres'), { applicationName: 'blog-bench-live', max: 1 });
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${shared.databaseName(DATABASE_URL)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  await shared.ensureDatabaseExists(DATABASE_URL);
  await shared.prepareDatabase(DATABASE_URL, { seedWhenEmpty: false });
}

async function fill(pool: pg.Pool): Promise<{ users: string[]; posts: string[] }> {
  const started = performance.now();
  await shared.withTransaction(pool, (client) => insertDataset(client, SIZE));
  await new shared.SyncEngine(pool).all();
  await pool.query('VACUUM ANALYZE');
  const users = (await pool.query<{ id: string }>('SELECT id FROM tb_user ORDER BY id')).rows.map((r) => r.id);
  const posts = (await pool.query<{ id: string }>('SELECT id FROM tb_post ORDER BY id')).rows.map((r) => r.id);
  log(
    `data: ${int(users.length)} users, ${int(posts.length)} posts, ${int(posts.length * SIZE.commentsPerPost)} comments, ` +
      `projected in ${f((performance.now() - started) / 1000, 1)} s`,
  );
  return { users, posts };
}

// ---- 1. feed delay -----------------------------------------------------------------------------------

interface Tracked {
  mode: 'INLINE' | 'QUEUED';
  answeredAt?: number;
  receivedAt?: number;
  failed?: string;
}

async function feedDelay(pool: pg.Pool, a: Api, b: Api, data: { users: string[]; posts: string[] }): Promise<void> {
  const trackedPosts = data.posts.slice(0, TRACKED);
  const bulkPosts = data.posts.slice(TRACKED);
  const trackRate = 1000 / TRACK_MS;
  const bulkRate = Math.max(0, RATE - trackRate);
  log(`\n## 1. Feed delay: ${int(RATE)} writes/s through API A for ${SECONDS} s (INLINE and QUEUED mixed), API B and a worker beside it\n`);

  // The subscriber on B: one connection, a subscription per tracked post.
  const tracked = new Map<string, Tracked>();
  const subscriptionErrors: unknown[] = [];
  const client = subscriber(b);
  const stops = trackedPosts.map((id) =>
    watch(
      client,
      id,
      (title) => {
        const t = tracked.get(title);
        if (t && t.receivedAt === undefined) t.receivedAt = performance.now();
      },
      (err) => subscriptionErrors.push(err),
    ),
  );
  await shared.waitFor('the tracked subscriptions on B', async () => (await subscriptionsOpen(b)) >= TRACKED, 30_000, 100);

  const pick = <T,>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)]!;
  const latencies = { INLINE: [] as number[], QUEUED: [] as number[] };
  const errors = new Map<string, number>();
  let sent = 0;
  let ok = 0;
  let skipped = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  /** Sends a write unless MAX_IN_FLIGHT are in flight already (then it is skipped); tracked ones always, on their own sockets. */
  const launch = (mode: 'INLINE' | 'QUEUED', query: string, variables: Record<string, unknown>, onAnswer?: (a: Answer) => void) => {
    if (!onAnswer && inFlight >= MAX_IN_FLIGHT) {
      skipped += 1;
      return;
    }
    if (!onAnswer) inFlight += 1;
    sent += 1;
    const p = send(a.port, query, variables, onAnswer ? trackedAgent : agent).then((answer) => {
      if (!onAnswer) inFlight -= 1;
      const problem = failure(answer);
      if (problem) errors.set(problem, (errors.get(problem) ?? 0) + 1);
      else {
        ok += 1;
        latencies[mode].push(answer.ms);
      }
      onAnswer?.(answer);
    });
    pending.add(p);
    void p.finally(() => pending.delete(p));
  };

  const beforeA = histogram(await scrape(a), FEED_DELAY);
  const beforeB = histogram(await scrape(b), FEED_DELAY);
  const loadBefore = loadAvg();
  const started = performance.now();
  let bulkDue = 0;
  let trackDue = 0;
  while (performance.now() - started < SECONDS * 1000) {
    const elapsed = (performance.now() - started) / 1000;
    for (; bulkDue < Math.floor(elapsed * bulkRate); bulkDue++) {
      const n = bulkDue;
      const mode = n % 4 < 2 ? 'INLINE' : 'QUEUED';
      if (n % 2 === 0) launch(mode, UPDATE_POST(mode), { id: pick(bulkPosts), title: `steady ${n}` });
      else launch(mode, CREATE_COMMENT(mode), { postId: pick(bulkPosts), authorId: pick(data.users) });
    }
    for (; trackDue < Math.floor(elapsed * trackRate); trackDue++) {
      const n = trackDue;
      const mode = n % 2 === 0 ? 'INLINE' : 'QUEUED';
      const title = `tracked ${n}`;
      const t: Tracked = { mode };
      tracked.set(title, t);
      launch(mode, UPDATE_POST(mode), { id: trackedPosts[n % TRACKED]!, title }, (answer) => {
        t.answeredAt = answer.at;
        t.failed = failure(answer);
      });
    }
    await sleep(5);
  }
  const sendingS = (performance.now() - started) / 1000;
  while (pending.size) await Promise.allSettled([...pending]);
  const answeredS = (performance.now() - started) / 1000;
  // The queue drains, and the last tracked changes reach B.
  const drainStarted = performance.now();
  await shared.waitFor(
    'the sync queue to drain',
    async () => {
      const d = await shared.syncQueueDepth(pool);
      return d.ready + d.active + d.retrying === 0;
    },
    60_000,
    20,
  );
  const drainedMs = performance.now() - drainStarted;
  const deliveredBy = performance.now() + 5000;
  while ([...tracked.values()].some((t) => !t.failed && t.receivedAt === undefined) && performance.now() < deliveredBy) await sleep(20);
  await sleep(300); // the feed messages of the last refreshes reach both processes
  const delayA = minus(histogram(await scrape(a), FEED_DELAY), beforeA);
  const delayB = minus(histogram(await scrape(b), FEED_DELAY), beforeB);
  const loadAfter = loadAvg();
  for (const stop of stops) stop();
  await client.dispose();

  const lat = (mode: 'INLINE' | 'QUEUED') => {
    const s = latencies[mode].sort((x, y) => x - y);
    return `${f(pct(s, 50))} / ${f(pct(s, 99))}`;
  };
  table(
    [
      'writes/s asked',
      'sent',
      'answered ok',
      'ok/s',
      'failed',
      'not sent (256 in flight)',
      'INLINE answer p50 / p99 ms',
      'QUEUED answer p50 / p99 ms',
      'queue drained after the last answer',
      'machine (before, after)',
    ],
    [
      [
        int(RATE),
        int(sent),
        int(ok),
        int(ok / sendingS),
        int(sent - ok),
        int(skipped),
        lat('INLINE'),
        lat('QUEUED'),
        `${f(drainedMs, 0)} ms`,
        `${loadBefore}; ${loadAfter}`,
      ],
    ],
  );
  if (errors.size) log(`\nerrors: ${[...errors].map(([k, v]) => `${v} x ${k}`).join('; ')}`);
  log(`(sending took ${f(sendingS, 1)} s, the last answer came ${f(answeredS - sendingS, 2)} s after the last send)\n`);

  log(
    'Feed delay as each API process reports it ' +
      '(blog_feed_delay_seconds over the run; one observation per feed message, from API A and from the worker):\n',
  );
  const ms = (s: number) => f(s * 1000, 1);
  const delayRow = (name: string, h: Histogram) => {
    const p50 = quantile(h, 0.5);
    const p99 = quantile(h, 0.99);
    const le = (q: { bound: number; above: boolean }) => (q.above ? `> ${ms(q.bound)}` : `≤ ${ms(q.bound)}`);
    return [name, int(h.count), ms(p50.value), ms(p99.value), `${le(p50)} / ${le(p99)}`, h.count ? ms(h.sum / h.count) : '-', loadAfter];
  };
  table(
    ['process', 'feed messages', 'delay p50 ms', 'p99 ms', 'buckets of p50 / p99 (ms)', 'mean ms', 'machine'],
    [delayRow('API A (the writes go through it)', delayA), delayRow('API B', delayB), delayRow('both', plus(delayA, delayB))],
  );
  const p99 = quantile(plus(delayA, delayB), 0.99);
  log(`\np99 of the feed delay: ${p99.above ? '> ' : ''}${ms(p99.value)} ms (target: under 50 ms at ${int(RATE)} writes/s)\n`);

  log(
    `End to end: an updatePost through A (${f(trackRate, 0)} a second, part of the rate), ` +
      'from its answer to the change reaching a postChanged subscriber on B:\n',
  );
  const e2eRow = (mode: 'INLINE' | 'QUEUED') => {
    const all = [...tracked.values()].filter((t) => t.mode === mode && !t.failed && t.answeredAt !== undefined);
    const got = all
      .filter((t) => t.receivedAt !== undefined)
      .map((t) => t.receivedAt! - t.answeredAt!)
      .sort((x, y) => x - y);
    return [
      mode,
      int(all.length),
      int(got.length),
      f(pct(got, 50), 1),
      f(pct(got, 99), 1),
      f(got.at(-1) ?? Number.NaN, 1),
      f(got[0] ?? Number.NaN, 1),
      loadAfter,
    ];
  };
  table(
    ['mode', 'writes answered', 'changes delivered', 'p50 ms', 'p99 ms', 'max ms', 'min ms', 'machine'],
    [e2eRow('INLINE'), e2eRow('QUEUED')],
  );
  if (subscriptionErrors.length) log(`\nsubscription errors: ${JSON.stringify(subscriptionErrors.slice(0, 3))}`);
  log(
    '\n(a negative time: the change reached B before the answer reached this client; ' +
      'QUEUED includes the worker taking the job, WORKER_POLL_INTERVAL_MS 50)',
  );
}

// ---- 2. fan-out --------------------------------------------------------------------------------------

async function fanOut(a: Api, b: Api, postId: string): Promise<void> {
  const perApi = [Math.ceil(SUBSCRIBERS / 2), Math.floor(SUBSCRIBERS / 2)];
  log(
    `\n## 2. Fan-out: ${int(SUBSCRIBERS)} subscribers of postChanged on one post ` +
      `(${int(perApi[0]!)} on API A, ${int(perApi[1]!)} on API B, one WebSocket each), ` +
      `one INLINE updatePost through A, ${ROUNDS} rounds\n`,
  );
  const openBefore = (await subscriptionsOpen(a)) + (await subscriptionsOpen(b));
  /** Per subscriber: which API, and when it got the title of the current round. */
  const subs: { api: 'A' | 'B'; client: Client; at?: number }[] = [];
  let expected = '';
  const errors: unknown[] = [];
  const connectStarted = performance.now();
  for (let i = 0; i < SUBSCRIBERS; i += 50) {
    const batch: Promise<void>[] = [];
    for (let j = i; j < Math.min(SUBSCRIBERS, i + 50); j++) {
      const api = j % 2 === 0 ? a : b;
      batch.push(
        new Promise<void>((resolve) => {
          const client = subscriber(api, { connected: resolve });
          const sub: (typeof subs)[number] = { api: api === a ? 'A' : 'B', client };
          subs.push(sub);
          watch(
            client,
            postId,
            (title) => {
              if (title === expected && sub.at === undefined) sub.at = performance.now();
            },
            (err) => errors.push(err),
          );
        }),
      );
    }
    await Promise.all(batch);
  }
  await shared.waitFor(
    'every subscription open',
    async () => (await subscriptionsOpen(a)) + (await subscriptionsOpen(b)) - openBefore >= SUBSCRIBERS,
    60_000,
    100,
  );
  const connectS = (performance.now() - connectStarted) / 1000;
  log(`${int(SUBSCRIBERS)} subscribers connected and subscribed in ${f(connectS, 1)} s (${loadAvg()})\n`);

  const rounds: { answer: number; first: number; last: number; lastA: number; lastB: number; delivered: number }[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    for (const s of subs) s.at = undefined;
    expected = `fan-out round ${r} ${Date.now()}`;
    const sentAt = performance.now();
    const answer = await send(a.port, UPDATE_POST('INLINE'), { id: postId, title: expected });
    const problem = failure(answer);
    if (problem) throw new Error(`round ${r}: the updatePost failed: ${problem}`);
    const deadline = performance.now() + 10_000;
    while (subs.some((s) => s.at === undefined) && performance.now() < deadline) await sleep(1);
    const got = subs.filter((s) => s.at !== undefined);
    const since = (list: typeof subs) => list.map((s) => s.at! - answer.at);
    const max = (xs: number[]) => (xs.length ? Math.max(...xs) : Number.NaN);
    rounds.push({
      answer: answer.at - sentAt,
      first: Math.min(...since(got)),
      last: max(since(got)),
      lastA: max(since(got.filter((s) => s.api === 'A'))),
      lastB: max(since(got.filter((s) => s.api === 'B'))),
      delivered: got.length,
    });
    await sleep(500);
  }
  const loadAfter = loadAvg();
  const stat = (key: keyof (typeof rounds)[number]) => {
    const xs = rounds.map((x) => x[key]).sort((p, q) => p - q);
    return [f(pct(xs, 50), 1), f(xs.at(-1)!, 1)];
  };
  table(
    ['', 'p50 ms', 'max ms', 'machine'],
    [
      ['the mutation answered (from its send)', ...stat('answer'), loadAfter],
      ['first delivery (from the answer)', ...stat('first'), loadAfter],
      ['last delivery (from the answer)', ...stat('last'), loadAfter],
      [`last on API A (${int(perApi[0]!)}, the writer)`, ...stat('lastA'), loadAfter],
      [`last on API B (${int(perApi[1]!)})`, ...stat('lastB'), loadAfter],
    ],
  );
  const delivered = rounds.reduce((n, x) => n + x.delivered, 0);
  log(
    `\ndeliveries: ${int(delivered)} of ${int(SUBSCRIBERS * ROUNDS)}` +
      `${errors.length ? `; subscription errors: ${errors.length}, the first: ${JSON.stringify(errors[0]).slice(0, 200)}` : ''}`,
  );
  log(`per round (ms from the answer, first / last): ${rounds.map((x) => `${f(x.first, 1)} / ${f(x.last, 1)}`).join(', ')}`);
  await Promise.all(subs.map((s) => s.client.dispose()));
}

// ---- run ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  log(`live benchmark: ${os.cpus().length} CPUs, node ${process.version}, ${DATABASE_URL}, ${loadAvg()}, ${new Date().toISOString()}`);
  await freshDatabase();
  const pool = shared.createPool(DATABASE_URL, { applicationName: 'blog-bench-live', max: 4 });
  const started: { stop: () => Promise<void> }[] = [];
  try {
    const data = await fill(pool);
    const worker = await startProcess(
      'worker',
      [WORKER_MAIN],
      { DATABASE_URL, WORKER_HEALTH_PORT: '0', LOG_LEVEL: 'info' },
      /projection worker started/,
    );
    started.push({ stop: () => stopProcess(worker) });
    const a = await startApi('API A');
    started.push(a);
    const b = await startApi('API B');
    started.push(b);
    if (runs('1')) await feedDelay(pool, a, b, data);
    if (runs('2')) await fanOut(a, b, data.posts.at(-1)!);
  } finally {
    for (const s of started.reverse()) await s.stop();
    agent.destroy();
    trackedAgent.destroy();
    await pool.end();
  }
}

await main();
