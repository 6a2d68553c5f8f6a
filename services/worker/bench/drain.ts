/**
 * Worker benchmark (prints figures; not a test). `npm run bench:worker` at the root.
 *
 *   1. Drain: a backlog of BENCH_JOBS (100,000) sync jobs on a realistic dataset (1,000 users,
 *      10,000 posts, 50,000 comments), drained by 1 and then 2 worker PROCESSES
 *      (node services/worker/dist/main.js). Reports jobs/s and entity syncs/s, where an entity sync
 *      is one entity refreshed by one committed batch (the sum of sync_log.entity_count).
 *   2. Lag: BENCH_RATE (500) writes/s for BENCH_SECONDS (60) s, each an UPDATE of tb_* and its
 *      enqueue in one transaction (what a QUEUED mutation does), drained by one worker process.
 *      Reports lag p50/p95/p99 from sync_lag and the queue depth sampled every second.
 *
 * Runs in a database of its own (blog_bench_<pid>) on DATABASE_URL's server (default
 * postgres://postgres@127.0.0.1:5432/postgres), dropped at the end unless BENCH_KEEP_DB=1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  createBoss,
  createPool,
  ensureDatabaseExists,
  MODEL,
  lagPercentilesSince,
  planSync,
  prepareDatabase,
  SYNC_QUEUE,
  SyncEngine,
  SyncQueue,
  syncQueueDepth,
  withDatabase,
  withTransaction,
  type SyncJobData,
} from '@blog/shared';
import pg from 'pg';

const env = process.env;
const ADMIN_URL = env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const JOBS = Number(env.BENCH_JOBS ?? 100_000);
const RATE = Number(env.BENCH_RATE ?? 500);
const SECONDS = Number(env.BENCH_SECONDS ?? 60);
const BATCH = env.BENCH_BATCH_SIZE ?? '100';
const WORKER_LOG_LEVEL = env.BENCH_WORKER_LOG_LEVEL ?? 'warn';
// Batches each worker process runs at once (WORKER_CONCURRENCY of the workers it starts).
const WORKER_CONCURRENCY = env.BENCH_WORKER_CONCURRENCY ?? '1';
const DATA = { users: 1000, posts: 10_000, comments: 50_000 };
const MAIN = path.join(__dirname, '..', '..', 'dist', 'main.js');

const out = (s: string) => process.stdout.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const dbName = `blog_bench_${process.pid}`;
  const url = withDatabase(ADMIN_URL, dbName);
  await ensureDatabaseExists(url);
  const pool = createPool(url, { applicationName: 'blog-bench', max: 24 });
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');
  out(`machine: ${os.cpus().length} CPUs, load average ${load()} at start`);
  try {
    await prepareDatabase(url, { seedWhenEmpty: false });
    let t = Date.now();
    await createDataset(pool);
    out(
      `dataset: ${DATA.users} users, ${DATA.posts} posts, ${DATA.comments} comments, ` +
        `projected in ${((Date.now() - t) / 1000).toFixed(1)} s`,
    );

    const drains: DrainResult[] = [];
    for (const workers of env.BENCH_SKIP_DRAIN === '1' ? [] : [1, 2]) {
      t = Date.now();
      await enqueueBacklog(pool, url);
      out(`backlog: ${JOBS} jobs enqueued in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      drains.push(await drain(pool, url, workers));
      out(`drained with ${workers} worker(s)`);
    }
    const lag = await steadyLoad(pool, url);

    out('');
    out(`## Drain: ${JOBS.toLocaleString('en')} jobs, batch size ${BATCH}`);
    out('| workers | seconds | jobs/s | entity syncs/s | batches | avg entities/batch | worker CPU |');
    out('|---|---|---|---|---|---|---|');
    for (const d of drains) {
      out(
        `| ${d.workers} | ${d.seconds.toFixed(1)} | ${Math.round(d.jobs / d.seconds).toLocaleString('en')} | ${Math.round(
          d.entities / d.seconds,
        ).toLocaleString('en')} | ${d.batches.toLocaleString('en')} | ${Math.round(d.entities / d.batches)} | ${Math.round(
          (100 * d.workerCpu) / d.seconds,
        )}% of one core |`,
      );
    }
    out('');
    out(`## Lag: ${RATE} writes/s for ${SECONDS} s, 1 worker`);
    out(`writes committed: ${lag.writes} (${(lag.writes / lag.seconds).toFixed(0)}/s achieved); lag samples: ${lag.report?.samples ?? 0}`);
    out('| p50 ms | p95 ms | p99 ms | max ms | avg ms |');
    out('|---|---|---|---|---|');
    const r = lag.report;
    out(r ? `| ${r.p50_ms} | ${r.p95_ms} | ${r.p99_ms} | ${r.max_ms} | ${r.avg_ms} |` : '| - | - | - | - | - |');
    out('');
    out(`queue depth (ready + active jobs) every 5 s: ${lag.depth.filter((_, i) => i % 5 === 4).join(', ')}`);
    out(
      `queue depth max over ${lag.depth.length} one-second samples: ${Math.max(...lag.depth)}; at the end of the load: ${lag.depth.at(-1)}`,
    );
    out(`load average at the end: ${load()} (other processes on the machine compete for the same CPUs)`);
  } finally {
    await pool.end();
    if (env.BENCH_KEEP_DB !== '1') {
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(dbName)} WITH (FORCE)`);
      await admin.end();
    }
  }
}

/** 1,000 users, 10,000 posts, 50,000 comments, set-based, then a full projection. */
async function createDataset(pool: pg.Pool): Promise<void> {
  await withTransaction(pool, async (c) => {
    await c.query(
      `INSERT INTO tb_user (email, username, full_name, bio)
       SELECT 'user' || g || '@example.com', 'user_' || g, 'User Number ' || g, 'Bio of user ' || g FROM generate_series(1, $1) g`,
      [DATA.users],
    );
    await c.query(
      `INSERT INTO tb_post (author_id, title, content, published)
       SELECT u.ids[1 + (g::bigint * 7919) % cardinality(u.ids)], 'Post title ' || g, repeat('Post content ' || g || '. ', 20), g % 3 <> 0
         FROM generate_series(1, $1) g, (SELECT array_agg(id ORDER BY id) AS ids FROM tb_user) u`,
      [DATA.posts],
    );
    await c.query(
      `INSERT INTO tb_comment (post_id, author_id, content)
       SELECT p.ids[1 + (g::bigint * 104729) % cardinality(p.ids)], u.ids[1 + (g::bigint * 31) % cardinality(u.ids)],
              'Comment number ' || g || ' with some text'
         FROM generate_series(1, $1) g,
              (SELECT array_agg(id ORDER BY id) AS ids FROM tb_post) p,
              (SELECT array_agg(id ORDER BY id) AS ids FROM tb_user) u`,
      [DATA.comments],
    );
  });
  await new SyncEngine(pool).all();
  // A live database has planner statistics and a current visibility map (autovacuum's work); a
  // bulk load has neither until autovacuum gets to it. Without them the projections' counts read
  // the heap instead of index-only scans (measured: 55 ms instead of 17 ms for 100 users).
  await pool.query(`VACUUM ANALYZE ${MODEL.flatMap((e) => [e.table, e.view]).join(', ')}`);
}

