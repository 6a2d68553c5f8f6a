import { randomUUID } from 'node:crypto';
import { appendTestEvent, eventRows } from '../../test/events';
import { testPool } from '../../test/helpers';
import { readEvents } from './event-log';

describe('event log', () => {
  const pool = testPool();
  afterAll(() => pool.end());

  const append = (ids: string[]) => appendTestEvent(pool, ids);
  const rows = (ids: string[]) => eventRows(pool, ids);

  it('appends one event with a row per entity, read newest first, a page below a given id', async () => {
    const [post, comment] = [randomUUID(), randomUUID()];
    await append([post]);
    await append([comment, post]);
    expect(await rows([post, comment])).toEqual({ events: 2, entities: 3 });
    const events = await readEvents(pool, post, 10);
    expect(events.map((e) => e.entityIds)).toEqual([[comment, post], [post]]);
    expect(events[0]).toMatchObject({ command: 'test', entityType: 'post', actorId: null, actorAdmin: true, args: '{"daysAgo": 0}' });
    expect(await readEvents(pool, post, 1, events[0]!.id)).toEqual([events[1]]);
    expect(await readEvents(pool, comment, 10)).toEqual([events[0]]);
    // A page is the newest events below the cursor.
    await append([post]);
    const [newest, ...rest] = await readEvents(pool, post, 10);
    expect(rest).toEqual(events);
    expect(await readEvents(pool, post, 2)).toEqual([newest, events[0]]);
    expect(await readEvents(pool, post, 1, newest!.id)).toEqual([events[0]]);
  });
});
