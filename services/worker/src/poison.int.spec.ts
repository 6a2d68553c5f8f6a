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
  type SyncJobData,
} from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { createFixture, jobRows, testWorkerConfig, waitFor, Writer } from '../test/helpers';
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
});
