export const ENTITY_TYPES = ['user', 'post', 'comment'] as const;

/** The three projected entities. */
export type EntityType = (typeof ENTITY_TYPES)[number];

/**
 * The order in which every sync (incremental or full) refreshes, and so locks, the projections:
 * one fixed order for all, so two syncs never wait for each other in a cycle. The most contended
 * rows come last, to be held for the shortest time: every post and comment a user writes changes
 * that user's counts (one hot tv_user row per active author), every comment changes its post, and
 * a comment's own row is rarely written twice at once. A row lock is held until COMMIT, so what
 * runs after it lengthens the queue of every writer behind it.
 */
export const SYNC_ORDER: readonly EntityType[] = ['comment', 'post', 'user'];

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
