import { lagPercentilesSince, planSize, SyncEngine, syncQueueDepth, type EntityType, type SyncPlan } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { countCompleted, createFixture, testWorkerConfig, waitFor, Writer } from '../test/helpers';
import type { BatchOutcome } from './batch';
import { createWorker, type ProjectionWorker } from './worker';

describe('batch drain', () => {
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

  const syncLogSince = async (since: Date) =>
    (
      await pool.query<{ entity_type: string; entity_count: number; success: boolean }>(
        `SELECT entity_type, entity_count, success FROM sync_log WHERE created_at >= $1 ORDER BY id`,
        [since],
      )
    ).rows;

  it('turns a batch of mixed jobs into one set-based sync per entity type and completes every job', async () => {
    const f = await createFixture(pool, { users: 4, posts: 6, comments: 12 });
    // 30 writes of three kinds, overlapping on the same posts and users: their plans share ids.
    const jobIds: string[] = [];
    for (let i = 0; i < 10; i++) {
      jobIds.push(...(await writer.retitle(f.posts[i % 6]!, `title ${i}`)));
      jobIds.push(...(await writer.comment(f.posts[i % 3]!, f.users[i % 4]!, `new comment ${i}`)));
      jobIds.push(...(await writer.rename(f.users[i % 2]!, `Renamed ${i}`)));
    }
    expect(jobIds).toHaveLength(30);
    const plans = (
      await pool.query<{ plan: SyncPlan }>(
        `SELECT data->'plan' AS plan FROM pgboss.job WHERE name = 'projection-sync' AND id = ANY($1::uuid[])`,
        [jobIds],
      )
    ).rows.map((r) => r.plan);
    const distinct = (t: EntityType) => new Set(plans.flatMap((p) => p[t])).size;
    const requested = plans.reduce((n, p) => n + planSize(p), 0);

    const since = new Date();
    const outcomes: BatchOutcome[] = [];
    worker = createWorker(testWorkerConfig({ batchSize: 100 }), { onBatch: (o) => outcomes.push(o) });
    await worker.start();
    await waitFor('all jobs completed', async () => (await countCompleted(pool, jobIds)) === 30);

    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]!.completed.sort()).toEqual([...jobIds].sort());
    expect(outcomes[0]!.transactions).toBe(1);
    // One sync_log row per entity type, each covering every distinct id of the 30 plans.
    const log = await syncLogSince(since);
    expect(log.map((r) => [r.entity_type, r.entity_count, r.success])).toEqual([
      ['comment', distinct('comment'), true],
      ['post', distinct('post'), true],
      ['user', distinct('user'), true],
    ]);
    expect(distinct('user') + distinct('post') + distinct('comment')).toBeLessThan(requested);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
    const titles = await pool.query<{ title: string }>(`SELECT data->>'title' AS title FROM tv_post WHERE id = $1`, [f.posts[3]]);
    expect(titles.rows[0]!.title).toBe('title 9');
  });

  it('coalesces a burst of writes to one entity into a few syncs and keeps the last change', async () => {
    const f = await createFixture(pool, { users: 1, posts: 1, comments: 0 });
    const post = f.posts[0]!;
    worker = createWorker(testWorkerConfig({ batchSize: 100 }));
    await worker.start();
    // Hold the post's projection row so the first sync blocks: the burst piles up behind it, as it
    // does whenever writes arrive faster than one sync takes.
    const blocker = await pool.connect();
    const since = new Date();
    const jobIds: string[] = [];
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM tv_post WHERE id = $1 FOR UPDATE', [post]);
      for (let i = 1; i <= 200; i++) jobIds.push(...(await writer.retitle(post, `burst ${i}`)));
    } finally {
      await blocker.query('COMMIT');
      blocker.release();
    }
    await waitFor('burst drained', async () => (await countCompleted(pool, jobIds)) === 200);
    const postSyncs = (await syncLogSince(since)).filter((r) => r.entity_type === 'post');
    // The first sync (taken before the burst piled up) plus batches of at most 100 jobs.
    expect(postSyncs.length).toBeGreaterThanOrEqual(1);
    expect(postSyncs.length).toBeLessThanOrEqual(4);
    expect(postSyncs.every((r) => r.entity_count === 1)).toBe(true);
    const { rows } = await pool.query<{ title: string }>(`SELECT data->>'title' AS title FROM tv_post WHERE id = $1`, [post]);
    expect(rows[0]!.title).toBe('burst 200');
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
    // Every write's lag was measured, once.
    const lag = await lagPercentilesSince(pool, new Date(since.getTime() - 60_000));
    expect(lag.QUEUED!.samples).toBeGreaterThanOrEqual(200);
    expect(lag.QUEUED!.p99_ms).toBeGreaterThan(0);
    expect((await syncQueueDepth(pool)).ready).toBe(0);
  });
});
