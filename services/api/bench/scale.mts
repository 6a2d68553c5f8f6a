/**
 * Benchmark: cost that does not grow with the data. Prints one table per scenario, with the
 * machine's load next to it; it is not a test.
 *
 *   npm run bench:scale
 *
 *   1. one post with 10, 1,000, 10,000 and 100,000 comments: INLINE createComment on it (p50/p99 of
 *      BENCH_SCALE_SAMPLES sequential requests) and the seed's GetRecentPosts (p50, answer bytes);
 *   2. BENCH_CONNECTIONS (16) connections of INLINE createComment: all on one post, against spread
 *      over 1,000 posts (commenters spread over 1,000 users in both), and all by one author;
 *   3. `npm run sync -- rebuild` of BENCH_SCALE_POSTS posts and BENCH_SCALE_COMMENTS comments: duration,
 *      rows/s, the rebuilding process's peak memory, INLINE writers during the rebuild against idle;
 *   4. renaming the user who wrote the 100,000 comments: the command's latency, the time until a
 *      worker has synced all of it, and `sync verify` at the end.
 *
 * Environment: BENCH_SCALE_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/blog_bench_scale;
 * dropped and made again on every run), BENCH_SCALE_STEPS (10,1000,10000,100000), BENCH_SCALE_POSTS
 * (100000), BENCH_SCALE_COMMENTS (1000000), BENCH_SCALE_SAMPLES (50), BENCH_SECONDS (10),
 * BENCH_SCALE_ONLY=1,2,3,4 (run only these scenarios; 4 needs 1's data).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import shared from '@blog/shared';
import type pg from 'pg';
import {
  API_MAIN,
  f,
  load,
  loadAvg,
  log,
  onlyParts,
  pct,
  post,
  SECONDS,
  sequential,
  startProcess,
  stopProcess,
  SYNC_CLI,
  WORKER_MAIN,
} from './harness.mts';

const env = process.env;

const DATABASE_URL = env.BENCH_SCALE_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/blog_bench_scale';
const STEPS = (env.BENCH_SCALE_STEPS ?? '10,1000,10000,100000').split(',').map(Number);
const POSTS = Number(env.BENCH_SCALE_POSTS ?? 100_000);
const COMMENTS = Number(env.BENCH_SCALE_COMMENTS ?? 1_000_000);
const SAMPLES = Number(env.BENCH_SCALE_SAMPLES ?? 50);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 16);
const runs = onlyParts(env.BENCH_SCALE_ONLY);
/** Users and posts of the base data set (commenters and posts of scenario 2). */
const BASE = 1000;
/** Ids refreshed per transaction while loading (the engine's set-based batches). */
const LOAD_CHUNK = 5000;

const table = (header: string[], rows: string[][]) => {
  log(`| ${header.join(' | ')} |`);
  log(`|${header.map((_, i) => (i ? '---:' : '---')).join('|')}|`);
  for (const r of rows) log(`| ${r.join(' | ')} |`);
};

// ---- data ---------------------------------------------------------------------------------------

async function freshDatabase(): Promise<void> {
  const admin = shared.createPool(shared.withDatabase(DATABASE_URL, 'postgres'), { applicationName: 'blog-bench-scale', max: 1 });
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${shared.databaseName(DATABASE_URL)} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  await shared.ensureDatabaseExists(DATABASE_URL);
  await shared.prepareDatabase(DATABASE_URL, { seedWhenEmpty: false });
}

