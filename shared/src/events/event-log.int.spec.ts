import { randomUUID } from 'node:crypto';
import { testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { appendEvent, readEvents } from './event-log';

describe('event log', () => {
  const pool = testPool();
  afterAll(() => pool.end());

  async function append(ids: string[]): Promise<void> {
    await withTransaction(pool, (client) =>
      appendEvent(client, { command: 'test', entityType: 'post', entityIds: ids, actorId: null, actorAdmin: true, args: { daysAgo: 0 } }),
    );
  }

  async function rows(ids: string[]): Promise<{ events: number; entities: number }> {
    const { rows: r } = await pool.query<{ events: number; entities: number }>(
      `SELECT (SELECT count(*) FROM event_log WHERE entity_ids && $1::uuid[])::int AS events,
              (SELECT count(*) FROM event_log_entity WHERE entity_id = ANY($1::uuid[]))::int AS entities`,
      [ids],
    );
    return r[0]!;
  }

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
