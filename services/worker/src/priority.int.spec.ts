import { createBoss, SyncQueue, SyncEngine } from '@blog/shared';
import { testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { createFixture, jobRows, sleep, testWorkerConfig, waitFor, Writer } from '../test/helpers';
import { createWorker, type ProjectionWorker } from './worker';

describe('priorities and deferral', () => {
  let pool: pg.Pool;
  let writer: Writer;
  let worker: ProjectionWorker | undefined;

  beforeAll(async () => {
    pool = testPool();
    writer = await Writer.start(pool);
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  afterAll(async () => {
    await writer.stop();
    await pool.end();
  });

  const title = async (post: string) =>
    (await pool.query<{ title: string }>(`SELECT data->>'title' AS title FROM tv_post WHERE id = $1`, [post])).rows[0]!.title;

  it('runs a DEFERRED sync only after its delay (added directly with SyncQueue.add)', async () => {
    const f = await createFixture(pool, { users: 1, posts: 1, comments: 2 });
    const post = f.posts[0]!;
    worker = createWorker(testWorkerConfig({ pollIntervalMs: 500 }));
    await worker.start();
    // A background write that syncs later: change tb_post, then add a deferred sync for it directly
    // (the seed's `sync_queue.add(post_id)`), 2 s out.
    await pool.query(`UPDATE tb_post SET title = 'deferred title', updated_at = now() WHERE id = $1`, [post]);
    const boss = createBoss({ url: testDatabaseUrl(), applicationName: 'blog-test-add', maintenance: false });
    await boss.start();
    let ids: string[];
    const added = Date.now();
    try {
      ids = await new SyncQueue(boss, pool).add({ post: [post] }, { deferSeconds: 2 });
    } finally {
      await boss.stop({ graceful: false, close: true });
    }
    expect(ids).toHaveLength(1);
    // The running worker relays it from the sync outbox to pg-boss within its poll interval.
    await waitFor('job relayed to pg-boss', async () => (await jobRows(pool, ids)).length === 1);
    const [job] = await jobRows(pool, ids);
    expect(job!.priority).toBe(0);

    await sleep(1200);
    expect((await jobRows(pool, ids))[0]!.state).toBe('created');
    expect(await title(post)).not.toBe('deferred title');

    await waitFor('deferred job completed', async () => (await jobRows(pool, ids))[0]!.state === 'completed', 10_000);
    const done = (await jobRows(pool, ids))[0]!;
    expect(done.completed_on!.getTime()).toBeGreaterThanOrEqual(added + 2000 - 50);
    expect(done.completed_on!.getTime()).toBeGreaterThanOrEqual(done.start_after.getTime());
    expect(await title(post)).toBe('deferred title');
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  });

  it('takes every due high-priority (QUEUED) job before any due DEFERRED job', async () => {
    const f = await createFixture(pool, { users: 2, posts: 40, comments: 0 });
    // DEFERRED first (older), with no delay left, then QUEUED: age alone would favour the deferred ones.
    const deferred: string[] = [];
    for (let i = 0; i < 20; i++) deferred.push(...(await writer.retitle(f.posts[i]!, `deferred ${i}`, 'DEFERRED', 0)));
    const queued: string[] = [];
    for (let i = 20; i < 40; i++) queued.push(...(await writer.retitle(f.posts[i]!, `queued ${i}`, 'QUEUED')));
    await sleep(50); // the deferred jobs' start_after (now + 0 s) is behind us

    worker = createWorker(testWorkerConfig({ batchSize: 5 }));
    await worker.start();
    const all = [...deferred, ...queued];
    await waitFor('all completed', async () => (await jobRows(pool, all)).every((r) => r.state === 'completed'));
    const rows = await jobRows(pool, all);
    const at = (ids: string[]) => rows.filter((r) => ids.includes(r.id)).map((r) => r.completed_on!.getTime());
    // Batches of 5 run one after another: the 4 batches of QUEUED jobs commit before the first DEFERRED one.
    expect(Math.max(...at(queued))).toBeLessThanOrEqual(Math.min(...at(deferred)));
    expect(rows.filter((r) => queued.includes(r.id)).every((r) => r.priority === 10)).toBe(true);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  });
});
