import {
  deadLetterCount,
  emptyPlan,
  listDeadLetters,
  replayDeadLetters,
  SYNC_DEAD_LETTER_QUEUE,
  SYNC_QUEUE,
  SyncEngine,
  syncQueueDepth,
  syncQueueOptions,
  withTransaction,
  type SyncJobData,
} from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { countCompleted, createFixture, jobRows, testWorkerConfig, waitFor, Writer } from '../test/helpers';
import type { BatchOutcome } from './batch';
import { createWorker, type ProjectionWorker } from './worker';

describe('poison jobs', () => {
  let pool: pg.Pool;
  let writer: Writer;
  let worker: ProjectionWorker | undefined;

  beforeAll(async () => {
    pool = testPool();
    writer = await Writer.start(pool);
  });
  // An earlier test's poison job is still retried with backoff: gone, so that every batch outcome a
  // test reads is of its own jobs.
  beforeEach(async () => {
    await writer.boss.deleteAllJobs(SYNC_QUEUE);
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  afterAll(async () => {
    await writer.stop();
    await pool.end();
  });

  it('the sync queue dead-letters into projection-sync-dead after retries with backoff', () => {
    expect(syncQueueOptions.deadLetter).toBe(SYNC_DEAD_LETTER_QUEUE);
    expect(syncQueueOptions.retryLimit).toBeGreaterThan(0);
    expect(syncQueueOptions.retryBackoff).toBe(true);
  });

  it('fails only the poison job; the rest of its batch completes; after its retries it is a dead letter', async () => {
    const f = await createFixture(pool, { users: 3, posts: 20, comments: 0 });
    const good: string[] = [];
    for (let i = 0; i < 10; i++) good.push(...(await writer.retitle(f.posts[i]!, `good ${i}`)));
    // A job whose plan holds a malformed id: its set-based statement fails (22P02), every time.
    // Inserted between the good ones, with 2 quick retries instead of the queue's 5 with backoff.
    const poison: SyncJobData = {
      v: 1,
      plan: { ...emptyPlan(), post: [f.posts[10]!, 'not-a-uuid'] },
      mode: 'QUEUED',
      enqueuedAt: Date.now(),
    };
    await writer.boss.insert(SYNC_QUEUE, [
      { id: '00000000-0000-4000-8000-00000000dead', data: poison, priority: 10, retryLimit: 2, retryDelay: 1, retryBackoff: false },
    ]);
    for (let i = 11; i < 20; i++) good.push(...(await writer.retitle(f.posts[i]!, `good ${i}`)));
    const poisonId = '00000000-0000-4000-8000-00000000dead';

    const outcomes: BatchOutcome[] = [];
    worker = createWorker(testWorkerConfig({ batchSize: 100 }), { onBatch: (o) => outcomes.push(o) });
    await worker.start();

    await waitFor('first batch settled', async () => outcomes.length >= 1);
    // The first batch held all 20 jobs: 19 completed in it, the poison one failed alone.
    expect(outcomes[0]!.completed).toHaveLength(19);
    expect(outcomes[0]!.failed).toEqual([poisonId]);
    expect((await jobRows(pool, good)).every((r) => r.state === 'completed')).toBe(true);
    const titles = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tv_post WHERE id = ANY($1::uuid[]) AND data->>'title' LIKE 'good %'`,
      [f.posts],
    );
    expect(titles.rows[0]!.n).toBe(19);

    // 1 attempt + 2 retries, then the dead letter queue.
    await waitFor('poison job dead-lettered', async () => (await deadLetterCount(pool)) === 1, 15_000);
    const [row] = await jobRows(pool, [poisonId]);
    expect(row!.state).toBe('failed');
    expect(row!.retry_count).toBe(2);
    expect(outcomes.flatMap((o) => o.failed).filter((id) => id === poisonId)).toHaveLength(3);
    const letters = await listDeadLetters(writer.boss);
    expect(letters).toHaveLength(1);
    expect(letters[0]!.sourceId).toBe(poisonId);
    expect(letters[0]!.attempts).toBe(3);
    expect(letters[0]!.error).toMatch(/uuid/i);
    expect(letters[0]!.data.plan.post).toContain('not-a-uuid');
    // The failures are in sync_log too.
    const failures = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM sync_log WHERE NOT success AND error_message ~* 'uuid'`,
    );
    expect(failures.rows[0]!.n).toBeGreaterThanOrEqual(3);

    // Replay moves it back onto the sync queue, where the worker takes it again.
    const failedBefore = outcomes.flatMap((o) => o.failed).length;
    expect(await replayDeadLetters(writer.boss, { ids: [letters[0]!.id, '00000000-0000-4000-8000-000000000000'] })).toEqual({
      moved: 1,
      notFound: ['00000000-0000-4000-8000-000000000000'],
    });
    expect((await syncQueueDepth(pool)).deadLetters).toBe(0);
    await waitFor('replayed job attempted again', async () => outcomes.flatMap((o) => o.failed).length > failedBefore, 10_000);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  });

  it('fails a job whose payload is malformed without blocking the others', async () => {
    const f = await createFixture(pool, { users: 1, posts: 2, comments: 0 });
    const good = [...(await writer.retitle(f.posts[0]!, 'fine')), ...(await writer.retitle(f.posts[1]!, 'fine too'))];
    await writer.boss.insert(SYNC_QUEUE, [
      { id: '00000000-0000-4000-8000-0000000000ba', data: { hello: 'world' }, priority: 10, retryLimit: 0 },
    ]);
    const outcomes: BatchOutcome[] = [];
    worker = createWorker(testWorkerConfig(), { onBatch: (o) => outcomes.push(o) });
    await worker.start();
    await waitFor('batch settled', async () => outcomes.length >= 1);
    expect(outcomes[0]!.failed).toEqual(['00000000-0000-4000-8000-0000000000ba']);
    expect(outcomes[0]!.completed.sort()).toEqual(good.sort());
  });

  it('a merged job settles for all its writes; one that cannot is split into a job per write; only the poison one fails', async () => {
    const f = await createFixture(pool, { users: 1, posts: 12, comments: 0 });
    // Writes enqueued without relaying each (as under load), then relayed together: one merged job.
    const enqueue = (plan: SyncJobData['plan']) =>
      withTransaction(pool, (client) => writer.queue.enqueue(client, plan, { mode: 'QUEUED' }));
    const retitle = async (post: string, title: string) => {
      await pool.query('UPDATE tb_post SET title = $2, updated_at = now() WHERE id = $1', [post, title]);
      return enqueue({ ...emptyPlan(), post: [post] });
    };
    const first: string[] = [];
    for (let i = 0; i < 5; i++) first.push(...(await retitle(f.posts[i]!, `merged ${i}`)));
    expect(await writer.queue.relayAll()).toBe(5);
    const merged = await pool.query<{ job_id: string }>('SELECT DISTINCT job_id FROM sync_relayed WHERE id = ANY($1::uuid[])', [first]);
    expect(merged.rows).toHaveLength(1);

    const outcomes: BatchOutcome[] = [];
    worker = createWorker(testWorkerConfig({ batchSize: 100 }), { onBatch: (o) => outcomes.push(o) });
    await worker.start();
    await waitFor('the merged job settled', async () => outcomes.some((o) => o.completed.includes(merged.rows[0]!.job_id)));
    // A lag per write, not per job; the writes no longer in sync_relayed (their job is done).
    expect(outcomes.flatMap((o) => o.lagsMs)).toHaveLength(5);
    expect((await pool.query('SELECT 1 FROM sync_relayed')).rowCount).toBe(0);
    expect(await titlesLike(f.posts, 'merged %')).toBe(5);
    await worker.stop();
    worker = undefined;

    // A poison write among good ones (a malformed id: its statement fails every time).
    const second: string[] = [];
    for (let i = 5; i < 8; i++) second.push(...(await retitle(f.posts[i]!, `split ${i}`)));
    const [poison] = await enqueue({ ...emptyPlan(), post: [f.posts[8]!, 'not-a-uuid'] });
    for (let i = 9; i < 12; i++) second.push(...(await retitle(f.posts[i]!, `split ${i}`)));
    expect(await writer.queue.relayAll()).toBe(7);
    const [carrier] = (await pool.query<{ job_id: string }>('SELECT DISTINCT job_id FROM sync_relayed')).rows;

    outcomes.length = 0;
    worker = createWorker(testWorkerConfig({ batchSize: 100 }), { onBatch: (o) => outcomes.push(o) });
    await worker.start();
    await waitFor('the good writes refreshed', async () => (await countCompleted(pool, second)) === second.length);
    expect(outcomes.flatMap((o) => o.split)).toEqual([carrier!.job_id]);
    expect((await jobRows(pool, [carrier!.job_id]))[0]!.state).toBe('completed');
    expect(await titlesLike(f.posts, 'split %')).toBe(6);
    await waitFor('the poison write failed on its own', async () => outcomes.some((o) => o.failed.includes(poison!)));
    expect(outcomes.flatMap((o) => o.failed).every((id) => id === poison)).toBe(true);
    expect(['retry', 'failed']).toContain((await jobRows(pool, [poison!]))[0]!.state);
    expect((await pool.query('SELECT 1 FROM sync_relayed')).rowCount).toBe(0);
  });

  async function titlesLike(posts: readonly string[], pattern: string): Promise<number> {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tv_post WHERE id = ANY($1::uuid[]) AND data->>'title' LIKE $2`,
      [posts, pattern],
    );
    return rows[0]!.n;
  }
});
