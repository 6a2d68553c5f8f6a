import { ENTITY_TYPES, type EntityType } from '../model';

export { ENTITY_TYPES, SYNC_ORDER, type EntityType } from '../model';

/** Ids to refresh, per entity type. */
export type SyncPlan = Record<EntityType, string[]>;

/** Ids that changed on the command side (input to the dependency map). */
export type ChangeSet = Partial<Record<EntityType, readonly string[]>>;

export function emptyPlan(): SyncPlan {
  return Object.fromEntries(ENTITY_TYPES.map((t) => [t, []])) as unknown as SyncPlan;
}

export function planSize(plan: Partial<SyncPlan>): number {
  return ENTITY_TYPES.reduce((n, t) => n + (plan[t]?.length ?? 0), 0);
}

/** Union of plans, each id once (in first-seen order). */
export function mergePlans(plans: Iterable<Partial<Record<EntityType, readonly string[]>>>): SyncPlan {
  const sets = new Map(ENTITY_TYPES.map((t) => [t, new Set<string>()]));
  for (const plan of plans) {
    for (const type of ENTITY_TYPES) for (const id of plan[type] ?? []) sets.get(type)!.add(id);
  }
  return Object.fromEntries(ENTITY_TYPES.map((t) => [t, [...sets.get(t)!]])) as unknown as SyncPlan;
}
