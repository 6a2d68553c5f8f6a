/**
 * @jest-environment-options {"database": false}
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createPool, EmbeddedPostgres, ensureDatabaseExists, freePort, prepareDatabase } from '@blog/shared';
import type pg from 'pg';
import {
  checkWrites,
  formatErrors,
  Load,
  queueState,
  ReadyProbe,
  runVerify,
  sleep,
  startApiProcess,
  startWorkerProcess,
  stopService,
  waitFor,
  type Service,
} from '../bench/fault-harness';

/**
 * The fault suite: the API and workers as real processes on a PostgreSQL of this file's own (the
 * embedded binaries, on a free port), under a steady load that records every answer.
 *  - PostgreSQL restarted (fast shutdown) under load: /ready goes 503 and back to 200 by itself,
 *    every error meanwhile is SERVICE_UNAVAILABLE (HTTP 503), no acknowledged write is lost, the
 *    workers drain the queue, `sync verify` finds no drift.
 *  - The worker SIGKILLed again and again under load: its jobs come back (heartbeat lapse, see
 *    shared/src/queue/queues.ts), nothing acknowledged is lost, no drift.
 */
jest.setTimeout(120_000);

// Workers look for retries and dead workers' jobs every second here (10 s by default).
const WORKER_ENV = { WORKER_SUPERVISE_INTERVAL_SECONDS: '1', LOG_LEVEL: 'info' };

let server: EmbeddedPostgres;
let parent: string;
const processes: Service[] = [];
const pools: pg.Pool[] = [];

beforeAll(async () => {
  parent = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-faults-'));
  await fs.chmod(parent, 0o755); // the postgres OS user (when running as root) must reach it
  server = new EmbeddedPostgres({ dataDir: path.join(parent, 'data'), port: await freePort(), password: 'faults' });
  await server.start();
});

afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => stopService(p, 'SIGKILL')));
  await Promise.all(pools.splice(0).map((p) => p.end()));
});

afterAll(async () => {
  await server?.stop();
  await fs.rm(parent, { recursive: true, force: true });
});

/** A migrated, seeded database on the embedded server, with a pool on it and its seed ids. */
async function database(name: string) {
  const url = server.url(name);
  await ensureDatabaseExists(url);
  await prepareDatabase(url, { seedWhenEmpty: true });
  const pool = createPool(url, { applicationName: 'blog-faults-test', max: 2 });
  pools.push(pool);
  const authors = (await pool.query<{ id: string }>('SELECT id FROM tb_user ORDER BY id')).rows.map((r) => r.id);
  const posts = (await pool.query<{ id: string }>('SELECT id FROM tb_post ORDER BY id')).rows.map((r) => r.id);
  return { url, pool, authors, posts };
}

function track<T extends Service>(service: T): T {
  processes.push(service);
  return service;
}

function alive(service: Service): boolean {
  return service.child.exitCode === null && service.child.signalCode === null;
}

/**
 * After the load: the queue drains with nothing failed or dead-lettered, every acknowledged write is
 * in tb_* and projected, and `sync verify` finds no drift. Returns the write check.
 */
async function expectDrainedAndIntact(db: { url: string; pool: pg.Pool }, load: Load) {
  await waitFor('the queue to drain', async () => (await queueState(db.pool)).pending === 0, 60_000, 250);
  const q = await queueState(db.pool);
  expect({ failed: q.failed, deadLetters: q.deadLetters }).toEqual({ failed: 0, deadLetters: 0 });
  const writes = await checkWrites(db.pool, load);
  expect(writes.lost).toEqual([]);
  expect(writes.unprojected).toEqual([]);
  expect(writes.found).toBe(writes.acknowledged);
  const verify = await runVerify(db.url);
  expect(verify).toMatchObject({ drift: 0, exitCode: 0 });
  return writes;
}

