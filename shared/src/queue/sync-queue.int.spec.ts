import { randomUUID } from 'node:crypto';
import { testDatabaseUrl, testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { emptyPlan, type SyncPlan } from '../sync/types';
import { createBoss } from './boss';
import { SYNC_QUEUE } from './queues';
import { locateJobs, SyncQueue, type SyncJobData } from './sync-queue';

describe('the sync outbox and its relay to pg-boss', () => {
  const pool = testPool(8);
  const boss = createBoss({ url: testDatabaseUrl(), applicationName: 'blog-test-outbox', maintenance: false });
  const queue = new SyncQueue(boss, pool);
  beforeAll(() => boss.start());
  afterEach(() => pool.query('DELETE FROM sync_outbox; DELETE FROM sync_relayed'));
  afterAll(async () => {
    await boss.stop({ graceful: false, close: true });
    await pool.end();
  });

  const postPlan = (): SyncPlan => ({ ...emptyPlan(), post: [randomUUID()] });
  const jobsIn = async (ids: readonly string[]) =>
    (
      await pool.query<{ id: string; data: SyncJobData; priority: number; start_after: Date }>(
        'SELECT id, data, priority, start_after FROM pgboss.job WHERE name = $1 AND id = ANY($2::uuid[])',
        [SYNC_QUEUE, ids],
      )
    ).rows;
  const outboxSize = async () => (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sync_outbox')).rows[0]!.n;
  /** For each write id: the ids of the jobs that carry it (its own, or merged ones listing it in `writes`). */
  const carriers = async (ids: readonly string[]) => {
    const { rows } = await pool.query<{ id: string; data: SyncJobData }>(
      `SELECT id, data FROM pgboss.job WHERE name = $1 AND (id = ANY($2::uuid[]) OR data ? 'writes')`,
      [SYNC_QUEUE, ids],
    );
    const out = new Map<string, string[]>(ids.map((id) => [id, []]));
    for (const job of rows) for (const w of job.data.writes ?? [{ id: job.id }]) out.get(w.id)?.push(job.id);
    return out;
  };

  it('records jobs with the transaction that enqueues them, and nothing when it rolls back', async () => {
    await expect(
      withTransaction(pool, async (client) => {
        await queue.enqueue(client, postPlan(), { mode: 'QUEUED' });
        throw new Error('the write failed');
      }),
    ).rejects.toThrow('the write failed');
    expect(await outboxSize()).toBe(0);

    const plan = postPlan();
    const [id] = await withTransaction(pool, (client) => queue.enqueue(client, plan, { mode: 'QUEUED' }));
    expect(await outboxSize()).toBe(1);
    expect([...(await locateJobs(pool, [id!])).unrelayed]).toEqual([id]);
    expect(await jobsIn([id!])).toEqual([]);
  });

  it('moves committed rows to pg-boss under the ids the writes were given, with their payload, priority and start', async () => {
    const queuedPlan = postPlan();
    const deferredPlan = postPlan();
    const before = Date.now();
    const [queued, deferred] = await withTransaction(pool, async (client) => [
      ...(await queue.enqueue(client, queuedPlan, { mode: 'QUEUED' })),
      ...(await queue.enqueue(client, deferredPlan, { mode: 'DEFERRED', deferSeconds: 60 })),
    ]);
    expect(await queue.relay()).toBe(2);
    expect(await outboxSize()).toBe(0);
    expect(await locateJobs(pool, [queued!, deferred!])).toEqual({ unrelayed: new Set(), merged: new Map() });
    const jobs = new Map((await jobsIn([queued!, deferred!])).map((j) => [j.id, j]));
    expect(jobs.get(queued!)).toMatchObject({ priority: 10, data: { v: 1, plan: queuedPlan, mode: 'QUEUED' } });
    expect(jobs.get(queued!)!.data.enqueuedAt).toBeGreaterThanOrEqual(before);
    expect(jobs.get(queued!)!.start_after.getTime()).toBeLessThanOrEqual(Date.now());
    expect(jobs.get(deferred!)).toMatchObject({ priority: 0, data: { plan: deferredPlan, mode: 'DEFERRED' } });
    expect(jobs.get(deferred!)!.start_after.getTime()).toBeGreaterThanOrEqual(before + 59_000);
    expect(await queue.relay()).toBe(0);
  });

  it('leaves the rows of a transaction still open, and relays them once it commits', async () => {
    const open = await pool.connect();
    try {
      await open.query('BEGIN');
      const [late] = await queue.enqueue(open, postPlan(), { mode: 'QUEUED' });
      const [early] = await withTransaction(pool, (client) => queue.enqueue(client, postPlan(), { mode: 'QUEUED' }));
      expect(await queue.relay()).toBe(1);
      expect((await jobsIn([early!, late!])).map((j) => j.id)).toEqual([early]);
      await open.query('COMMIT');
      expect(await queue.relay()).toBe(1);
      expect((await jobsIn([early!, late!])).map((j) => j.id).sort()).toEqual([early, late].sort());
    } finally {
      open.release();
    }
  });

  it('relays each row exactly once when several relays run at the same time', async () => {
    const ids = (
      await Promise.all(
        Array.from({ length: 20 }, () =>
          withTransaction(pool, async (client) => {
            const made: string[] = [];
            for (let i = 0; i < 25; i += 1) made.push(...(await queue.enqueue(client, postPlan(), { mode: 'QUEUED' })));
            return made;
          }),
        ),
      )
    ).flat();
    const moved = await Promise.all([queue.relay(100), queue.relay(100), queue.relay(100), queue.relay(100)]);
    let more = 0;
    for (let n = await queue.relay(100); n > 0; n = await queue.relay(100)) more += n;
    expect(moved.reduce((a, b) => a + b, 0) + more).toBe(500);
    expect(moved.filter((n) => n > 0).length).toBeGreaterThan(1);
    // Each relay merged what it took into one job: every write is carried by exactly one job.
    const carried = await carriers(ids);
    expect([...carried.values()].every((jobs) => jobs.length === 1)).toBe(true);
    expect(new Set([...carried.values()].flat()).size).toBeLessThan(50);
    expect(await outboxSize()).toBe(0);
  });

  it('merges the untraced rows due now into one job, named per write in sync_relayed; delayed and fan-out rows stay apart', async () => {
    const plans = Array.from({ length: 30 }, postPlan);
    const shared = randomUUID();
    plans[0]!.user = [shared];
    plans[1]!.user = [shared];
    const before = Date.now();
    const queued = await withTransaction(pool, async (client) => {
      const made: string[] = [];
      for (const plan of plans) made.push(...(await queue.enqueue(client, plan, { mode: 'QUEUED' })));
      return made;
    });
    const [deferred] = await withTransaction(pool, (client) => queue.enqueue(client, postPlan(), { mode: 'DEFERRED' }));
    const [fanOut] = await withTransaction(pool, (client) => queue.enqueue(client, postPlan(), { mode: 'QUEUED', expand: true }));
    expect(await queue.relay()).toBe(32);

    const { unrelayed, merged } = await locateJobs(pool, [...queued, deferred!, fanOut!]);
    expect(unrelayed.size).toBe(0);
    expect([...merged.keys()].sort()).toEqual([...queued].sort());
    const jobId = merged.get(queued[0]!)!;
    expect(new Set(merged.values())).toEqual(new Set([jobId]));
    const [job] = await jobsIn([jobId]);
    expect(job!.priority).toBe(10);
    // Each write with its own plan (in no particular order: the relay takes the rows as DELETE
    // ... RETURNING gives them, which need not be the order they were written in).
    expect(new Map(job!.data.writes!.map((w) => [w.id, w.plan]))).toEqual(new Map(queued.map((id, i) => [id, plans[i]])));
    // The union of the plans, each id once; the earliest write's time.
    expect(job!.data.plan.post.sort()).toEqual(plans.flatMap((p) => p.post).sort());
    expect(job!.data.plan.user).toEqual([shared]);
    expect(job!.data.enqueuedAt).toBe(Math.min(...job!.data.writes!.map((w) => w.enqueuedAt)));
    expect(job!.data.enqueuedAt).toBeGreaterThanOrEqual(before);
    expect((await jobsIn([deferred!, fanOut!])).map((j) => j.id).sort()).toEqual([deferred, fanOut].sort());

    // Split (a worker could not refresh it): a job per write under the write's own id, and the
    // writes no longer in sync_relayed.
    await withTransaction(pool, (client) => queue.split(client, { ...job!.data, writes: job!.data.writes! }));
    expect((await locateJobs(pool, queued)).merged.size).toBe(0);
    const own = new Map((await jobsIn(queued)).map((j) => [j.id, j]));
    expect(own.size).toBe(30);
    const firstWrite = job!.data.writes!.find((w) => w.id === queued[0]);
    expect(own.get(queued[0]!)!.data).toMatchObject({ v: 1, plan: plans[0], mode: 'QUEUED', enqueuedAt: firstWrite!.enqueuedAt });
    expect(own.get(queued[0]!)!.priority).toBe(10);
  });
});