/** BASE users and BASE posts (one each), a prolific user, and the big post; all projected. */
async function baseData(pool: pg.Pool): Promise<{ users: string[]; posts: string[]; prolific: string; big: string }> {
  await pool.query(
    `INSERT INTO tb_user (id, email, username, full_name, created_at, updated_at)
     SELECT md5('scale-user' || i)::uuid, 'scale' || i || '@example.test', 'scale_' || i, 'Scale User ' || i, now(), now()
       FROM generate_series(0, $1::int) i`,
    [BASE],
  );
  await pool.query(
    `INSERT INTO tb_post (id, author_id, title, content, published, created_at, updated_at)
     SELECT md5('scale-post' || i)::uuid, md5('scale-user' || i)::uuid, 'Post ' || i, repeat('Words about sync. ', 40), true,
            now() - i * interval '1 minute', now() - i * interval '1 minute'
       FROM generate_series(1, $1::int) i`,
    [BASE],
  );
  const id = (kind: string, i: number) =>
    pool.query<{ id: string }>(`SELECT md5($1)::uuid AS id`, [`scale-${kind}${i}`]).then((r) => r.rows[0]!.id);
  const prolific = await id('user', 0);
  // The big post, the newest: GetRecentPosts always reads it.
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO tb_post (author_id, title, content, published, created_at, updated_at)
     VALUES ($1, 'The busy post', repeat('A post everyone comments on. ', 40), true, now(), now()) RETURNING id`,
    [await id('user', 1)],
  );
  await shared.withTransaction(pool, (client) => shared.createAllKeptCounts(client));
  await new shared.SyncEngine(pool).all();
  const users = (await pool.query<{ id: string }>(`SELECT id FROM tb_user WHERE id <> $1 ORDER BY id`, [prolific])).rows.map((r) => r.id);
  const posts = (await pool.query<{ id: string }>(`SELECT id FROM tb_post WHERE title LIKE 'Post %' ORDER BY id`)).rows.map((r) => r.id);
  return { users, posts, prolific, big: rows[0]!.id };
}

/** Grows the big post to `total` comments by the prolific user (older than any a benchmark adds), projected and counted. */
async function growComments(pool: pg.Pool, post: string, author: string, total: number): Promise<void> {
  const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tb_comment WHERE post_id = $1', [post]);
  const missing = total - rows[0]!.n;
  if (missing <= 0) return;
  const { rows: added } = await pool.query<{ id: string }>(
    `INSERT INTO tb_comment (post_id, author_id, content, created_at, updated_at)
     SELECT $1, $2, 'Comment ' || i || ' on a busy post.', now() - interval '2 days' + i * interval '1 millisecond', now()
       FROM generate_series(1, $3::int) i
     RETURNING id`,
    [post, author, missing],
  );
  const sync = new shared.SyncEngine(pool);
  for (let i = 0; i < added.length; i += LOAD_CHUNK) await sync.refresh({ comment: added.slice(i, i + LOAD_CHUNK).map((r) => r.id) });
  await shared.withTransaction(pool, async (client) => {
    await shared.recountKeptCounts(client, 'post', [post]);
    await shared.recountKeptCounts(client, 'user', [author]);
  });
  await pool.query('ANALYZE tb_comment, tv_comment');
}

const createComment = (postId: string, authorId: string) =>
  JSON.stringify({
    query: `mutation { createComment(postId: "${postId}", authorId: "${authorId}", content: "Measured.", sync: INLINE) { id } }`,
  });

// ---- scenarios ----------------------------------------------------------------------------------

async function growing(pool: pg.Pool, port: number, d: Awaited<ReturnType<typeof baseData>>): Promise<void> {
  log(`\n## 1. One post, its comments growing (${SAMPLES} sequential requests per figure)\n`);
  const read = JSON.stringify({ query: shared.SEED_OPERATIONS.GetRecentPosts });
  const rows: string[][] = [];
  const first: { write: number; read: number; bytes: number }[] = [];
  for (const n of STEPS) {
    const started = performance.now();
    await growComments(pool, d.big, d.prolific, n);
    const loadedIn = (performance.now() - started) / 1000;
    const write = await sequential(port, createComment(d.big, d.users[0]!), SAMPLES, 10);
    const reads = await sequential(port, read, SAMPLES, 10);
    const bytes = Buffer.byteLength((await post(port, read)).text);
    first.push({ write: write.p50, read: reads.p50, bytes });
    rows.push([
      n.toLocaleString('en'),
      f(write.p50),
      f(write.p99),
      f(reads.p50),
      bytes.toLocaleString('en'),
      `${f(loadedIn, 1)} s`,
      loadAvg(),
    ]);
  }
  table(
    ['comments on the post', 'INLINE createComment p50 ms', 'p99 ms', 'GetRecentPosts p50 ms', 'answer bytes', '(loading)', 'machine'],
    rows,
  );
  const a = first[0]!;
  const z = first.at(-1)!;
  log(
    `\nlargest against smallest: write p50 ${f(z.write / a.write)}x, read p50 ${f(z.read / a.read)}x, bytes ${f(z.bytes / a.bytes)}x ` +
      '(targets: 1.5x, 1.5x, the same)',
  );
}