test('PostgreSQL restarted under load: 503 meanwhile, recovery by itself, no acknowledged write lost, no drift', async () => {
  const db = await database('faults_restart');
  const env = { DATABASE_URL: db.url };
  const api = track(await startApiProcess(env));
  const workers = [track(await startWorkerProcess({ ...env, ...WORKER_ENV })), track(await startWorkerProcess({ ...env, ...WORKER_ENV }))];
  const load = new Load({
    url: api.url,
    readsPerSecond: 40,
    writesPerSecond: 15,
    authors: db.authors,
    posts: db.posts,
    modes: ['QUEUED', 'INLINE'],
  });
  const ready = new ReadyProbe(() => api.url, 100);
  load.start();
  ready.start();
  let down = false;
  try {
    await waitFor('writes before the restart', () => load.acknowledged >= 20, 30_000);
    await waitFor('/ready 200 before the restart', () => ready.last() === 200, 10_000);
    const stoppedAt = Date.now();
    down = true;
    await server.stop(); // pg_ctl stop -m fast: sessions are terminated, the server goes down
    // The load keeps going while the database is down.
    await waitFor(
      '/ready 503 while the database is down',
      () => ready.statuses.some((s) => s.at > stoppedAt && s.status === 503),
      10_000,
    ).catch((err: Error) => {
      const since = ready.statuses.filter((s) => s.at > stoppedAt - 1000).map((s) => `${s.at - stoppedAt}ms:${s.status}`);
      throw new Error(
        `${err.message}\n/ready around the stop: ${since.join(' ')}\nAPI alive: ${alive(api)}\n` +
          `API output (tail):\n${api.output().slice(-3000)}`,
      );
    });
    await waitFor(
      'mutations answered SERVICE_UNAVAILABLE while the database is down',
      () => load.answers.some((a) => a.at > stoppedAt && a.kind !== 'read' && a.code === 'SERVICE_UNAVAILABLE'),
      10_000,
    );
    // The operator endpoints too: /metrics (JSON) answers 503 SERVICE_UNAVAILABLE, not a 500.
    const metrics = await fetch(`${api.url}/metrics`);
    expect(metrics.status).toBe(503);
    expect(((await metrics.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe(
      'SERVICE_UNAVAILABLE',
    );
    await sleep(2000);
    const ackedBeforeStart = load.acknowledged;
    const startedAt = Date.now();
    await server.start();
    down = false;
    // Nobody restarts the API or the workers: they recover on their own.
    await waitFor('/ready 200 after the restart', () => ready.statuses.some((s) => s.at > startedAt && s.status === 200), 30_000);
    await waitFor('acknowledged writes after the restart', () => load.acknowledged >= ackedBeforeStart + 30, 30_000);
  } finally {
    await load.stop();
    await ready.stop();
    // A failure while the server was down must not leave it down for the next test.
    if (down) await server.start();
  }

  // Nothing crashed.
  expect(alive(api)).toBe(true);
  for (const w of workers) expect(alive(w)).toBe(true);
  // Every error was the clean one: SERVICE_UNAVAILABLE with HTTP 503 (never a 500, never a network
  // error from a crashed process), for reads (compiled path and Apollo) and mutations alike.
  expect(formatErrors(load.errors).filter((line) => !line.startsWith('SERVICE_UNAVAILABLE (HTTP 503)'))).toEqual([]);
  const unavailable = load.answers.filter((a) => a.code === 'SERVICE_UNAVAILABLE');
  expect(unavailable.some((a) => a.kind === 'read')).toBe(true);
  expect(unavailable.some((a) => a.kind !== 'read')).toBe(true);
  // /ready: 200, then 503 during the outage, then 200 again.
  const statuses = ready.statuses.map((s) => s.status);
  const first503 = statuses.indexOf(503);
  expect(first503).toBeGreaterThan(0);
  expect(statuses.slice(0, first503)).toContain(200);
  expect(statuses.slice(first503)).toContain(200);
  expect(statuses.at(-1)).toBe(200);
  expect(statuses).not.toContain(0); // the API answered /ready throughout

  // The workers drain the queue; every acknowledged write is in tb_* and projected; no drift.
  const writes = await expectDrainedAndIntact(db, load);
  expect(writes.acknowledged).toBeGreaterThanOrEqual(50);
  // The response cache (on by default) lost the change feed with the restart and dropped what it
  // held: once the workers' last messages have arrived, the API answers every post as it is.
  const { rows } = await db.pool.query<{ id: string; data: { title: string; updatedAt: string } }>(
    'SELECT id, data FROM tv_post ORDER BY id',
  );
  await waitFor(
    'the API answering every post as the database has it',
    async () => {
      for (const r of rows) {
        const res = await fetch(`${api.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query: `{ post(id: "${r.id}") { title updatedAt } }` }),
        });
        const post = ((await res.json()) as { data?: { post: { title: string; updatedAt: string } } }).data?.post;
        if (post?.title !== r.data.title || post.updatedAt !== r.data.updatedAt) return false;
      }
      return true;
    },
    5000,
    100,
  );
});

test('the worker SIGKILLed repeatedly under load: nothing acknowledged is lost, no drift', async () => {
  const db = await database('faults_sigkill');
  const env = { DATABASE_URL: db.url };
  const api = track(await startApiProcess(env));
  const load = new Load({
    url: api.url,
    readsPerSecond: 10,
    writesPerSecond: 25,
    authors: db.authors,
    posts: db.posts,
    modes: ['QUEUED'],
  });
  let worker = track(await startWorkerProcess({ ...env, ...WORKER_ENV }));
  load.start();
  const kills: number[] = [];
  try {
    for (let i = 0; i < 6; i++) {
      // 1 to 2 s between kills (fixed, not random: the run is the same every time).
      await sleep(1000 + (i % 3) * 400);
      worker.child.kill('SIGKILL');
      const exit = await worker.exited;
      expect(exit.signal).toBe('SIGKILL');
      kills.push(Date.now());
      worker = track(await startWorkerProcess({ ...env, ...WORKER_ENV }));
    }
    await sleep(1000);
  } finally {
    await load.stop();
  }
  expect(kills).toHaveLength(6);
  expect(alive(api)).toBe(true);
  expect(load.errorCount()).toBe(0);
  expect(load.acknowledged).toBeGreaterThanOrEqual(100);

  // One worker drains everything, the jobs the killed ones held included (their heartbeat lapses
  // after 10 s; the supervisor, every second here, hands them out again).
  await expectDrainedAndIntact(db, load);
});
