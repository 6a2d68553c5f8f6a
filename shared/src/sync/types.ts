export const ENTITY_TYPES = ['user', 'post', 'comment'] as const;

/** The three projected entities, in the order every sync processes (and locks) them. */
export type EntityType = (typeof ENTITY_TYPES)[number];

/** Ids to refresh, per entity type. */
export interface SyncPlan {
  user: string[];
  post: string[];
  comment: string[];
}

/** Ids that changed on the command side (input to the dependency map). */
export interface ChangeSet {
  user?: readonly string[];
  post?: readonly string[];
  comment?: readonly string[];
}

export function emptyPlan(): SyncPlan {
  return { user: [], post: [], comment: [] };
}

export function planSize(plan: SyncPlan): number {
  return plan.user.length + plan.post.length + plan.comment.length;
}

/** Union of plans, each id once (in first-seen order). */
export function mergePlans(plans: Iterable<Partial<SyncPlan>>): SyncPlan {
  const sets = { user: new Set<string>(), post: new Set<string>(), comment: new Set<string>() };
  for (const plan of plans) {
    for (const type of ENTITY_TYPES) for (const id of plan[type] ?? []) sets[type].add(id);
  }
  return { user: [...sets.user], post: [...sets.post], comment: [...sets.comment] };
}
