import type { Queryable } from '../db/pool';
import { MODEL, entityOf, relationsOf, type EntityType } from '../model';
import { ENTITY_TYPES, emptyPlan, type ChangeSet, type SyncPlan } from './types';

/**
 * THE dependency map: which projections embed what. Given the ids that changed on the command side,
 * it returns every projection to refresh. Mutations and the worker use it; nothing else decides
 * what to sync. It is derived from the declarations (shared/src/model); for the ids of a changed
 * entity X it finds:
 *
 *   X itself;
 *   the rows of E embedding X           (E embedsOne X via E.fk:        E where E.fk = X);
 *   the rows of E counting or listing X (E counts/lists X via X.fk:     X.fk where X = the ids);
 *   the rows of E listing rows that embed X (E lists C via C.fk, C's items embed X via C.fk2:
 *                                        C.fk where C.fk2 = X).
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
interface Branch {
  /** The entity type of the ids found. */
  type: EntityType;
  /** `SELECT <id> FROM <table> x WHERE <condition on $X>` without the table: `column`, `table` and `where`. */
  select: string;
  where: string;
  /** The referencing entity whose tb_ and tv_ tables are read (their columns have the same names). */
  entity: EntityType;
}

function branchesOf(changed: EntityType): Branch[] {
  const out: Branch[] = [];
  for (const e of MODEL) {
    for (const { field } of relationsOf(e)) {
      if (field.kind === 'embedsOne') {
        if (field.entity === changed) out.push({ type: e.name, entity: e.name, select: 'x.id', where: `x.${field.via}` });
        continue;
      }
      const child = entityOf(field.entity);
      if (child.name === changed) out.push({ type: e.name, entity: child.name, select: `x.${field.via}`, where: 'x.id' });
      if (field.kind === 'list') {
        for (const f of field.fields) {
          const item = child.fields[f]!;
          if (item.kind === 'embedsOne' && item.entity === changed) {
            out.push({ type: e.name, entity: child.name, select: `x.${field.via}`, where: `x.${item.via}` });
          }
        }
      }
    }
  }
  // Each branch once (two counts over the same relation find the same rows).
  const seen = new Set<string>();
  return out.filter((b) => {
    const key = `${b.type}|${b.entity}|${b.select}|${b.where}`;
    return !seen.has(key) && seen.add(key);
  });
}

/** The SQL of the branches of one changed entity type; $X is its ids. */
export function branchSql(changed: EntityType): string {
  const lines = [`SELECT '${changed}' AS type, id FROM unnest($X::uuid[]) AS changed(id)`];
  for (const b of branchesOf(changed)) {
    const e = entityOf(b.entity);
    for (const table of [e.table, e.view]) lines.push(`SELECT '${b.type}', ${b.select} FROM ${table} x WHERE ${b.where} = ANY($X::uuid[])`);
  }
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
  const types = ENTITY_TYPES.filter((t) => changes[t]?.length);
  if (!types.length) return emptyPlan();
  const { name, text } = statementFor(types);
  const { rows } = await client.query<{ type: EntityType; id: string }>({
    name,
    text,
    values: types.map((t) => changes[t]),
  });
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
      if (field.kind === 'embedsOne' || field.entity !== row.type) continue;
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
