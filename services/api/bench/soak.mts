/**
 * Soak: a steady mixed read/write load for N minutes against the API and a worker running as
 * separate processes, restarting the worker every minute (SIGTERM, and every other time SIGKILL).
 * Prints figures; it is not a test (and not in CI).
 *
 *   npm run soak -- --minutes 10
 *
 * Options (flags, or the environment): --minutes (SOAK_MINUTES, 10), --reads (SOAK_READS_PER_SECOND,
 * 200), --writes (SOAK_WRITES_PER_SECOND, 20), --restart-every (SOAK_RESTART_EVERY_SECONDS, 60).
 * DATABASE_URL: use that database (migrated and seeded when empty); without it an embedded
 * PostgreSQL is started in a temporary directory on a free port and deleted at the end.
 *
 * At the end it waits for the queue to drain and prints: requests sent, errors by code, acknowledged
 * writes against rows found (lost), `sync verify` drift, RSS of the API and of the worker at start,
 * middle and end, and the queue lag (the worker's projection lag percentiles from /metrics).
 * Exit code 1 when an error, a lost write or drift was seen.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import shared from '@blog/shared';
import pg from 'pg';
import {
  checkWrites,
  formatErrors,
  Load,
  queueState,
  rssMiB,
  runVerify,
  sleep,
  startApiProcess,
  startWorkerProcess,
  stopService,
  waitFor,
  type Service,
} from './fault-harness.ts';
import { log } from './harness.mts';

const { freePort } = shared;

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string' },
    reads: { type: 'string' },
    writes: { type: 'string' },
    'restart-every': { type: 'string' },
  },
});
const num = (flag: string | undefined, env: string | undefined, fallback: number, name: string) => {
  const v = Number(flag ?? env ?? fallback);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number (got ${flag ?? env})`);
  return v;
};
const env = process.env;
const MINUTES = num(args.minutes, env.SOAK_MINUTES, 10, '--minutes');
const READS = num(args.reads, env.SOAK_READS_PER_SECOND, 200, '--reads');
const WRITES = num(args.writes, env.SOAK_WRITES_PER_SECOND, 20, '--writes');
const RESTART_EVERY_S = num(args['restart-every'], env.SOAK_RESTART_EVERY_SECONDS, 60, '--restart-every');
const DRAIN_TIMEOUT_MS = 180_000;
const WORKER_START_TIMEOUT_MS = 120_000;

const stamp = () => new Date().toISOString().slice(11, 19);

interface RssSample {
  label: string;
  api: number | undefined;
  worker: number | undefined;
}

async function main(): Promise<number> {
  let databaseUrl = env.DATABASE_URL;
  let embedded: InstanceType<typeof shared.EmbeddedPostgres> | undefined;
  let tmp: string | undefined;
  if (!databaseUrl) {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-soak-'));
    await fs.chmod(tmp, 0o755); // the postgres OS user (when running as root) must reach it
    embedded = new shared.EmbeddedPostgres({ dataDir: path.join(tmp, 'data'), port: await freePort(), password: 'soak' });
    await embedded.start();
    databaseUrl = embedded.url('blog_soak');
    await shared.ensureDatabaseExists(databaseUrl);
    log(`embedded PostgreSQL on port ${embedded.port} (data in ${tmp})`);
  }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2, application_name: 'blog-soak' });
  pool.on('error', () => undefined);
  let api: (Service & { url: string }) | undefined;
  let worker: Service | undefined;
  try {
    await shared.prepareDatabase(databaseUrl, { seedWhenEmpty: true });
    const authors = (await pool.query<{ id: string }>('SELECT id FROM tb_user ORDER BY id')).rows.map((r) => r.id);
    const posts = (await pool.query<{ id: string }>('SELECT id FROM tb_post ORDER BY id')).rows.map((r) => r.id);
    const common = { DATABASE_URL: databaseUrl, LOG_LEVEL: 'info' };
    api = await startApiProcess(common);
    worker = await startWorkerProcess(common);
    log(`soak: ${MINUTES} min, ${READS} reads/s + ${WRITES} writes/s (QUEUED and INLINE), worker restart every ${RESTART_EVERY_S} s`);
    log(`API ${api.url} (pid ${api.pid}), worker pid ${worker.pid}; ${os.cpus().length} CPUs, ${os.type()} ${os.release()}`);

    const load = new Load(
      { url: api.url, readsPerSecond: READS, writesPerSecond: WRITES, authors, posts, modes: ['QUEUED', 'INLINE'] },
      false,
    );
    const rss: RssSample[] = [];
    const sample = (label: string) => rss.push({ label, api: rssMiB(api!.pid), worker: worker ? rssMiB(worker.pid) : undefined });
    const startedAt = Date.now();
    const endAt = startedAt + MINUTES * 60_000;
    load.start();
    await sleep(5000);
    sample('start (+5 s)');
    let restarts = 0;
    let middleSampled = false;
    let nextRestart = startedAt + RESTART_EVERY_S * 1000;
    let nextReport = startedAt + 30_000;
    while (Date.now() < endAt) {
      await sleep(250);
      const now = Date.now();
      if (!middleSampled && now >= startedAt + (endAt - startedAt) / 2) {
        sample('middle');
        middleSampled = true;
      }
      if (now >= nextReport) {
        nextReport += 30_000;
        const q = await queueState(pool).catch(() => undefined);
        log(
          `${stamp()} +${Math.round((now - startedAt) / 1000)} s: ${load.sent.reads} reads, ${load.sent.writes} writes sent, ` +
            `${load.errorCount()} errors, ${load.skipped} skipped, queue pending ${q?.pending ?? '?'}, ` +
            `RSS api ${rssMiB(api.pid)} MiB worker ${worker ? rssMiB(worker.pid) : '-'} MiB`,
        );
      }
      if (now >= nextRestart && now < endAt - 5000) {
        nextRestart += RESTART_EVERY_S * 1000;
        restarts += 1;
        const signal = restarts % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
        const old = worker;
        worker = undefined;
        const exit = await stopService(old!, signal);
        // A shared, noisy machine can take long to start a process: give it time, and a second try.
        worker = await startWorkerProcess(common, WORKER_START_TIMEOUT_MS).catch(() => startWorkerProcess(common, WORKER_START_TIMEOUT_MS));
        log(`${stamp()} worker restart ${restarts}: ${signal} (exit ${exit.code ?? exit.signal}), new worker pid ${worker.pid}`);
      }
    }
    sample('end');
    await load.stop();
    const loadSeconds = (Date.now() - startedAt) / 1000;
    const drainStart = Date.now();
    await waitFor('the queue to drain', async () => (await queueState(pool)).pending === 0, DRAIN_TIMEOUT_MS, 250);
    const drainMs = Date.now() - drainStart;
    sample('after drain');
    const writes = await checkWrites(pool, load);
    const q = await queueState(pool);
    const verify = await runVerify(databaseUrl);
    const metrics = (await (await fetch(`${api.url}/metrics`)).json()) as { projection_lag_24h?: unknown };

    log('');
    log(`== soak figures (${new Date().toISOString()}, ${os.hostname()}, ${os.cpus().length} CPUs) ==`);
    log(
      `duration: ${loadSeconds.toFixed(0)} s of load, ` +
        `${restarts} worker restarts (${Math.ceil(restarts / 2)} SIGTERM, ${Math.floor(restarts / 2)} SIGKILL)`,
    );
    log(
      `requests sent: ${load.sent.reads + load.sent.writes} (${load.sent.reads} reads, ${load.sent.writes} writes; ` +
        `${((load.sent.reads + load.sent.writes) / loadSeconds).toFixed(1)}/s); not sent (over ${64} in flight): ${load.skipped}`,
    );
    log(`errors: ${load.errorCount()}${load.errorCount() ? `\n  ${formatErrors(load.errors).join('\n  ')}` : ''}`);
    log(
      `acknowledged writes: ${writes.acknowledged}; found in tb_*: ${writes.found}; ` +
        `lost: ${writes.lost.length}; not projected: ${writes.unprojected.length}`,
    );
    for (const l of writes.lost.slice(0, 10)) log(`  lost: ${l}`);
    log(`verify drift: ${verify.drift} (sync verify exit ${verify.exitCode})`);
    log(`queue: drained ${drainMs} ms after the load stopped; pending ${q.pending}, failed ${q.failed}, dead letters ${q.deadLetters}`);
    log(`queue lag (projection lag, worker-measured, from /metrics): ${JSON.stringify(metrics.projection_lag_24h)}`);
    log('RSS (MiB):');
    for (const s of rss) log(`  ${s.label.padEnd(14)} api ${s.api ?? '-'}  worker ${s.worker ?? '-'}`);
    const bad = load.errorCount() + writes.lost.length + writes.unprojected.length + verify.drift;
    return bad ? 1 : 0;
  } finally {
    if (worker) await stopService(worker, 'SIGTERM');
    if (api) await stopService(api, 'SIGTERM');
    await pool.end();
    if (embedded) {
      await embedded.stop();
      await fs.rm(tmp!, { recursive: true, force: true });
    }
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
