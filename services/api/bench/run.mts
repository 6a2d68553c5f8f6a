/**
 * Benchmark: our API next to a bare Node HTTP server running the same single SQL statement, in one
 * run, on a data set big enough to matter. Prints figures; it is not a test.
 *
 *   npm run bench -w @blog/api
 *
 * Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/blog_bench; created,
 * migrated and filled on first use, reused afterwards), BENCH_SECONDS (10 per load phase),
 * BENCH_CONNECTIONS (16), BENCH_SAMPLES (2000 sequential requests for the one-connection figures),
 * BENCH_RESEED=1 (rebuild the data set), BENCH_TOOL=wrk|autocannon (default: wrk when installed),
 * BENCH_ONLY=GetRecentPosts,GetUser,CreatePost (run only these phases).
 *
 *   npm run bench:tracing -w @blog/api     (node bench/run.mts --tracing)
 *
 * The cost of tracing: GetRecentPosts on API processes side by side: tracing off; every trace
 * exported over OTLP/HTTP in protobuf (the default, our encoder); every trace through the SDK's
 * OTLP/JSON exporter instead (for comparison); a tenth of the traces sampled. Each traced process
 * exports to its own local collector (./collector.mts, a process of its own, which accepts and counts
 * the spans).
 * Measured in one run, in short slices taken by the processes in turn (BENCH_SLICES, default 20;
 * each slice is BENCH_SLICE_SAMPLES = 300 sequential requests, then BENCH_SLICE_SECONDS = 1 s at
 * BENCH_CONNECTIONS), so that the machine's slow spells fall on every process alike.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import shared from '@blog/shared';
import type pg from 'pg';
import type * as ReadStatementModule from '../src/reads/read-statement.ts';
import type { CollectorCounts } from './collector.mts';
import { DEFAULT_SIZE, datasetMatches, insertDataset } from './dataset.mts';
import { agent, f, load, log, onlyParts, post, SECONDS, sequential, startProcess, stopProcess, TICK_US, TOOL } from './harness.mts';

const { freePort } = shared;

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const { readStatement } = (await import(path.join(dist, 'reads', 'read-statement.js'))) as typeof ReadStatementModule;

const env = process.env;
const DATABASE_URL = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/blog_bench';
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 16);
const SAMPLES = Number(env.BENCH_SAMPLES ?? 2000);
const POOL_MAX = 10;
// The tracing benchmark's slices: sequential requests, then seconds under load, per process per slice.
const SLICE_SAMPLES = Number(env.BENCH_SLICE_SAMPLES ?? 300);
const SLICE_SECONDS = Number(env.BENCH_SLICE_SECONDS ?? 1);
// BENCH_ONLY=GetRecentPosts,GetUser,CreatePost (any of them): run only these phases.
const runs = onlyParts(env.BENCH_ONLY);

const SEED_ALICE = '00000000-0000-0000-0000-000000000001';
// The seed's read documents, verbatim (one copy, in @blog/shared).
const OPERATIONS = { GetRecentPosts: shared.SEED_OPERATIONS.GetRecentPosts, GetUser: shared.SEED_OPERATIONS.GetUser };
const createPostInline = (authorId: string, sync: 'INLINE' | 'QUEUED' = 'INLINE') => `mutation CreatePost {
  createPost(title: "Benchmark post", content: "Written under load.", authorId: "${authorId}", published: true, sync: ${sync}) {
    id
    title
    author {
      username
    }
  }
}`;
// The seed's CreatePost writes as alice. The benchmark also writes as AUTHORS different users in
// turn: four connections writing as one author all queue for that author's tv_user row.
const CREATE_POST_INLINE = createPostInline(SEED_ALICE);
const CREATE_POST_QUEUED = createPostInline(SEED_ALICE, 'QUEUED');
const AUTHORS = 8;

// ---- database --------------------------------------------------------------------------------

async function prepare(): Promise<string[]> {
  await shared.ensureDatabaseExists(DATABASE_URL);
  await shared.prepareDatabase(DATABASE_URL, { seedWhenEmpty: true });
  const pool = shared.createPool(DATABASE_URL, { applicationName: 'blog-bench-setup', max: 2 });
  try {
    if (env.BENCH_RESEED === '1' || !(await datasetMatches(pool, DEFAULT_SIZE))) {
      log(`filling ${DATABASE_URL} (${DEFAULT_SIZE.posts} posts x ${DEFAULT_SIZE.commentsPerPost} comments) ...`);
      const started = performance.now();
      await pool.query(`TRUNCATE ${[...shared.commandTables(), ...shared.MODEL.map((e) => e.view), 'sync_log'].join(', ')}`);
      await shared.withTransaction(pool, async (client) => {
        await shared.insertSeedRows(client);
        await insertDataset(client, DEFAULT_SIZE);
      });
      const report = await new shared.SyncEngine(pool).all();
      log(
        `  filled and projected in ${((performance.now() - started) / 1000).toFixed(1)} s: ` +
          `${report.results.map((r) => `${r.count} ${r.entityType}s`).join(', ')}`,
      );
    }
    // Posts the previous run's CreatePost phase added are removed, so every run reads the same data.
    const authors = (await pool.query<{ id: string }>('SELECT id FROM tb_user ORDER BY id LIMIT $1', [AUTHORS])).rows.map((r) => r.id);
    await removeBenchmarkPosts(authors, pool);
    const { rows } = await pool.query<{ size: string }>(`SELECT pg_size_pretty(pg_total_relation_size('tv_post')) AS size`);
    log(`  tv_post: ${rows[0]!.size}`);
    return authors;
  } finally {
    await pool.end();
  }
}

/** Removes the posts the CreatePost phases add, recounts their authors' posts and vacuums. */
async function removeBenchmarkPosts(authors: string[], given?: pg.Pool): Promise<void> {
  const pool = given ?? shared.createPool(DATABASE_URL, { applicationName: 'blog-bench-setup', max: 2 });
  try {
    await pool.query(`DELETE FROM tv_post WHERE data->>'title' = 'Benchmark post'`);
    await pool.query(`DELETE FROM tb_post WHERE title = 'Benchmark post'`);
    // The sync jobs of the QUEUED phase, in the sync outbox (no worker relays or drains them here).
    await pool.query('DELETE FROM sync_outbox');
    await pool.query('DELETE FROM pgboss.job WHERE name = $1', [shared.SYNC_QUEUE]);
    // Deleted behind the commands' backs: the authors' kept counts are set from the rows again.
    await shared.withTransaction(pool, (client) => shared.recountKeptCounts(client, 'user', authors));
    await pool.query('VACUUM ANALYZE');
  } finally {
    if (!given) await pool.end();
  }
}