/**
 * JOBS jobs, each the plan of one write as the dependency map makes it: 75% comment edits
 * ({comment, its post, its author}), 25% post edits ({post, its author, its comments}), on random
 * entities. Every tb_* row's updated_at is bumped first (then VACUUM ANALYZE, as autovacuum would
 * have run while such a backlog built up), so each entity's first sync in the run
 * rewrites its projection (the jobs stand for real writes).
 */
async function enqueueBacklog(pool: pg.Pool, url: string): Promise<void> {
  await pool.query('DELETE FROM sync_outbox');
  await pool.query(`DELETE FROM pgboss.job WHERE name = $1`, [SYNC_QUEUE]);
  await pool.query(`UPDATE tb_comment SET updated_at = now()`);
  await pool.query(`UPDATE tb_post SET updated_at = now()`);
  // The backlog stands for writes made over time, which autovacuum would have followed.
  await pool.query('VACUUM ANALYZE tb_post, tb_comment');
  const nComment = Math.round(JOBS * 0.75);
  const { rows } = await pool.query<{ plan: SyncJobData['plan'] }>(
    `WITH c AS (SELECT array_agg(id) AS ids, array_agg(post_id) AS posts, array_agg(author_id) AS authors FROM tb_comment),
          p AS (SELECT array_agg(id) AS ids, array_agg(author_id) AS authors FROM tb_post),
          pc AS (SELECT post_id, jsonb_agg(id) AS ids FROM tb_comment GROUP BY post_id)
     (SELECT jsonb_build_object('user', jsonb_build_array(c.authors[r.k]), 'post', jsonb_build_array(c.posts[r.k]),
                                'comment', jsonb_build_array(c.ids[r.k])) AS plan
        FROM (SELECT 1 + floor(random() * $3)::int AS k FROM generate_series(1, $1)) r, c)
     UNION ALL
     (SELECT jsonb_build_object('user', jsonb_build_array(p.authors[r.k]), 'post', jsonb_build_array(p.ids[r.k]),
                                'comment', coalesce(pc.ids, '[]'::jsonb)) AS plan
        FROM (SELECT 1 + floor(random() * $4)::int AS k FROM generate_series(1, $2)) r
        CROSS JOIN p
        LEFT JOIN pc ON pc.post_id = p.ids[r.k])`,
    [nComment, JOBS - nComment, DATA.comments, DATA.posts],
  );
  const boss = createBoss({ url, applicationName: 'blog-bench', max: 4, maintenance: false });
  await boss.start();
  try {
    const now = Date.now();
    for (let i = 0; i < rows.length; i += 5000) {
      const jobs = rows
        .slice(i, i + 5000)
        .map((r) => ({ data: { v: 1, plan: r.plan, mode: 'QUEUED', enqueuedAt: now } satisfies SyncJobData, priority: 10 }));
      await boss.insert(SYNC_QUEUE, jobs);
    }
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
  await pool.query('ANALYZE pgboss.job');
}

interface DrainResult {
  workers: number;
  jobs: number;
  seconds: number;
  entities: number;
  batches: number;
  /** CPU seconds the worker processes used (start-up included). */
  workerCpu: number;
}

function spawnWorker(url: string, i: number): ChildProcess {
  return spawn(process.execPath, [MAIN], {
    env: {
      PATH: env.PATH ?? '',
      DATABASE_URL: url,
      WORKER_HEALTH_PORT: '0',
      WORKER_BATCH_SIZE: BATCH,
      WORKER_CONCURRENCY,
      WORKER_NAME: `blog-bench-worker-${i}`,
      LOG_LEVEL: WORKER_LOG_LEVEL,
    },
    stdio: ['ignore', WORKER_LOG_LEVEL === 'warn' ? 'ignore' : 'inherit', 'inherit'],
  });
}

async function stopWorkers(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
        }),
    ),
  );
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
  } catch {
    return NaN;
  }
}

