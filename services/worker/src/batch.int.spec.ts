import {
  emptyPlan,
  lagPercentilesSince,
  MAX_IDS_PER_JOB,
  planSize,
  SyncEngine,
  syncQueueDepth,
  withTransaction,
  type EntityType,
  type SyncPlan,
} from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { countCompleted, createFixture, testWorkerConfig, waitFor, Writer } from '../test/helpers';
import { MAX_IDS_PER_TRANSACTION, type BatchOutcome } from './batch';
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

  it(
    'expands a fan-out job into jobs of at most MAX_IDS_PER_JOB ids ' +
      'and settles them in transactions of at most MAX_IDS_PER_TRANSACTION ids',
    async () => {
      const f = await createFixture(pool, { users: 1, posts: 3, comments: 7000 });
      await new SyncEngine(pool).refresh({ user: f.users, post: f.posts, comment: f.comments });
      const [user] = f.users as [string];
      // A rename left to the workers, as a command past SYNC_FANOUT_MAX_IDS leaves it.
      const [fanOut] = await withTransaction(pool, async (c) => {
        await c.query(`UPDATE tb_user SET full_name = 'Fanned Out', updated_at = now() WHERE id = $1`, [user]);
        return writer.queue.enqueue(c, { ...emptyPlan(), user: [user] }, { mode: 'QUEUED', expand: true });
      });
      const since = new Date();
      const outcomes: BatchOutcome[] = [];
      worker = createWorker(testWorkerConfig({ batchSize: 100 }), { onBatch: (o) => outcomes.push(o) });
      await worker.start();
      await waitFor('the fan-out synced', async () => {
        const { rows } = await pool.query(`SELECT count(*)::int AS n FROM tv_comment WHERE data->'author'->>'fullName' = 'Fanned Out'`);
        return rows[0].n === 7000 && (await syncQueueDepth(pool)).ready === 0;
      });
      expect(await countCompleted(pool, [fanOut!])).toBe(1);
      // The expansion: 1 user + 3 posts + 7,000 comments, in jobs of at most 2,000 ids.
      const { rows: jobs } = await pool.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM jsonb_each(data->'plan') e, jsonb_array_elements(e.value))::int AS n
         FROM pgboss.job WHERE name = 'projection-sync' AND created_on >= $1 AND data->>'expand' IS NULL`,
        [since],
      );
      expect(jobs.map((j) => j.n).reduce((a, b) => a + b, 0)).toBe(7004);
      for (const j of jobs) expect(j.n).toBeLessThanOrEqual(MAX_IDS_PER_JOB);
      // Every sync transaction's comment refresh stayed within the bound.
      const log = await syncLogSince(since);
      expect(log.filter((r) => r.entity_type === 'comment').every((r) => r.entity_count <= MAX_IDS_PER_TRANSACTION)).toBe(true);
      expect(outcomes.reduce((n, o) => n + o.transactions, 0)).toBeGreaterThanOrEqual(Math.ceil(7004 / MAX_IDS_PER_TRANSACTION) + 1);
      expect((await new SyncEngine(pool).verify()).total).toBe(0);
    },
  );

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