async function hotPost(port: number, pid: number | undefined, d: Awaited<ReturnType<typeof baseData>>): Promise<void> {
  log(`\n## 2. ${CONNECTIONS} connections of INLINE createComment, ${SECONDS} s each\n`);
  const onOne = d.users.map((u) => createComment(d.posts[0]!, u));
  const spread = d.users.map((u, i) => createComment(d.posts[i % d.posts.length]!, u));
  // One author writing fast: every comment by one user, on posts spread (that user's counts row is the hot one).
  const oneAuthor = d.posts.map((p) => createComment(p, d.users[0]!));
  const rows: string[][] = [];
  const rps: number[] = [];
  for (const [name, bodies] of [
    ['all on one post', onOne],
    [`spread over ${d.posts.length.toLocaleString('en')} posts`, spread],
    ['all by one author, spread over the posts', oneAuthor],
  ] as const) {
    const r = await load(port, [...bodies], CONNECTIONS, pid);
    rps.push(r.rps);
    rows.push([name, f(r.rps, 0), f(r.p50), f(r.p99), String(r.errors), loadAvg()]);
  }
  table(['comments', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'machine'], rows);
  log(
    `\none post against spread: ${f(rps[0]! / rps[1]!)}x the throughput (target: at least 0.5x); ` +
      `one author against spread: ${f(rps[2]! / rps[1]!)}x`,
  );
}

