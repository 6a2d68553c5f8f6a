import { silentLogger, SyncEngine } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { backendsWaitingOnLock, countCompleted, createFixture, testWorkerConfig, waitFor, Writer } from '../test/helpers';
import { startHealthServer, type HealthServer } from './health';
import { createWorker, type ProjectionWorker } from './worker';

const NAME = 'blog-worker-reconnect';

describe('database connection loss', () => {
  let pool: pg.Pool;
  let writer: Writer;
  let worker: ProjectionWorker | undefined;
  let health: HealthServer | undefined;

  beforeAll(async () => {
    pool = testPool();
    writer = await Writer.start(pool);
  });
  afterEach(async () => {
    await worker?.stop();
    await health?.close();
    worker = undefined;
    health = undefined;
  });
  afterAll(async () => {
    await writer.stop();
    await pool.end();
  });

  /** Cuts every connection the worker holds (fetch pool, batch pool, LISTEN connection). */
  async function cutWorkerConnections(): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n
         FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1`,
      [NAME],
    );
    return rows[0]!.n;
  }

  const getHealth = async () => {
    const res = await fetch(`http://127.0.0.1:${health!.port}/health`);
    return { status: res.status, body: (await res.json()) as { status: string; jobsCompleted: number; lastBatchAt: string | null } };
  };

  it('keeps draining after its connections are cut, idle and in the middle of a batch', async () => {
    const f = await createFixture(pool, { users: 3, posts: 9, comments: 9 });
    worker = createWorker(testWorkerConfig({ name: NAME }));
    await worker.start();
    health = await startHealthServer(worker, 0, silentLogger);
    const first = await writer.retitle(f.posts[0]!, 'before the cut');
    await waitFor('first job', async () => (await countCompleted(pool, first)) === 1);
    expect((await getHealth()).body.lastBatchAt).not.toBeNull();

    // 1. Idle: every connection of the worker is terminated by the server.
    expect(await cutWorkerConnections()).toBeGreaterThan(0);
    const second: string[] = [];
    for (let i = 0; i < 9; i++) second.push(...(await writer.retitle(f.posts[i]!, `after the cut ${i}`)));
    await waitFor('drained after the idle cut', async () => (await countCompleted(pool, second)) === second.length, 20_000);

    // 2. In the middle of a batch: the transaction dies with its connection and is retried.
    const c = await pool.connect();
    const third: string[] = [];
    try {
      await c.query('BEGIN');
      await c.query('SELECT 1 FROM tv_user WHERE id = ANY($1::uuid[]) FOR UPDATE', [f.users]);
      third.push(...(await writer.rename(f.users[0]!, 'Cut mid-batch')));
      await waitFor('batch blocked', async () => (await backendsWaitingOnLock(pool, NAME)) > 0);
      expect(await cutWorkerConnections()).toBeGreaterThan(0);
    } finally {
      await c.query('COMMIT');
      c.release();
    }
    await waitFor('drained after the mid-batch cut', async () => (await countCompleted(pool, third)) === 1, 20_000);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
    const h = await getHealth();
    expect(h.status).toBe(200);
    expect(h.body.status).toBe('running');
    expect(h.body.jobsCompleted).toBe(11);
  });

  it('answers 503 on /health while it is not running', async () => {
    worker = createWorker(testWorkerConfig({ databaseUrl: 'postgres://postgres@127.0.0.1:1/nowhere', name: NAME }));
    health = await startHealthServer(worker, 0, silentLogger);
    await expect(worker.start()).rejects.toThrow();
    const h = await getHealth();
    expect(h.status).toBe(503);
    expect(h.body.status).toBe('created');
    const missing = await fetch(`http://127.0.0.1:${health.port}/nope`);
    expect(missing.status).toBe(404);
  });
});
