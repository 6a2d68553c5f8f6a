import { randomUUID } from 'node:crypto';
import { testDatabaseUrl, testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { SyncQueue } from './sync-queue';
import { createBoss } from './boss';
import { syncQueueDepth } from './depth';
import { emptyPlan } from '../sync/types';
import { SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE } from './queues';

describe('sync queue depth', () => {
  const pool = testPool();
  const boss = createBoss({ url: testDatabaseUrl(), applicationName: 'blog-test-depth', maintenance: false });
  beforeAll(() => boss.start());
  afterAll(async () => {
    await boss.stop({ graceful: false, close: true });
    await pool.end();
  });

  it('counts ready, scheduled, active and dead-lettered jobs live', async () => {
    expect(await syncQueueDepth(pool)).toEqual({ ready: 0, scheduled: 0, outbox: 0, retrying: 0, active: 0, deadLetters: 0 });
    const data = { v: 1, plan: emptyPlan(), mode: 'QUEUED', enqueuedAt: Date.now() };
    await boss.insert(SYNC_QUEUE, [{ data }, { data }, { data }, { data, startAfter: new Date(Date.now() + 60_000) }]);
    await boss.send(SYNC_DEAD_LETTER_QUEUE, data);
    const [taken] = await boss.fetch(SYNC_QUEUE, { batchSize: 1 });
    expect(taken).toBeDefined();
    expect(await syncQueueDepth(pool)).toEqual({ ready: 2, scheduled: 1, outbox: 0, retrying: 0, active: 1, deadLetters: 1 });
    // Jobs recorded by writes and not yet relayed count too: one ready, one deferred.
    const queue = new SyncQueue(boss, pool);
    await withTransaction(pool, async (client) => {
      await queue.enqueue(client, { ...emptyPlan(), post: [randomUUID()] }, { mode: 'QUEUED' });
      await queue.enqueue(client, { ...emptyPlan(), post: [randomUUID()] }, { mode: 'DEFERRED', deferSeconds: 60 });
    });
    expect(await syncQueueDepth(pool)).toEqual({ ready: 3, scheduled: 2, outbox: 2, retrying: 0, active: 1, deadLetters: 1 });
  });
});