// ---- run ----------------------------------------------------------------------------------------

/** A row of the table for sequential requests at 1 connection (client latencies and X-Process-Time). */
const sequentialRow = (operation: string, server: string, r: Awaited<ReturnType<typeof sequential>>): string[] => [
  operation,
  server,
  '1',
  f(r.rps, 0),
  f(r.p50),
  f(r.p99),
  f(r.serverP50, 3),
  f(r.serverP99, 3),
  '',
  String(r.errors),
];

/** A row of the table for a load at `connections` (client latencies and the server's CPU per request). */
const loadRow = (operation: string, server: string, connections: number, r: Awaited<ReturnType<typeof load>>): string[] => [
  operation,
  server,
  String(connections),
  f(r.rps, 0),
  f(r.p50),
  f(r.p99),
  '',
  '',
  f(r.cpuUs ?? Number.NaN, 0),
  String(r.errors),
];

async function main(): Promise<void> {
  if (!existsSync(path.join(dist, 'main.js'))) throw new Error('services/api/dist is missing: run `npm run build` first');
  log(
    `benchmark: ${os.cpus().length} CPUs, node ${process.version}, load tool ${TOOL}, ${SECONDS} s per phase, ${CONNECTIONS} connections`,
  );
  const authors = await prepare();

  const apiPort = await freePort();
  // LOG_LEVEL info: the startup line, then nothing per request (the API logs no access lines).
  // The mutation rate limit is off: the benchmark is one client writing as fast as it can.
  const apiEnv = {
    DATABASE_URL,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    DB_POOL_MAX: String(POOL_MAX),
    DEFAULT_SYNC_MODE: 'QUEUED',
    RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
  };
  const api = await startProcess('api', [path.join(dist, 'main.js')], { ...apiEnv, PORT: String(apiPort) }, /API ready at/);

  const rows: string[][] = [];
  const summary: string[] = [];
  try {
    for (const [name, query] of Object.entries(OPERATIONS)) {
      if (!runs(name)) continue;
      const body = JSON.stringify({ query });
      const statement = readStatement({ query });
      if (!statement) throw new Error(`${name} is not compiled by the fast path`);
      const barePort = await freePort();
      const bare = await startProcess(
        'bare',
        [path.join(here, 'bare-server.mts')],
        {
          DATABASE_URL,
          BARE_PORT: String(barePort),
          BARE_SQL: statement.text,
          BARE_VALUES: JSON.stringify(statement.values),
          DB_POOL_MAX: String(POOL_MAX),
        },
        /listening/,
      );
      try {
        const ours = await post(apiPort, body);
        const theirs = await post(barePort, body);
        if (ours.text !== theirs.text) throw new Error(`${name}: our answer and the bare server's differ:\n${ours.text}\n${theirs.text}`);
        log(`${name}: ${Buffer.byteLength(ours.text)} bytes per answer, identical from both servers`);
        for (const [server, port, pid] of [
          ['bare', barePort, bare.pid],
          ['api', apiPort, api.pid],
        ] as const) {
          const one = await sequential(port, body, SAMPLES);
          rows.push(sequentialRow(name, server, one));
          const many = await load(port, body, CONNECTIONS, pid);
          rows.push(loadRow(name, server, CONNECTIONS, many));
        }
        const bareRps = Number(rows.at(-3)![3]);
        const apiRps = Number(rows.at(-1)![3]);
        const apiServerP50 = Number(rows.at(-2)![6]);
        const bareCpu = Number(rows.at(-3)![8]);
        const apiCpu = Number(rows.at(-1)![8]);
        summary.push(
          `${name}: throughput ${((100 * apiRps) / bareRps).toFixed(0)}% of the bare server's ` +
            `at ${CONNECTIONS} connections (target >= 70%); ` +
            `server CPU per request ${apiCpu.toFixed(0)} µs vs ${bareCpu.toFixed(0)} µs bare ` +
            `(${((100 * bareCpu) / apiCpu).toFixed(0)}% efficiency); ` +
            `median X-Process-Time ${apiServerP50.toFixed(3)} ms at 1 connection (target < 1 ms)`,
        );
      } finally {
        await stopProcess(bare);
      }
    }
    if (runs('CreatePost')) {
      // The same phases on a second API process that sends one statement per round trip
      // (DB_PIPELINE=false), for the effect of pipelining. Each starts from the same data: the
      // posts a phase adds (thousands, which alice's counts then cover) are removed before the next.
      const plainPort = await freePort();
      const plain = await startProcess(
        'api (DB_PIPELINE=false)',
        [path.join(dist, 'main.js')],
        { ...apiEnv, PORT: String(plainPort), DB_PIPELINE: 'false' },
        /API ready at/,
      );
      try {
        for (const [label, port, pid] of [
          ['api', apiPort, api.pid],
          ['api, DB_PIPELINE=false', plainPort, plain.pid],
        ] as const) {
          await removeBenchmarkPosts(authors);
          const body = JSON.stringify({ query: CREATE_POST_INLINE });
          const check = await post(port, body);
          if (check.status !== 200 || check.text.includes('errors')) throw new Error(`CreatePost failed: ${check.text}`);
          const one = await sequential(port, body, Math.min(SAMPLES, 500));
          rows.push(sequentialRow('CreatePost INLINE', label, one));
          const four = await load(port, body, 4, pid);
          rows.push(loadRow('CreatePost INLINE', label, 4, four));
          const many = await load(
            port,
            authors.map((a) => JSON.stringify({ query: createPostInline(a) })),
            4,
            pid,
          );
          rows.push(loadRow(`CreatePost INLINE, ${authors.length} authors`, label, 4, many));
          // QUEUED: the same write, its refresh enqueued in the transaction (no worker runs: the
          // jobs wait in the queue and are removed with the posts).
          await removeBenchmarkPosts(authors);
          const queuedBody = JSON.stringify({ query: CREATE_POST_QUEUED });
          const queuedOne = await sequential(port, queuedBody, Math.min(SAMPLES, 500));
          rows.push(sequentialRow('CreatePost QUEUED', label, queuedOne));
          const queuedFour = await load(port, queuedBody, 4, pid);
          rows.push(loadRow('CreatePost QUEUED', label, 4, queuedFour));
          summary.push(
            `CreatePost INLINE (the post, its event, its projection and its author's count in one statement), ${label}: p50 ${one.p50.toFixed(2)} ms at 1 connection; ` +
              `p99 ${four.p99.toFixed(2)} ms at 4 connections all writing as alice, ` +
              `${many.p99.toFixed(2)} ms writing as ${authors.length} authors in turn (target < 10 ms)`,
          );
        }
      } finally {
        await stopProcess(plain);
        // Not left behind either: with them, the newest posts (what GetRecentPosts reads) would be
        // the benchmark's, which have no comments, and a later run or an ad-hoc measurement against
        // this database would read a response a ninth the size of the dataset's.
        await removeBenchmarkPosts(authors);
      }
    }
  } finally {
    await stopProcess(api);
  }

  const header = [
    'operation',
    'server',
    'conns',
    'req/s',
    'p50 ms',
    'p99 ms',
    'X-Process-Time p50',
    'X-Process-Time p99',
    'server CPU µs/req',
    'errors',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  log('');
  log(line(header));
  log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const r of rows) log(line(r));
  log('');
  for (const s of summary) log(s);
  log(
    '(1-connection rows: sequential keep-alive requests from Node; many-connection rows: ' +
      (TOOL === 'wrk' ? 'wrk -t1' : 'autocannon') +
      '. Latencies are client-side.',
  );
  log(' Server CPU µs/req: user+system time of the server process during the many-connection phase, per request; it');
  log(' does not depend on what else the machine runs, unlike req/s and latencies.)');
  const load1 = os.loadavg()[0]!;
  log(
    `load average at the end: ${load1.toFixed(2)} on ${os.cpus().length} CPUs` +
      `${load1 > 2.5 ? ' (the machine was busy with other work: wall-clock figures are pessimistic)' : ''}`,
  );
}

