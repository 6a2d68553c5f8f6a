import type { Queryable } from '../db/pool';
import { MODEL, entityOf, isReadTime, linksOf, relationsOf, type Entity, type EntityType } from '../model';
import { ENTITY_TYPES, emptyPlan, type ChangeSet, type SyncPlan } from './types';

/**
 * THE dependency map: which projections embed what. Given the ids that changed on the command side,
 * it returns every projection to refresh. Mutations and the worker use it; nothing else decides
 * what to sync. It is derived from the declarations (shared/src/model); for the ids of a changed
 * entity X it finds:
 *
 *   X itself;
 *   the rows of E embedding X           (E embedsOne X via E.fk:        E where E.fk = X);
 *   the rows of E counting X            (E counts X via X.fk:           X.fk where X = the ids);
 *   the rows of E embedding X through a link table, or counting X through one.
 *
 * Lists and kept counts are read at read time, never stored in a document (declare.ts): no
 * document depends on them, so they have no branch here.
 *
 * `npm run sync -- sql <entity>` prints the result. Relations are read from tb_* (what is true now)
 * and from tv_* (what projections embed now), so deletes are covered: a deleted comment is gone from
 * tb_comment but tv_comment still says which post and author embed it. Except for a row whose own
 * projection is not written yet (its creation is being projected by a worker, uncommitted): a delete
 * of it finds nothing here, so the deletes add the rows their removed rows referenced themselves
 * (referencedBy below; services/api/test/delete-race.e2e.spec.ts).
 *
 * Run it in the writing transaction, after the write. A relation created concurrently cannot be
 * missed: commands take FOR SHARE locks on the rows they reference (see services/api), which
 * conflict with the update of those rows, so either this plan sees the new relation or the other
 * transaction's sync runs after this one committed and reads the new values.
 */
/** The SELECTs (type, id) finding what to refresh when rows of `changed` (ids in $X) change. */
function branchesOf(changed: EntityType): string[] {
  const out: string[] = [];
  /** Rows of `type` found in both tables of the referencing entity (same column names in tb_ and tv_). */
  const both = (type: string, e: Entity, select: string, where: string) => {
    for (const table of [e.table, e.view]) out.push(`SELECT '${type}', ${select} FROM ${table} x WHERE ${where} = ANY($X::uuid[])`);
  };
  for (const e of MODEL) {
    for (const { name, field } of relationsOf(e)) {
      if (isReadTime(field)) continue;
      if (field.kind === 'embedsOne') {
        if (field.entity === changed) both(e.name, e, 'x.id', `x.${field.via}`);
      } else if (field.kind === 'embedsMany') {
        if (field.entity !== changed) continue;
        // The links now, and the documents embedding the rows now (a GIN index on the list serves it).
        const { table, from, to } = field.through;
        out.push(`SELECT '${e.name}', x.${from} FROM ${table} x WHERE x.${to} = ANY($X::uuid[])`);
        out.push(
          `SELECT '${e.name}', x.id FROM unnest($X::uuid[]) AS k(id) ` +
            `JOIN ${e.view} x ON x.data->'${name}' @> jsonb_build_array(jsonb_build_object('id', k.id))`,
        );
      } else if (field.kind === 'count' && field.through) {
        if (field.entity !== changed) continue;
        const { table, from, to } = field.through;
        out.push(`SELECT '${e.name}', x.${from} FROM ${table} x WHERE x.${to} = ANY($X::uuid[])`);
        // The changed rows' documents name the linked rows when they embed them through the same table.
        const counted = entityOf(field.entity);
        for (const embed of relationsOf(counted)) {
          if (embed.field.kind === 'embedsMany' && embed.field.through.table === table && embed.field.entity === e.name) {
            out.push(
              `SELECT '${e.name}', (item->>'id')::uuid FROM ${counted.view} x ` +
                `CROSS JOIN LATERAL jsonb_array_elements(x.data->'${embed.name}') AS item WHERE x.id = ANY($X::uuid[])`,
            );
          }
        }
      } else if (field.kind === 'count') {
        const child = entityOf(field.entity);
        if (child.name === changed) both(e.name, child, `x.${field.via}`, 'x.id');
      }
    }
  }
  return [...new Set(out)];
}

/** The SQL of the branches of one changed entity type; $X is its ids. */
export function branchSql(changed: EntityType): string {
  const lines = [`SELECT '${changed}' AS type, id FROM unnest($X::uuid[]) AS changed(id)`, ...branchesOf(changed)];
  return `\n    ${lines.join('\n    UNION ALL ')}`;
}

const BRANCHES = Object.fromEntries(ENTITY_TYPES.map((t) => [t, branchSql(t)])) as Record<EntityType, string>;

/**
 * One statement per combination of changed entity types (a createPost runs only the post branches),
 * prepared under its own name: planning all branches cost more CPU than running them. Rows come
 * back with duplicates (UNION ALL, no sort) and are de-duplicated here.
 */
