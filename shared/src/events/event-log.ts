import type pg from 'pg';
import type { SqlPart } from '../db/compose';

/**
 * The event log (migration 010): one row per committed command, appended by the command's own
 * transaction, read by admins (the API's `events` query), pruned by the workers after the
 * retention period. Rows are never updated: this module has no statement that would.
 */

/** One command's event, as the command appends it. */
export interface CommandEvent {
  /** The mutation's name: createPost, tagPost... */
  command: string;
  /** The type of entityIds[0]. */
  entityType: string;
  /** The entity the command is about, then the other rows it wrote; each once. */
  entityIds: readonly string[];
  /** The token's subject; null without a token. */
  actorId: string | null;
  actorAdmin: boolean;
  /** The validated arguments, without the sync mode. */
  args: Record<string, unknown>;
}

/** A stored event, as `events` reads it. */
export interface StoredEvent extends Omit<CommandEvent, 'args'> {
  /** A bigint, as text. */
  id: string;
  at: Date;
  /** The arguments as JSON text. */
  args: string;
}

/** The event's row, and its entities' rows (event_log_entity) of the event row `e`. */
const EVENT_ROW = `
    INSERT INTO event_log (command, entity_type, entity_ids, actor_id, actor_admin, args)
    VALUES ($1, $2, $3::uuid[], $4::uuid, $5, $6::jsonb)
    RETURNING id`;
const ENTITY_ROWS = `
  INSERT INTO event_log_entity (entity_id, event_id)
  SELECT u.id, e.id FROM e, unnest($3::uuid[]) AS u(id)`;

/** The event and its entities' rows in one statement. */
const APPEND = `
  WITH e AS (${EVENT_ROW})${ENTITY_ROWS}`;

function eventValues(event: CommandEvent): unknown[] {
  if (!event.entityIds.length) throw new Error(`the ${event.command} event names no entity`);
  return [event.command, event.entityType, event.entityIds, event.actorId, event.actorAdmin, JSON.stringify(event.args)];
}

/** The event's rows as parts of a command's one statement (CTEs `e` and `event_entities`). */
export function eventPart(event: CommandEvent): SqlPart {
  return {
    ctes: [
      ['e', EVENT_ROW],
      ['event_entities', ENTITY_ROWS],
    ],
    values: eventValues(event),
  };
}

/**
 * Sends the statement that appends `event`, on the caller's transaction, and returns its promise
 * without waiting: the caller sends it with its other statements and awaits it before COMMIT.
 */
export function appendEvent(client: pg.ClientBase, event: CommandEvent): Promise<pg.QueryResult> {
  try {
    return client.query(APPEND, eventValues(event));
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The largest bigint: the start of a walk from the newest event down. */
const NEWEST = '9223372036854775807';

/**
 * Up to `limit` events of an entity, newest first, with ids below `beforeId` when given (the keyset
 * of the next page): a range scan of event_log_entity's primary key, then each event by its id.
 */
export async function readEvents(db: Pick<pg.Pool, 'query'>, entityId: string, limit: number, beforeId?: string): Promise<StoredEvent[]> {
  const { rows } = await db.query<{
    id: string;
    at: Date;
    command: string;
    entity_type: string;
    entity_ids: string[];
    actor_id: string | null;
    actor_admin: boolean;
    args: string;
  }>(
    `SELECT e.id::text AS id, e.at, e.command, e.entity_type, e.entity_ids, e.actor_id, e.actor_admin, e.args::text AS args
       FROM (SELECT event_id FROM event_log_entity
              WHERE entity_id = $1 AND event_id < $2::bigint
              ORDER BY event_id DESC LIMIT $3) l
       JOIN event_log e ON e.id = l.event_id
      ORDER BY e.id DESC`,
    [entityId, beforeId ?? NEWEST, limit],
  );
  return rows.map((r) => ({
    id: r.id,
    at: r.at,
    command: r.command,
    entityType: r.entity_type,
    entityIds: r.entity_ids,
    actorId: r.actor_id,
    actorAdmin: r.actor_admin,
    args: r.args,
  }));
}

/** Events deleted per statement (each its own transaction) by pruneEvents. */
export const PRUNE_BATCH = 10_000;

/**
 * Deletes the events older than `retentionDays` days (0: none), and their entities' rows, in
 * statements of at most `batchSize` events, each its own transaction, so that a first prune of a
 * large log is no long transaction. Each statement takes the oldest `batchSize` events by id (the
 * primary key: no index on `at` is needed) and deletes those older than the limit; it stops at the
 * first batch with fewer. An event whose transaction started before the limit but inserted after a
 * newer one is deleted by a later run. Returns the events deleted.
 */
export async function pruneEvents(db: Pick<pg.Pool, 'query'>, retentionDays: number, batchSize = PRUNE_BATCH): Promise<number> {
  if (retentionDays <= 0) return 0;
  let total = 0;
  for (;;) {
    const { rows } = await db.query<{ deleted: number }>(
      `WITH old AS (
         SELECT id, entity_ids FROM (SELECT id, at, entity_ids FROM event_log ORDER BY id LIMIT $2) oldest
          WHERE at < now() - make_interval(days => $1)),
       entities AS (
         DELETE FROM event_log_entity l USING (SELECT id, unnest(entity_ids) AS entity_id FROM old) o
          WHERE l.entity_id = o.entity_id AND l.event_id = o.id),
       events AS (
         DELETE FROM event_log e USING old WHERE e.id = old.id RETURNING 1)
       SELECT count(*)::int AS deleted FROM events`,
      [retentionDays, batchSize],
    );
    const deleted = rows[0]!.deleted;
    total += deleted;
    if (deleted < batchSize) return total;
  }
}
