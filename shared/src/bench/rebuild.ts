#!/usr/bin/env node
/**
 * Benchmark of the rebuild: the online rebuild (chunks, `npm run sync -- rebuild`) against the
 * one-transaction rebuild (SyncEngine.all) on the same data set in the same run, each with every
 * projection stale (so both rewrite every row), each in a process of its own (whose peak memory is
 * reported), while INLINE writes run beside it: a post's title changed in tb_post and the post, its
 * comments and its author refreshed in the same transaction, as `updatePost` with `sync: INLINE`
 * does. The writes' latency is also measured with nothing else running (idle). Prints figures (not a
 * test); ratios within one run are what to compare: the machine is shared.
 *
 *   npm run bench:rebuild                       (1,000 users, 20,000 posts, 400,000 comments)
 *   BENCH_SCALE=0.1 npm run bench:rebuild       (a quick run)
 *   BENCH_REBUILD_CHUNK=1000 npm run bench:rebuild
 *   BENCH_JSON=out.json npm run bench:rebuild   (the figures as JSON too)
 *
 * measureRebuild() runs the same measurement and returns the figures (for `npm run bench:scale`).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type pg from 'pg';
import { createPool, withTransaction } from '../db/pool';
import { commandTables, MODEL } from '../model';
import { planSync } from '../sync/dependencies';
import { SyncEngine } from '../sync/engine';
import { DEFAULT_REBUILD_CHUNK, type RebuildProgress } from '../sync/rebuild';
import { generateDataset, type DatasetSize } from './dataset';
import { scratchDatabase } from './scratch';

export type RebuildMode = 'online' | 'one-transaction';

export interface LatencyFigures {
  writes: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** A chunk's transaction time, by entity type (online rebuild only). */
export interface ChunkFigures {
  entityType: string;
  chunks: number;
  p50Ms: number;
  maxMs: number;
}

export interface RebuildRunFigures {
  mode: RebuildMode;
  seconds: number;
  /** Projection rows computed (every entity type) per second. */
  rowsPerSecond: number;
  rows: number;
  /** Peak resident memory of the process that ran the rebuild (its maxRSS). */
  peakRssMb: number;
  /** The INLINE writes that ran while it did. */
  writers: LatencyFigures;
  chunks?: ChunkFigures[];
}

export interface RebuildBenchFigures {
  size: DatasetSize;
  chunk: number;
  /** The INLINE writes with nothing else running. */
  idle: LatencyFigures;
  runs: RebuildRunFigures[];
}

