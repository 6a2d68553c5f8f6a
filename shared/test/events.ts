import type pg from 'pg';
import { withTransaction } from '../src/db/pool';
import { appendEvent } from '../src/events/event-log';

/** Appends a test event about `ids`, `daysAgo` days old (its `at` moved back in the same transaction). */
export async function appendTestEvent(pool: pg.Pool, ids: string[], daysAgo = 0): Promise<void> {
  await withTransaction(pool, async (client) => {
    await appendEvent(client, { command: 'test', entityType: 'post', entityIds: ids, actorId: null, actorAdmin: true, args: { daysAgo } });
    if (daysAgo > 0) {
      await client.query('UPDATE event_log SET at = now() - make_interval(days => $1) WHERE id = (SELECT max(id) FROM event_log)', [
        daysAgo,
      ]);
    }
  });
}

/** How many events name any of `ids`, and how many entity rows point at them. */
export async function eventRows(pool: pg.Pool, ids: string[]): Promise<{ events: number; entities: number }> {
  const { rows } = await pool.query<{ events: number; entities: number }>(
    `SELECT (SELECT count(*) FROM event_log WHERE entity_ids && $1::uuid[])::int AS events,
            (SELECT count(*) FROM event_log_entity WHERE entity_id = ANY($1::uuid[]))::int AS entities`,
    [ids],
  );
  return rows[0]!;
}
