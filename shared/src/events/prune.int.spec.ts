import { randomUUID } from 'node:crypto';
import { appendTestEvent, eventRows } from '../../test/events';
import { testPool } from '../../test/helpers';
import { pruneEvents, readEvents } from './event-log';

/**
 * Retention (EVENT_RETENTION_DAYS). A file of its own: its events are appended oldest first, as
 * they are in production (ids follow `at`), which the prune's walk from the oldest id relies on.
 */
describe('event log retention', () => {
  const pool = testPool();
  afterAll(() => pool.end());

  const append = (ids: string[], daysAgo: number) => appendTestEvent(pool, ids, daysAgo);
  const rows = (ids: string[]) => eventRows(pool, ids);

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