export interface RebuildBenchOptions {
  size?: DatasetSize;
  /** Ids per chunk of the online rebuild (its default: DEFAULT_REBUILD_CHUNK). */
  chunk?: number;
  /** Concurrent writer loops (each one write at a time). */
  writers?: number;
  /** How long the idle writes are measured. */
  idleSeconds?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export const DEFAULT_REBUILD_BENCH_SIZE: DatasetSize = { users: 1000, posts: 20_000, comments: 400_000, postBytes: 1000 };

/** Runs the measurement on a scratch database (created, filled and dropped here) and returns the figures. */
export async function measureRebuild(options: RebuildBenchOptions = {}): Promise<RebuildBenchFigures> {
  const size = options.size ?? DEFAULT_REBUILD_BENCH_SIZE;
  const chunk = options.chunk ?? DEFAULT_REBUILD_CHUNK;
  const writerCount = options.writers ?? 2;
  const log = options.log ?? (() => undefined);
  const db = await scratchDatabase('blog_bench_rebuild');
  const pool = createPool(db.url, { applicationName: 'blog-bench-rebuild', max: writerCount + 2 });
  try {
    let t = performance.now();
    await generateDataset(pool, size);
    await new SyncEngine(pool).all();
    // Vacuumed, as autovacuum would have done (it is off on the server docs/benchmarks.md's figures come
    // from): a vacuumed table's visibility map lets the users' kept-count recount count from an
    // index alone, where an unvacuumed one reads every page of tb_comment (200 users: 15 ms, not 260).
    await pool.query(`VACUUM ANALYZE ${commandTables().join(', ')}`);
    log(
      `dataset: ${size.users} users, ${size.posts} posts, ${size.comments} comments, ` +
        `projected in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
    const { rows } = await pool.query<{ id: string }>('SELECT id FROM tb_post');
    const posts = rows.map((r) => r.id);

    await staleEverything(pool);
    const idle = await writeWhile(pool, posts, writerCount, sleep((options.idleSeconds ?? 10) * 1000));
    log(`idle writes: ${describeLatency(idle)}`);
    const runs: RebuildRunFigures[] = [];
    for (const mode of ['one-transaction', 'online'] as const) {
      await staleEverything(pool);
      t = performance.now();
      const child = rebuildInChild(db.url, mode, chunk);
      const writers = await writeWhile(pool, posts, writerCount, child);
      const result = await child;
      const seconds = (performance.now() - t) / 1000;
      const run: RebuildRunFigures = {
        mode,
        seconds: result.durationMs / 1000,
        rows: result.rows,
        rowsPerSecond: result.rows / (result.durationMs / 1000),
        peakRssMb: result.maxRssKb / 1024,
        writers,
        ...(result.chunks ? { chunks: result.chunks } : {}),
      };
      runs.push(run);
      log(
        `${mode}: ${run.seconds.toFixed(1)} s (${seconds.toFixed(1)} s with the process start), ` +
          `${Math.round(run.rowsPerSecond)} rows/s, peak ${run.peakRssMb.toFixed(0)} MB; writes ${describeLatency(writers)}`,
      );
    }
    const drift = await new SyncEngine(pool).verify();
    if (drift.total) throw new Error(`the rebuilds left drift: ${drift.total} row(s)`);
    return { size, chunk, idle, runs };
  } finally {
    await pool.end();
    await db.drop();
  }
}

/** Every projection's document made to differ from its computation, so that a rebuild rewrites every row. */
async function staleEverything(pool: pg.Pool): Promise<void> {
  for (const e of MODEL) await pool.query(`UPDATE ${e.view} SET data = data || '{"stale": true}'::jsonb`);
  await pool.query(`VACUUM ANALYZE ${MODEL.map((e) => e.view).join(', ')}`);
  // The set-up's writes flushed now, not during the next measurement.
  await pool.query('CHECKPOINT');
}

/** INLINE writes in `count` loops until `until` settles: each changes a post's title and refreshes what depends on it. */
async function writeWhile(pool: pg.Pool, posts: string[], count: number, until: Promise<unknown>): Promise<LatencyFigures> {
  const sync = new SyncEngine(pool);
  const latencies: number[] = [];
  let done = false;
  void until.finally(() => (done = true)).catch(() => undefined);
  const loop = async () => {
    while (!done) {
      const post = posts[Math.floor(Math.random() * posts.length)]!;
      const started = performance.now();
      await withTransaction(pool, async (client) => {
        await client.query('UPDATE tb_post SET title = $2, updated_at = now() WHERE id = $1', [
          post,
          `Title ${Math.random().toString(36).slice(2, 8)}`,
        ]);
        await sync.refreshIn(client, await planSync(client, { post: [post] }));
      });
      if (!done) latencies.push(performance.now() - started);
      await sleep(5);
    }
  };
  await Promise.all(Array.from({ length: count }, loop));
  return latencyFigures(latencies);
}

function latencyFigures(ms: number[]): LatencyFigures {
  const sorted = [...ms].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { writes: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.at(-1) ?? 0 };
}

const describeLatency = (l: LatencyFigures) =>
  `${l.writes} writes, p50 ${l.p50Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface ChildResult {
  durationMs: number;
  rows: number;
  maxRssKb: number;
  chunks?: ChunkFigures[];
}

/** The rebuild in a process of its own (this file, `--child`), so that its peak memory is its own. */
function rebuildInChild(url: string, mode: RebuildMode, chunk: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [__filename, '--child', mode, String(chunk)], {
      env: { ...process.env, DATABASE_URL: url },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`the ${mode} rebuild process exited with ${code}`));
      resolve(JSON.parse(out) as ChildResult);
    });
  });
}

