import { randomUUID } from 'node:crypto';
import { testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { appendEvent, pruneEvents, readEvents } from './event-log';

/**
 * Retention (EVENT_RETENTION_DAYS). A file of its own: its events are appended oldest first, as
 * they are in production (ids follow `at`), which the prune's walk from the oldest id relies on.
 */
describe('event log retention', () => {
  const pool = testPool();
  afterAll(() => pool.end());

  /** Appends an event about `ids`, `daysAgo` days old (its `at` moved back in the same transaction). */
  async function append(ids: string[], daysAgo: number): Promise<void> {
    await withTransaction(pool, async (client) => {
      await appendEvent(client, {
        command: 'test',
        entityType: 'post',
        entityIds: ids,
        actorId: null,
        actorAdmin: true,
        args: { daysAgo },
      });
      await client.query('UPDATE event_log SET at = now() - make_interval(days => $1) WHERE id = (SELECT max(id) FROM event_log)', [
        daysAgo,
      ]);
    });
  }

  async function rows(ids: string[]): Promise<{ events: number; entities: number }> {
    const { rows: r } = await pool.query<{ events: number; entities: number }>(
      `SELECT (SELECT count(*) FROM event_log WHERE entity_ids && $1::uuid[])::int AS events,
              (SELECT count(*) FROM event_log_entity WHERE entity_id = ANY($1::uuid[]))::int AS entities`,
      [ids],
    );
    return r[0]!;
  }

  it('deletes the events older than the retention, with their entities, in batches; 0 keeps everything', async () => {
    const old = Array.from({ length: 5 }, () => randomUUID());
    const recent = randomUUID();
    for (const id of old) await append([id, recent], 100);
    await append([recent], 89);
    await append([recent], 0);
    expect(await rows([...old, recent])).toEqual({ events: 7, entities: 12 });

    expect(await pruneEvents(pool, 0, 2)).toBe(0);
    expect(await rows([...old, recent])).toEqual({ events: 7, entities: 12 });

    // Batches of 2: three statements delete the five old ones (the third finds one, and stops).
    expect(await pruneEvents(pool, 90, 2)).toBe(5);
    expect(await rows(old)).toEqual({ events: 0, entities: 0 });
    expect(await rows([recent])).toEqual({ events: 2, entities: 2 });
    expect((await readEvents(pool, recent, 10)).map((e) => JSON.parse(e.args).daysAgo)).toEqual([0, 89]);
    expect(await pruneEvents(pool, 90, 2)).toBe(0);
    expect(await pruneEvents(pool, 30, 2)).toBe(1);
    expect(await rows([recent])).toEqual({ events: 1, entities: 1 });
  });
});