async function drain(pool: pg.Pool, url: string, workers: number): Promise<DrainResult> {
  const children = Array.from({ length: workers }, (_, i) => spawnWorker(url, i));
  let workerCpu = 0;
  try {
    const deadline = Date.now() + 15 * 60_000;
    for (;;) {
      const d = await syncQueueDepth(pool);
      if (d.ready + d.active + d.scheduled === 0) break;
      if (Date.now() > deadline) throw new Error('drain did not finish in 15 minutes');
      await sleep(200);
    }
    workerCpu = children.reduce((sum, c) => sum + cpuSeconds(c.pid), 0);
  } finally {
    await stopWorkers(children);
  }
  // The drain window from pg-boss's own timestamps: first claim to last completion.
  const { rows } = await pool.query<{ jobs: number; started: Date; finished: Date }>(
    `SELECT count(*)::int AS jobs, min(started_on) AS started, max(completed_on) AS finished
       FROM pgboss.job WHERE name = $1 AND state = 'completed'`,
    [SYNC_QUEUE],
  );
  const w = rows[0]!;
  const { rows: log } = await pool.query<{ entities: number; batches: number }>(
    // Every job's plan holds a post, so each committed batch wrote exactly one 'post' row.
    `SELECT coalesce(sum(entity_count), 0)::int AS entities, (count(*) FILTER (WHERE entity_type = 'post'))::int AS batches
       FROM sync_log WHERE success AND operation = 'incremental' AND created_at BETWEEN $1 AND $2`,
    [w.started, w.finished],
  );
  return {
    workers,
    jobs: w.jobs,
    seconds: (w.finished.getTime() - w.started.getTime()) / 1000,
    entities: log[0]!.entities,
    batches: log[0]!.batches,
    workerCpu,
  };
}