/** The child: one rebuild, then its figures as JSON on stdout. */
async function child(mode: RebuildMode, chunk: number): Promise<void> {
  const pool = createPool(process.env.DATABASE_URL!, { applicationName: 'blog-bench-rebuild-child', max: 2 });
  try {
    const sync = new SyncEngine(pool);
    const started = performance.now();
    let rows = 0;
    let chunks: ChunkFigures[] | undefined;
    if (mode === 'one-transaction') {
      rows = (await sync.all()).results.reduce((n, r) => n + r.count, 0);
    } else {
      const times = new Map<string, number[]>();
      let last = 0;
      const onProgress = (p: RebuildProgress) => {
        if (p.event === 'start') last = p.elapsedMs;
        else {
          const list = times.get(p.entityType) ?? [];
          list.push(p.elapsedMs - last);
          times.set(p.entityType, list);
          last = p.elapsedMs;
        }
      };
      const result = await sync.rebuild({ chunk, restart: true, onProgress });
      rows = result.report.results.reduce((n, r) => n + r.count, 0);
      chunks = [...times].map(([entityType, ms]) => {
        const f = latencyFigures(ms);
        return { entityType, chunks: ms.length, p50Ms: f.p50Ms, maxMs: f.maxMs };
      });
    }
    const durationMs = performance.now() - started;
    process.stdout.write(JSON.stringify({ durationMs, rows, maxRssKb: process.resourceUsage().maxRSS, ...(chunks ? { chunks } : {}) }));
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const scale = Number(process.env.BENCH_SCALE ?? 1);
  const size: DatasetSize = {
    users: Math.max(10, Math.round(DEFAULT_REBUILD_BENCH_SIZE.users * scale)),
    posts: Math.round(DEFAULT_REBUILD_BENCH_SIZE.posts * scale),
    comments: Math.round(DEFAULT_REBUILD_BENCH_SIZE.comments * scale),
    postBytes: DEFAULT_REBUILD_BENCH_SIZE.postBytes,
  };
  const chunk = process.env.BENCH_REBUILD_CHUNK ? Number(process.env.BENCH_REBUILD_CHUNK) : DEFAULT_REBUILD_CHUNK;
  const figures = await measureRebuild({ size, chunk, log: (line) => process.stdout.write(`${line}\n`) });
  const ms = (n: number) => n.toFixed(1).padStart(7);
  process.stdout.write(
    `\nchunks of ${figures.chunk} ids; every projection stale before each rebuild; ` +
      `${figures.idle.writes > 0 ? 'INLINE writes (post title + its post, comments, author)' : ''}\n`,
  );
  process.stdout.write('| rebuild          | seconds | rows/s  | peak RSS | writes | write p50 | write p99 | write max |\n');
  process.stdout.write('|------------------|--------:|--------:|---------:|-------:|----------:|----------:|----------:|\n');
  const row = (name: string, l: LatencyFigures, r?: RebuildRunFigures) =>
    process.stdout.write(
      `| ${name.padEnd(16)} | ${r ? r.seconds.toFixed(1).padStart(7) : '      -'} | ` +
        `${r ? String(Math.round(r.rowsPerSecond)).padStart(7) : '      -'} | ` +
        `${r ? `${r.peakRssMb.toFixed(0)} MB`.padStart(8) : '       -'} | ${String(l.writes).padStart(6)} | ` +
        `${ms(l.p50Ms)} ms | ${ms(l.p99Ms)} ms | ${ms(l.maxMs)} ms |\n`,
    );
  row('none (idle)', figures.idle);
  for (const r of figures.runs) row(r.mode, r.writers, r);
  for (const r of figures.runs) {
    for (const c of r.chunks ?? []) {
      process.stdout.write(
        `${r.mode} ${c.entityType}: ${c.chunks} chunks, p50 ${c.p50Ms.toFixed(1)} ms, max ${c.maxMs.toFixed(1)} ms per chunk\n`,
      );
    }
  }
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify(figures, null, 2));
}

if (require.main === module) {
  const [flag, mode, chunk] = process.argv.slice(2);
  const work = flag === '--child' ? child(mode as RebuildMode, Number(chunk)) : main();
  work.catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