async function rename(pool: pg.Pool, port: number, d: Awaited<ReturnType<typeof baseData>>): Promise<void> {
  const { rows: counted } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tb_comment WHERE author_id = $1', [d.prolific]);
  log(`\n## 4. Renaming the user who wrote ${counted[0]!.n.toLocaleString('en')} comments (INLINE), one worker\n`);
  const worker = await startProcess(
    'worker',
    [WORKER_MAIN],
    { DATABASE_URL, WORKER_HEALTH_PORT: '0', LOG_LEVEL: 'info' },
    /projection worker started/,
  );
  try {
    // A rename of a user with a few rows first: the API's connections have planned the statements.
    await post(port, JSON.stringify({ query: `mutation { updateUser(id: "${d.users[0]}", fullName: "Warm Up", sync: INLINE) { id } }` }));
    const name = `Renamed ${Date.now()}`;
    const started = performance.now();
    const answer = await post(
      port,
      JSON.stringify({ query: `mutation { updateUser(id: "${d.prolific}", fullName: "${name}", sync: INLINE) { id fullName } }` }),
    );
    const commandMs = performance.now() - started;
    if (answer.status !== 200) throw new Error(`the rename failed: ${answer.text}`);
    const stale = async () =>
      (
        await pool.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM tv_comment WHERE author_id = $1 AND data->'author'->>'fullName' <> $2`,
          [d.prolific, name],
        )
      ).rows[0]!.n;
    while ((await stale()) > 0 || (await shared.syncQueueDepth(pool)).ready + (await shared.syncQueueDepth(pool)).active > 0) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const syncedMs = performance.now() - started;
    const verify = await new shared.SyncEngine(pool).verify();
    table(
      ['command ms', 'answer says', 'all synced after s', 'verify drift', 'machine'],
      [[f(commandMs), JSON.stringify(JSON.parse(answer.text).extensions ?? {}), f(syncedMs / 1000, 1), String(verify.total), loadAvg()]],
    );
    log('\n(targets: the command under 50 ms, zero drift)');
  } finally {
    await stopProcess(worker);
  }
}

async function rebuild(pool: pg.Pool, port: number, d: Awaited<ReturnType<typeof baseData>>): Promise<void> {
  const { rows: sizes } = await pool.query<{ posts: number; comments: number }>(
    'SELECT (SELECT count(*) FROM tb_post)::int AS posts, (SELECT count(*) FROM tb_comment)::int AS comments',
  );
  const addPosts = Math.max(0, POSTS - sizes[0]!.posts);
  const addComments = Math.max(0, COMMENTS - sizes[0]!.comments);
  log(`\n## 3. Rebuild of ${POSTS.toLocaleString('en')} posts and ${COMMENTS.toLocaleString('en')} comments\n`);
  const loadStarted = performance.now();
  // The rows are written to tb_* only: the rebuild projects them.
  await pool.query(
    `INSERT INTO tb_post (author_id, title, content, published, created_at, updated_at)
     SELECT (SELECT id FROM tb_user ORDER BY id OFFSET i % 1000 LIMIT 1), 'Bulk ' || i, repeat('Bulk words. ', 50), i % 10 <> 0,
            now() - interval '30 days' + i * interval '1 second', now()
       FROM generate_series(1, $1::int) i`,
    [addPosts],
  );
  await pool.query(
    `WITH p AS (SELECT array_agg(id) AS ids FROM tb_post), u AS (SELECT array_agg(id) AS ids FROM tb_user)
     INSERT INTO tb_comment (post_id, author_id, content, created_at, updated_at)
     SELECT p.ids[1 + (i % cardinality(p.ids))], u.ids[1 + ((i * 7) % cardinality(u.ids))], 'Bulk comment ' || i,
            now() - interval '20 days' + i * interval '1 second', now()
       FROM p, u, generate_series(1, $1::int) i`,
    [addComments],
  );
  await pool.query(`INSERT INTO tb_post_stats (post_id) SELECT id FROM tb_post ON CONFLICT DO NOTHING`);
  await pool.query('VACUUM ANALYZE');
  log(
    `(loaded ${(addPosts + addComments).toLocaleString('en')} rows in ${f((performance.now() - loadStarted) / 1000, 1)} s; ` +
      'the rebuild projects them and recounts the kept counts)\n',
  );

  const writes = (i: number) => createComment(d.posts[i % d.posts.length]!, d.users[i % d.users.length]!);
  /** Sequential INLINE writes until `until()`: their latencies, sorted, and how many failed. */
  const writer = async (until: () => boolean): Promise<{ ms: number[]; failed: number }> => {
    const ms: number[] = [];
    let failed = 0;
    for (let i = 0; !until(); i += 1) {
      const r = await post(port, writes(i));
      if (r.status !== 200 || (JSON.parse(r.text) as { errors?: unknown }).errors) failed += 1;
      ms.push(r.ms);
    }
    return { ms: ms.sort((a, b) => a - b), failed };
  };
  const idleUntil = performance.now() + 5000;
  const { ms: idle } = await writer(() => performance.now() > idleUntil);

  const started = performance.now();
  const child = spawn(process.execPath, [SYNC_CLI, 'rebuild'], {
    env: { ...env, DATABASE_URL, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let done = false;
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output = `${output}${c.toString()}`.slice(-20_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  void exited.then(() => (done = true));
  const { ms: during, failed } = await writer(() => done);
  const code = await exited;
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`the rebuild exited with ${code}:\n${output}`);
  // The rebuild reports its own peak memory (process.resourceUsage().maxRSS) in its summary line.
  const peakMb = Number(/peak memory (\d+) MB/.exec(output)?.[1] ?? Number.NaN);
  const { rows: total } = await pool.query<{ n: number }>(
    `SELECT (${shared.MODEL.map((e) => `(SELECT count(*) FROM ${e.table})`).join(' + ')})::int AS n`,
  );
  table(
    [
      'rebuild s',
      'rows/s',
      'peak RSS MB',
      'writes during',
      'failed',
      'p50 ms',
      'p99 ms',
      'max ms',
      'idle p50',
      'idle p99',
      'idle max',
      'machine',
    ],
    [
      [
        f(seconds, 1),
        f(total[0]!.n / seconds, 0),
        f(peakMb, 0),
        String(during.length),
        String(failed),
        f(pct(during, 50)),
        f(pct(during, 99)),
        f(during.at(-1) ?? Number.NaN),
        f(pct(idle, 50)),
        f(pct(idle, 99)),
        f(idle.at(-1) ?? Number.NaN),
        loadAvg(),
      ],
    ],
  );
  log('\n(targets: writer p99 at most 2x idle, max under 250 ms, peak memory under 300 MB)');
  log(`rebuild's own report:\n${output.trim()}`);
}

// ---- run ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  for (const file of [API_MAIN, WORKER_MAIN, SYNC_CLI])
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first`);
  log(`scale benchmark: ${os.cpus().length} CPUs, node ${process.version}, ${DATABASE_URL}, ${loadAvg()}`);
  await freshDatabase();
  const pool = shared.createPool(DATABASE_URL, { applicationName: 'blog-bench-scale', max: 4 });
  const port = await shared.freePort();
  const api = await startProcess(
    'api',
    [API_MAIN],
    {
      DATABASE_URL,
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
      DEFAULT_SYNC_MODE: 'QUEUED',
    },
    /API ready at/,
  );
  try {
    const d = await baseData(pool);
    if (runs('1') || runs('4')) await growing(pool, port, d);
    if (runs('2')) await hotPost(port, api.pid, d);
    if (runs('4')) await rename(pool, port, d);
    if (runs('3')) await rebuild(pool, port, d);
  } finally {
    await stopProcess(api);
    await pool.end();
  }
}

await main();