/** RATE writes/s for SECONDS s through the real write path; lag and queue depth while it runs. */
async function steadyLoad(
  pool: pg.Pool,
  url: string,
): Promise<{ writes: number; seconds: number; report: Awaited<ReturnType<typeof lagPercentilesSince>>['QUEUED']; depth: number[] }> {
  await pool.query('DELETE FROM sync_outbox');
  await pool.query(`DELETE FROM pgboss.job WHERE name = $1`, [SYNC_QUEUE]);
  await pool.query(`DELETE FROM sync_lag`);
  await pool.query(`VACUUM ANALYZE ${MODEL.flatMap((e) => [e.table, e.view]).join(', ')}, pgboss.job`);
  const { rows: comments } = await pool.query<{ id: string }>(`SELECT id FROM tb_comment ORDER BY random() LIMIT 20000`);
  const { rows: posts } = await pool.query<{ id: string }>(`SELECT id FROM tb_post ORDER BY random() LIMIT 5000`);
  const boss = createBoss({ url, applicationName: 'blog-bench-writer', max: 4, maintenance: false });
  await boss.start();
  const queue = new SyncQueue(boss, pool);
  const worker = spawnWorker(url, 0);
  await sleep(1500); // let it connect
  const since = new Date();
  const depth: number[] = [];
  let writes = 0;
  let failures = 0;
  const inFlight = new Set<Promise<void>>();
  const write = async (i: number) => {
    try {
      await withTransaction(pool, async (c) => {
        if (i % 4 === 3) {
          const id = posts[i % posts.length]!.id;
          await c.query(`UPDATE tb_post SET title = $2, updated_at = now() WHERE id = $1`, [id, `Load title ${i}`]);
          await queue.enqueue(c, await planSync(c, { post: [id] }), { mode: 'QUEUED' });
        } else {
          const id = comments[i % comments.length]!.id;
          await c.query(`UPDATE tb_comment SET content = $2, updated_at = now() WHERE id = $1`, [id, `Load comment ${i}`]);
          await queue.enqueue(c, await planSync(c, { comment: [id] }), { mode: 'QUEUED' });
        }
      });
      writes += 1;
    } catch {
      failures += 1;
    }
  };
  const started = Date.now();
  const sampler = setInterval(() => {
    void syncQueueDepth(pool).then((d) => depth.push(d.ready + d.active));
  }, 1000);
  // Paced: every 10 ms, start the writes due by now (RATE per second), at most 20 in flight.
  let issued = 0;
  while (Date.now() - started < SECONDS * 1000) {
    const due = Math.floor(((Date.now() - started) / 1000) * RATE);
    while (issued < due && inFlight.size < 20) {
      const p = write(issued++).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await sleep(10);
  }
  await Promise.all(inFlight);
  const seconds = (Date.now() - started) / 1000;
  clearInterval(sampler);
  for (let i = 0; i < 100; i++) {
    const d = await syncQueueDepth(pool);
    if (d.ready + d.active === 0) break;
    await sleep(100);
  }
  await stopWorkers([worker]);
  await boss.stop({ graceful: false, close: true });
  if (failures) out(`(${failures} writes failed)`);
  const report = (await lagPercentilesSince(pool, new Date(since.getTime() - 60_000))).QUEUED;
  return { writes, seconds, report, depth };
}

main().catch((err: unknown) => {
  process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
