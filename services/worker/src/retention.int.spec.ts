import { randomUUID } from 'node:crypto';
import { appendEvent, withTransaction } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { testWorkerConfig, waitFor } from '../test/helpers';
import { createWorker, type ProjectionWorker } from './worker';

/** EVENT_RETENTION_DAYS: a worker deletes the older events when it starts (then every hour). */
describe('event retention', () => {
  let pool: pg.Pool;
  let worker: ProjectionWorker | undefined;

  beforeAll(() => {
    pool = testPool();
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
  });
  afterAll(() => pool.end());

  async function append(entityId: string, daysAgo: number): Promise<void> {
    await withTransaction(pool, async (client) => {
      await appendEvent(client, { command: 'test', entityType: 'post', entityIds: [entityId], actorId: null, actorAdmin: true, args: {} });
      await client.query(`UPDATE event_log SET at = now() - make_interval(days => $1) WHERE id = (SELECT max(id) FROM event_log)`, [
        daysAgo,
      ]);
    });
  }

  const count = async (ids: string[]) =>
    (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM event_log WHERE entity_ids[1] = ANY($1::uuid[])', [ids])).rows[0]!.n;

  it('deletes the events older than EVENT_RETENTION_DAYS and keeps the others; 0 keeps them all', async () => {
    const [older, old, recent] = [randomUUID(), randomUUID(), randomUUID()];
    await append(older, 40);
    await append(old, 20);
    await append(recent, 5);

    worker = createWorker(testWorkerConfig({ eventRetentionDays: 30, name: 'blog-worker-retention-30' }));
    await worker.start();
    await waitFor('the event older than 30 days deleted', async () => (await count([older])) === 0, 10_000);
    expect(await count([old, recent])).toBe(2);
    await worker.stop();

    worker = createWorker(testWorkerConfig({ eventRetentionDays: 0, name: 'blog-worker-retention-0' }));
    await worker.start();
    await new Promise((r) => setTimeout(r, 1000)); // a prune at start would be done by now
    expect(await count([old, recent])).toBe(2);
    await worker.stop();

    worker = createWorker(testWorkerConfig({ eventRetentionDays: 10, name: 'blog-worker-retention-10' }));
    await worker.start();
    await waitFor('the event older than 10 days deleted', async () => (await count([old])) === 0, 10_000);
    expect(await count([recent])).toBe(1);
  });
});
