import { comment } from './comment';
import { isReadTime, type Declared, type Field, type Link } from './declare';
import { post } from './post';
import { tag } from './tag';
import { user } from './user';

export * from './declare';

/** Every projected entity: the one list of them. */
export const MODEL = [user, post, comment, tag] as const;

/** A projected entity's name ('user', 'post', ...). */
export type EntityType = (typeof MODEL)[number]['name'];

export const ENTITY_TYPES: readonly EntityType[] = MODEL.map((e) => e.name);

export type Entity = Declared<EntityType>;

const BY_NAME = new Map<string, Entity>(MODEL.map((e) => [e.name, e]));

/** The declaration of an entity type; throws on a name that is none. */
export function entityOf(name: string): Entity {
  const found = BY_NAME.get(name);
  if (!found) throw new Error(`unknown entity type "${name}" (declared: ${ENTITY_TYPES.join(', ')})`);
  return found;
}

export function isEntityType(name: unknown): name is EntityType {
  return typeof name === 'string' && BY_NAME.has(name);
}

type Relation = { readonly name: string; readonly field: Exclude<Field, { kind: 'column' }> };
const RELATIONS = new WeakMap<Entity, readonly Relation[]>();

/**
 * The fields of `entity` that refer to another entity (all but columns), with their names. Kept per
 * declaration (they do not change): the sync and the commands walk them on every write.
 */
export function relationsOf(entity: Entity): readonly Relation[] {
  let relations = RELATIONS.get(entity);
  if (!relations) {
    relations = Object.entries(entity.fields).flatMap(([name, field]) => (field.kind === 'column' ? [] : [{ name, field }]));
    RELATIONS.set(entity, relations);
  }
  return relations;
}

/** The fields of `entity` that its document holds (all but those merged in at read time). */
export function documentFields(entity: Entity): [string, Field][] {
  return Object.entries(entity.fields).filter(([, field]) => !isReadTime(field));
}

/**
 * The entities `entity` references: those it embeds, and those whose document counts it. A row of
 * `entity` changing can change their documents; a refresh of `entity` must lock before them.
 */
function referenced(entity: Entity): EntityType[] {
  const out = new Set<EntityType>();
  for (const { field } of relationsOf(entity)) {
    if (field.kind === 'embedsOne' || field.kind === 'embedsMany') out.add(entityOf(field.entity).name);
  }
  for (const other of MODEL) {
    for (const { field } of relationsOf(other)) {
      if (field.kind === 'count' && !isReadTime(field) && field.entity === entity.name) out.add(other.name);
    }
  }
  out.delete(entity.name);
  return [...out];
}

/**
 * The order in which every sync (incremental or full) refreshes, and so locks, the projections: one
 * fixed order for all, so two syncs never wait for each other in a cycle. An entity comes before the
 * entities it references, which are the more contended rows (every comment changes its post and its
 * author's counts; every post its author's): they come last, to be held for the shortest time, since
 * a row lock is held until COMMIT and what runs after it lengthens the queue of every writer behind it.
 */
export const SYNC_ORDER: readonly EntityType[] = (() => {
  const order: EntityType[] = [];
  const waiting = new Map<EntityType, number>(ENTITY_TYPES.map((t) => [t, 0]));
  for (const e of MODEL) for (const t of referenced(e)) waiting.set(t, waiting.get(t)! + 1);
  while (order.length < MODEL.length) {
    const next = ENTITY_TYPES.find((t) => waiting.get(t) === 0 && !order.includes(t));
    if (!next) throw new Error(`the entities' references form a cycle among ${ENTITY_TYPES.filter((t) => !order.includes(t)).join(', ')}`);
    order.push(next);
    for (const t of referenced(entityOf(next))) waiting.set(t, waiting.get(t)! - 1);
  }
  return order;
})();

/** Throws on a declaration that refers to what does not exist (checked when the module loads). */
function check(entity: Entity): void {
  const where = (name: string) => `model ${entity.name}.${name}`;
  const aliases = MODEL.filter((e) => e.alias === entity.alias);
  if (aliases.length > 1) throw new Error(`model ${entity.name}: alias "${entity.alias}" is also ${aliases[1]!.name}'s`);
  for (const { name, field } of relationsOf(entity)) {
    const other = BY_NAME.get(field.entity);
    if (!other) throw new Error(`${where(name)}: no entity "${field.entity}"`);
    // The referencing side's column must be a plain column of its projection too: the dependency map
    // finds the rows that referenced a deleted row there.
    const referencing = field.kind === 'embedsOne' ? entity : other;
    if (field.kind !== 'embedsMany' && !(field.kind === 'count' && field.through) && !(field.via in referencing.columns)) {
      throw new Error(
        `${where(name)}: "${field.via}" must be a plain column of ${referencing.view} (declared in ${referencing.name}.columns)`,
      );
    }
    if (field.kind === 'embedsOne' || field.kind === 'list' || field.kind === 'embedsMany') {
      for (const f of field.fields) if (!(f in other.fields)) throw new Error(`${where(name)}: ${other.name} has no field "${f}"`);
    }
    if (field.kind === 'count' && field.kept && !entity.keptCounts)
      throw new Error(`${where(name)}: kept counts need ${entity.name}.keptCounts`);
    if (field.kind === 'count' && field.kept && field.through)
      throw new Error(`${where(name)}: a count through a link table cannot be kept`);
    // Read-time values are read from the other entity's projection: its plain columns must say.
    if (field.kind === 'count' && field.where && !(field.where in other.columns)) {
      throw new Error(`${where(name)}: "${field.where}" must be a plain column of ${other.view} (declared in ${other.name}.columns)`);
    }
    if (field.kind === 'list' && !('created_at' in other.columns))
      throw new Error(`${where(name)}: ${other.view} must keep created_at (lists page by it)`);
  }
  for (const [arg, filter] of Object.entries(entity.read.list?.filters ?? {})) {
    if (filter.contains) {
      if (entity.fields[filter.contains.field]?.kind !== 'embedsMany')
        throw new Error(`model ${entity.name}.read.list.filters.${arg}: ${filter.contains.field} is not an embedded list`);
    } else if (!(filter.column in entity.columns))
      throw new Error(`model ${entity.name}.read.list.filters.${arg}: "${filter.column}" is not a plain column of ${entity.view}`);
  }
}
MODEL.forEach(check);

/** The command side's tables: the entities' own, the tables their kept counts live in, the link tables. */
export function commandTables(): string[] {
  return [...new Set(MODEL.flatMap((e) => [e.table, ...(e.keptCounts ? [e.keptCounts.table] : []), ...linksOf(e).map((l) => l.table)]))];
}

/** The link tables an entity's fields go through. */
export function linksOf(entity: Entity): Link[] {
  return relationsOf(entity).flatMap(({ field }) =>
    field.kind === 'embedsMany' ? [field.through] : field.kind === 'count' && field.through ? [field.through] : [],
  );
}
