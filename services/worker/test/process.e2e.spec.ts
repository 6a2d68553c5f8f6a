import { SyncEngine } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { backendsWaitingOnLock, countCompleted, createFixture, jobRows, sleep, waitFor, WorkerProcess, Writer } from './helpers';

/**
 * The worker as operators run it: `node services/worker/dist/main.js`, killed and stopped with
 * signals. A batch is caught "in the middle" by holding a lock on a projection row its sync needs.
 */
describe('worker process', () => {
  let pool: pg.Pool;
  let writer: Writer;
  const procs: WorkerProcess[] = [];

  beforeAll(async () => {
    pool = testPool();
    writer = await Writer.start(pool);
  });
  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.kill('SIGKILL')));
  });
  afterAll(async () => {
    await writer.stop();
    await pool.end();
  });

  /** Locks these posts' projection rows in a transaction of its own until `release()`. */
  async function holdPosts(posts: string[]): Promise<{ release: () => Promise<void> }> {
    const c = await pool.connect();
    await c.query('BEGIN');
    await c.query('SELECT 1 FROM tv_post WHERE id = ANY($1::uuid[]) FOR UPDATE', [posts]);
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        await c.query('COMMIT');
        c.release();
      },
    };
  }

  it('loses nothing when a worker is SIGKILLed in the middle of a batch: another takes over', async () => {
    const f = await createFixture(pool, { users: 3, posts: 10, comments: 20 });
    const lock = await holdPosts(f.posts);
    const a = WorkerProcess.spawn('blog-worker-a', { WORKER_BATCH_SIZE: '100' });
    procs.push(a);
    const before: string[] = [];
    try {
      await a.started();
      for (let i = 0; i < 30; i++) before.push(...(await writer.retitle(f.posts[i % 10]!, `before kill ${i}`)));
      // Worker A has fetched the batch and its transaction waits on our lock, mid-refresh.
      await waitFor('worker A blocked mid-batch', async () => (await backendsWaitingOnLock(pool, 'blog-worker-a')) > 0);
      expect((await jobRows(pool, before)).some((r) => r.state === 'active')).toBe(true);
      await a.kill('SIGKILL');
      expect((await a.exited).signal).toBe('SIGKILL');
    } finally {
      await lock.release();
    }
    // Nothing of A's batch committed: its jobs are still claimed by a dead worker.
    expect(await countCompleted(pool, before)).toBe(0);
    const after: string[] = [];
    for (let i = 0; i < 10; i++) after.push(...(await writer.rename(f.users[i % 3]!, `after kill ${i}`)));

    const b = WorkerProcess.spawn('blog-worker-b');
    procs.push(b);
    await b.started();
    // B drains the new writes at once, and retries A's jobs once their heartbeat (10 s) lapses.
    const all = [...before, ...after];
    await waitFor('every job completed by worker B', async () => (await countCompleted(pool, all)) === all.length, 40_000, 250);
    const rows = await jobRows(pool, before);
    expect(rows.filter((r) => r.retry_count >= 1).length).toBeGreaterThan(0); // taken over, not redone by A
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
    const titles = await pool.query<{ title: string }>(`SELECT data->>'title' AS title FROM tv_post WHERE id = $1`, [f.posts[9]]);
    expect(titles.rows[0]!.title).toBe('before kill 29');
  }, 90_000);

  it('on SIGTERM finishes the batch in hand, takes no more, and exits 0', async () => {
    const f = await createFixture(pool, { users: 2, posts: 6, comments: 0 });
    const w = WorkerProcess.spawn('blog-worker-term', { WORKER_SHUTDOWN_TIMEOUT_MS: '10000' });
    procs.push(w);
    await w.started();
    const warm = await writer.retitle(f.posts[0]!, 'warm-up');
    await waitFor('warm-up batch', async () => (await countCompleted(pool, warm)) === 1);
    const health = await w.health();
    expect(health.status).toBe(200);
    expect(health.body.status).toBe('running');
    expect(typeof health.body.lastBatchAt).toBe('string');

    const lock = await holdPosts(f.posts);
    const written: string[] = [];
    let inHand: string[] = [];
    const late: string[] = [];
    try {
      written.push(...(await writer.retitle(f.posts[0]!, 'in hand 0')));
      await waitFor('batch in hand', async () => (await backendsWaitingOnLock(pool, 'blog-worker-term')) > 0);
      // Written while the worker is stuck in that batch (concurrency 1): these wait in the queue.
      // (Written before it, on a fast machine all five could land in the one batch.)
      for (let i = 1; i < 5; i++) written.push(...(await writer.retitle(f.posts[i]!, `in hand ${i}`)));
      // The batch in hand: the jobs the worker holds (the first write woke it; later ones wait).
      inHand = (await jobRows(pool, written)).filter((r) => r.state === 'active').map((r) => r.id);
      expect(inHand.length).toBeGreaterThan(0);
      late.push(...written.filter((id) => !inHand.includes(id)));
      w.child.kill('SIGTERM');
      await sleep(300);
      // Enqueued after SIGTERM: the stopping worker must not take them.
      late.push(...(await writer.retitle(f.posts[5]!, 'late')));
      await sleep(700);
      expect(w.child.exitCode).toBeNull(); // still finishing its batch
    } finally {
      await lock.release();
    }
    const t0 = Date.now();
    const exit = await w.exited;
    expect(exit.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(await countCompleted(pool, inHand)).toBe(inHand.length);
    expect((await jobRows(pool, late)).map((r) => r.state)).toEqual(late.map(() => 'created'));
    expect(late.length).toBeGreaterThan(1);
    expect(w.output.some((l) => l.includes('"clean":true'))).toBe(true);
  }, 60_000);

  it('on SIGTERM gives up a batch that cannot finish within WORKER_SHUTDOWN_TIMEOUT_MS, and its jobs are retried', async () => {
    const f = await createFixture(pool, { users: 1, posts: 2, comments: 0 });
    const w = WorkerProcess.spawn('blog-worker-timeout', { WORKER_SHUTDOWN_TIMEOUT_MS: '1500' });
    procs.push(w);
    await w.started();
    const lock = await holdPosts(f.posts);
    let jobs: string[] = [];
    try {
      jobs = await writer.retitle(f.posts[0]!, 'stuck');
      await waitFor('batch in hand', async () => (await backendsWaitingOnLock(pool, 'blog-worker-timeout')) > 0);
      const t0 = Date.now();
      w.child.kill('SIGTERM');
      const exit = await w.exited;
      expect(exit.code).toBe(1);
      expect(Date.now() - t0).toBeLessThan(1500 + 3000);
    } finally {
      await lock.release();
    }
    // pg-boss failed the abandoned job for a retry; nothing of it committed.
    const [row] = await jobRows(pool, jobs);
    expect(row!.state).toBe('retry');
    const b = WorkerProcess.spawn('blog-worker-timeout-b');
    procs.push(b);
    await waitFor('retried and completed', async () => (await countCompleted(pool, jobs)) === 1, 15_000);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  }, 60_000);

  it('a health port already taken (a second worker next to npm start): exit 2 and one line saying what to do, no stack trace', async () => {
    // Another process answers on the port, as npm start's worker does on 8001.
    const other = http.createServer((_req, res) => res.end('{"healthy":true}'));
    await new Promise<void>((resolve) => other.listen(0, resolve));
    const port = (other.address() as AddressInfo).port;
    try {
      const w = WorkerProcess.spawn('blog-worker-second', { WORKER_HEALTH_PORT: String(port) });
      procs.push(w);
      expect((await w.exited).code).toBe(2);
      expect(w.output).toEqual([
        `blog-worker: Port ${port} (WORKER_HEALTH_PORT) is already in use by another process (another \`npm start\` or worker?): ` +
          'set WORKER_HEALTH_PORT=0 to pick a free port, or WORKER_HEALTH_PORT to another free port, or stop that process.',
      ]);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });
});