const STATEMENTS = new Map<string, { name: string; text: string }>();
export function statementFor(types: readonly EntityType[]): { name: string; text: string } {
  const key = types.join('+');
  let statement = STATEMENTS.get(key);
  if (!statement) {
    // $X in a branch is the ids of its type: parameter 1, 2... in the order of `types`.
    const text = types.map((t, i) => BRANCHES[t].replaceAll('$X', `$${i + 1}`)).join('\n    UNION ALL');
    statement = { name: `blog_plan_sync_${types.join('_')}`, text };
    STATEMENTS.set(key, statement);
  }
  return statement;
}

export async function planSync(client: Queryable, changes: ChangeSet): Promise<SyncPlan> {
  return (await plan(client, changes))!;
}

/**
 * planSync, unless the dependency map finds more than `max` rows to refresh (duplicates included):
 * then undefined, having read at most `max + 1` of them. A command asks this way, so that a change
 * reaching a hundred thousand rows (a prolific user renamed) costs it a bounded read; the workers
 * expand such a change themselves (a fan-out job, shared/src/queue/sync-queue.ts).
 */
export function planSyncBounded(client: Queryable, changes: ChangeSet, max: number): Promise<SyncPlan | undefined> {
  return plan(client, changes, max);
}

async function plan(client: Queryable, changes: ChangeSet, max?: number): Promise<SyncPlan | undefined> {
  const types = ENTITY_TYPES.filter((t) => changes[t]?.length);
  if (!types.length) return emptyPlan();
  const { name, text } = statementFor(types);
  const values: unknown[] = types.map((t) => changes[t]);
  const bounded = max !== undefined;
  if (bounded) values.push(max + 1);
  const { rows } = await client.query<{ type: EntityType; id: string }>({
    name: bounded ? `${name}_bounded` : name,
    text: bounded ? `SELECT * FROM (${text}) found LIMIT $${values.length}` : text,
    values,
  });
  if (bounded && rows.length > max) return undefined;
  const plan = emptyPlan();
  for (const row of rows) plan[row.type].push(row.id);
  for (const t of ENTITY_TYPES) plan[t] = [...new Set(plan[t])];
  return plan;
}

/**
 * A row of the command side by its entity type, id and the values of its plain columns (at least
 * those that reference other entities): a row the current transaction has just inserted, or one it
 * has deleted.
 */
export interface RowRefs {
  type: EntityType;
  id: string;
  columns: Readonly<Record<string, string>>;
}

/**
 * The rows whose documents count or list `row` through the references it holds: for an inserted
 * row, what the branches above would find (see planForInserted); for a deleted one, what a delete
 * adds to its plan in case the row's projection was never written (see the top of this file).
 */
export function referencedBy(row: RowRefs): SyncPlan {
  const plan = emptyPlan();
  for (const e of MODEL) {
    for (const { field } of relationsOf(e)) {
      // A new row has no links yet; a deleted row's links are removed, and planned, by deleteLinks.
      // Only counts in documents (not kept, not through a link) count a row by its own reference.
      if (field.kind !== 'count' || isReadTime(field) || field.through || field.entity !== row.type) continue;
      const id = row.columns[field.via];
      if (id === undefined) throw new Error(`a ${row.type} row's references need its ${field.via} (counted or listed by ${e.name})`);
      if (!plan[e.name].includes(id)) plan[e.name].push(id);
    }
  }
  return plan;
}

/**
 * The plan of the branches above for an entity the current transaction has just inserted, computed
 * without a query (one round trip less for every create). A new row is in no projection yet and
 * nothing else refers to it (no other transaction can see it to refer to it), so every branch that
 * reads tv_*, or looks for rows referring to it, finds nothing: what is left is the entity itself
 * and the rows its own references name. A test holds this equal to planSync() for each kind.
 */
export function planForInserted(row: RowRefs): SyncPlan {
  const plan = referencedBy(row);
  plan[row.type].unshift(row.id);
  return plan;
}

/**
 * Removes the links of these rows (all the link tables through which some entity's fields go),
 * before the rows themselves are deleted, and returns what to refresh for them: on each side of a
 * link, the entity whose field goes through it (a post embedding its tags, a tag counting its posts).
 * Nothing is sent when no link table names the entity.
 */
export async function deleteLinks(client: Queryable, type: EntityType, ids: readonly string[]): Promise<SyncPlan> {
  const plan = emptyPlan();
  const tables = new Map<string, string>();
  for (const e of MODEL) {
    for (const { field } of relationsOf(e)) {
      const link = field.kind === 'embedsMany' ? field.through : field.kind === 'count' ? field.through : undefined;
      if (!link) continue;
      // The column of the link table referencing `type`.
      if (e.name === type) tables.set(link.table, link.from);
      else if (field.entity === type) tables.set(link.table, link.to);
    }
  }
  for (const [table, column] of tables) {
    const { rows } = await client.query<Record<string, string>>(`DELETE FROM ${table} WHERE ${column} = ANY($1::uuid[]) RETURNING *`, [
      ids,
    ]);
    for (const e of MODEL) {
      for (const link of linksOf(e)) {
        if (link.table !== table) continue;
        for (const row of rows) if (!plan[e.name].includes(row[link.from]!)) plan[e.name].push(row[link.from]!);
      }
    }
  }
  return plan;
}