// ---- the cost of tracing ----------------------------------------------------------------------

interface Collector {
  url: string;
  /** What it has received so far. */
  counts(): Promise<CollectorCounts>;
  close(): void;
}

/** Starts a stand-in OTLP/HTTP collector in a process of its own (./collector.mts, which says why). */
async function startCollector(): Promise<Collector> {
  const child = fork(path.join(here, 'collector.mts'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the OTLP collector exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () =>
      new Promise<CollectorCounts>((resolve) => {
        child.once('message', (m) => resolve(m as CollectorCounts));
        child.send('counts');
      }),
    close: () => child.disconnect(),
  };
}

async function tracingMain(): Promise<void> {
  if (!existsSync(path.join(dist, 'main.js'))) throw new Error('services/api/dist is missing: run `npm run build` first');
  const slices = Number(env.BENCH_SLICES ?? 20);
  log(
    `tracing cost: ${os.cpus().length} CPUs, node ${process.version}, ${TOOL}, ` +
      `${slices} slices of ${SLICE_SAMPLES} sequential requests and ${SLICE_SECONDS} s at ${CONNECTIONS} connections per process`,
  );
  await prepare();
  // The response cache off: every read runs its statement, whose span is part of what is measured.
  const common = { DATABASE_URL, HOST: '127.0.0.1', LOG_LEVEL: 'info', DB_POOL_MAX: String(POOL_MAX), RESPONSE_CACHE: 'off' };
  // No process inherits an OTLP endpoint or protocol from the caller's environment: "off" means off.
  const noOtel = {
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
    OTEL_EXPORTER_OTLP_PROTOCOL: '',
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: '',
  };
  type Variant = 'off' | 'on' | 'json' | 'sampled';
  const variants: { name: Variant; label: string; env: Record<string, string> }[] = [
    { name: 'off', label: 'tracing off', env: {} },
    // The default: OTLP protobuf, through the SDK's protobuf exporter.
    { name: 'on', label: 'tracing on, every trace', env: {} },
    // The same spans through the SDK's own OTLP/JSON exporter, for comparison.
    { name: 'json', label: 'every trace, SDK JSON exporter', env: { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' } },
    // The production setting we document: a tenth of the traces sampled (parent-based, so a sampled
    // mutation's trace stays whole across the queue).
    {
      name: 'sampled',
      label: 'tracing on, 10% sampled',
      env: { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' },
    },
  ];
  // One collector per traced process, so that each one's spans can be counted against its requests.
  const collectors = new Map<Variant, Collector>();
  const received = new Map<Variant, CollectorCounts>();
  const processes = new Map<Variant, { child: ChildProcess; port: number }>();
  // Per slice: throughput at 1 and at CONNECTIONS connections; over all slices: every server time
  // measured at 1 connection, CPU ticks and requests at CONNECTIONS.
  const results = new Map<Variant, { one: number[]; many: number[]; server: number[]; ticks: number; requests: number }>();
  const sent = new Map<Variant, number>();
  const body = JSON.stringify({ query: OPERATIONS.GetRecentPosts, operationName: 'GetRecentPosts' });
  try {
    for (const v of variants) {
      const port = await freePort();
      const otel: Record<string, string> = { ...noOtel, ...v.env };
      if (v.name !== 'off') {
        const collector = await startCollector();
        collectors.set(v.name, collector);
        otel.OTEL_EXPORTER_OTLP_ENDPOINT = collector.url;
      }
      const child = await startProcess(
        `api (${v.label})`,
        [path.join(dist, 'main.js')],
        { ...common, ...otel, PORT: String(port) },
        /API ready at/,
      );
      processes.set(v.name, { child, port });
      results.set(v.name, { one: [], many: [], server: [], ticks: 0, requests: 0 });
      sent.set(v.name, 0);
    }
    const first = await post(processes.get('off')!.port, body);
    for (const v of variants) {
      const answer = await post(processes.get(v.name)!.port, body);
      sent.set(v.name, sent.get(v.name)! + 1);
      if (answer.text !== first.text || answer.status !== 200)
        throw new Error(`the processes answer differently:\n${first.text}\n${answer.text}`);
    }
    // Warm-up: JIT, pools, prepared statements, the exporters' first batches.
    for (const v of variants) {
      const { child, port } = processes.get(v.name)!;
      const one = await sequential(port, body, 500, 500);
      const many = await load(port, body, CONNECTIONS, child.pid, { seconds: 2, warmUpSeconds: 0 });
      sent.set(v.name, sent.get(v.name)! + one.sent + many.sent);
    }
    // Short slices, the processes in turn: a slow spell of the machine (they last seconds here)
    // falls on all of them alike, rather than on whichever ran a long phase at the time.
    for (let slice = 1; slice <= slices; slice += 1) {
      const order = slice % 2 ? variants : [...variants].reverse();
      const line: string[] = [];
      for (const v of order) {
        const { child, port } = processes.get(v.name)!;
        const one = await sequential(port, body, SLICE_SAMPLES, 0);
        const many = await load(port, body, CONNECTIONS, child.pid, { seconds: SLICE_SECONDS, warmUpSeconds: 0 });
        const r = results.get(v.name)!;
        r.one.push(one.rps);
        r.server.push(...one.server);
        r.many.push(many.rps);
        r.ticks += many.cpuTicks;
        r.requests += many.requests;
        sent.set(v.name, sent.get(v.name)! + one.sent + many.sent);
        line.push(`${v.name} ${one.rps.toFixed(0)}/${many.rps.toFixed(0)}`);
      }
      log(`slice ${String(slice).padStart(2)} (req/s at 1 / ${CONNECTIONS} conns): ${line.join(', ')}`);
    }
  } finally {
    // Stopped before the collectors are read and closed: a traced process flushes its last spans on SIGTERM.
    for (const { child } of processes.values()) await stopProcess(child);
    for (const [name, c] of collectors) received.set(name, await c.counts());
    for (const c of collectors.values()) c.close();
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const off = results.get('off')!;
  // Throughput: the median over slices of each slice's change against tracing off in the same
  // slice (seconds apart). Server time and CPU: over all of a process's requests.
  const paired = (k: 'one' | 'many', v: Variant) => median(results.get(v)![k].map((x, i) => (100 * x) / off[k][i]! - 100));
  const p50 = (v: Variant) => median(results.get(v)!.server);
  const cpu = (v: Variant) => (results.get(v)!.ticks * TICK_US) / results.get(v)!.requests;
  const pctChange = (x: number, base: number) => `${((100 * x) / base - 100).toFixed(1)}%`;
  const traced = variants.filter((v) => v.name !== 'off');
  const cells = (f: (v: Variant) => string) => traced.map((v) => f(v.name)).join(' | ');
  log('');
  log(`| GetRecentPosts (${slices} slices) | tracing off | ${traced.map((v) => v.label).join(' | ')} |`);
  log(`|---|---:|${traced.map(() => '---:').join('|')}|`);
  for (const k of ['one', 'many'] as const) {
    const label = k === 'one' ? 'req/s, 1 connection' : `req/s, ${CONNECTIONS} connections`;
    log(
      `| ${label} (median of slices; change: median of paired slices) | ${median(off[k]).toFixed(0)} | ` +
        `${cells((v) => `${median(results.get(v)![k]).toFixed(0)} (${paired(k, v).toFixed(1)}%)`)} |`,
    );
  }
  log(
    `| X-Process-Time p50 ms, 1 connection | ${p50('off').toFixed(3)} | ` +
      `${cells((v) => `${p50(v).toFixed(3)} (${pctChange(p50(v), p50('off'))})`)} |`,
  );
  log(
    `| server CPU µs per request, ${CONNECTIONS} connections | ${cpu('off').toFixed(0)} | ` +
      `${cells((v) => `${cpu(v).toFixed(0)} (${pctChange(cpu(v), cpu('off'))})`)} |`,
  );
  log('');
  for (const v of traced) {
    const c = received.get(v.name)!;
    const n = sent.get(v.name)!;
    log(
      `${v.label}: ${n} requests, the collector received ${c.spans} spans (${(c.spans / n).toFixed(2)} per request) ` +
        `in ${c.exports} exports, ${(c.bytes / 1e6).toFixed(1)} MB`,
    );
  }
  log('(target: throughput less than 15% lower with tracing on)');
  const load1 = os.loadavg()[0]!;
  log(`load average at the end: ${load1.toFixed(2)} on ${os.cpus().length} CPUs`);
}

await (process.argv.includes('--tracing') ? tracingMain() : main());
agent.destroy();
