import type { Queryable } from '../db/pool';
import { ENTITY_TYPES, type ChangeSet, type EntityType, type SyncPlan } from './types';

/**
 * THE dependency map: which projections embed what. Given the ids that changed on the command side,
 * it returns every projection to refresh. Mutations and the worker use it; nothing else decides
 * what to sync.
 *
 *   a user changes    -> the user, the posts they wrote (author), the posts they commented on
 *                        (comment authors), their comments (author)
 *   a post changes    -> the post, its author (post counts), its comments (they embed the title)
 *   a comment changes -> the comment, its post (comments, commentCount), its author (commentCount)
 *
 * Relations are read from tb_* (what is true now) and from tv_* (what projections embed now), so
 * deletes are covered: a deleted comment is gone from tb_comment but tv_comment still says which
 * post and author embed it. Except for a row whose own projection is not written yet (its creation
 * is being projected by a worker, uncommitted): a delete of it finds nothing here, so the deletes
 * name the posts and authors their rows referenced themselves, from the rows they removed
 * (`related` in services/api/src/commands/commands.ts; services/api/test/delete-race.e2e.spec.ts).
 *
 * Run it in the writing transaction, after the write. A relation created concurrently cannot be
 * missed: commands take FOR SHARE locks on the rows they reference (see services/api), which
 * conflict with the update of those rows, so either this plan sees the new relation or the other
 * transaction's sync runs after this one committed and reads the new values.
 */
const BRANCHES: Record<EntityType, string> = {
  // a user changes: the user, the posts they wrote, the posts they commented on, their comments
  user: `
    SELECT 'user' AS type, id FROM unnest($X::uuid[]) AS cu(id)
    UNION ALL SELECT 'post', p.id FROM tb_post p WHERE p.author_id = ANY($X::uuid[])
    UNION ALL SELECT 'post', p.id FROM tv_post p WHERE p.author_id = ANY($X::uuid[])
    UNION ALL SELECT 'post', c.post_id FROM tb_comment c WHERE c.author_id = ANY($X::uuid[])
    UNION ALL SELECT 'post', c.post_id FROM tv_comment c WHERE c.author_id = ANY($X::uuid[])
    UNION ALL SELECT 'comment', c.id FROM tb_comment c WHERE c.author_id = ANY($X::uuid[])
    UNION ALL SELECT 'comment', c.id FROM tv_comment c WHERE c.author_id = ANY($X::uuid[])`,
  // a post changes: the post, its author (counts), its comments (they embed its title)
  post: `
    SELECT 'post' AS type, id FROM unnest($X::uuid[]) AS cp(id)
    UNION ALL SELECT 'user', p.author_id FROM tb_post p WHERE p.id = ANY($X::uuid[])
    UNION ALL SELECT 'user', p.author_id FROM tv_post p WHERE p.id = ANY($X::uuid[])
    UNION ALL SELECT 'comment', c.id FROM tb_comment c WHERE c.post_id = ANY($X::uuid[])
    UNION ALL SELECT 'comment', c.id FROM tv_comment c WHERE c.post_id = ANY($X::uuid[])`,
  // a comment changes: the comment, its post (comments, commentCount), its author (commentCount)
  comment: `
    SELECT 'comment' AS type, id FROM unnest($X::uuid[]) AS cc(id)
    UNION ALL SELECT 'post', c.post_id FROM tb_comment c WHERE c.id = ANY($X::uuid[])
    UNION ALL SELECT 'post', c.post_id FROM tv_comment c WHERE c.id = ANY($X::uuid[])
    UNION ALL SELECT 'user', c.author_id FROM tb_comment c WHERE c.id = ANY($X::uuid[])
    UNION ALL SELECT 'user', c.author_id FROM tv_comment c WHERE c.id = ANY($X::uuid[])`,
};

/**
 * One statement per combination of changed entity types (a createPost runs only the post branches),
 * prepared under its own name: planning all branches cost more CPU than running them. Rows come
 * back with duplicates (UNION ALL, no sort) and are de-duplicated here.
 */
const STATEMENTS = new Map<string, { name: string; text: string }>();
function statementFor(types: EntityType[]): { name: string; text: string } {
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
  if (!types.length) return { user: [], post: [], comment: [] };
  const { name, text } = statementFor(types);
  const { rows } = await client.query<{ type: EntityType; id: string }>({
    name,
    text,
    values: types.map((t) => changes[t]),
  });
  const sets = { user: new Set<string>(), post: new Set<string>(), comment: new Set<string>() };
  for (const row of rows) sets[row.type].add(row.id);
  return { user: [...sets.user], post: [...sets.post], comment: [...sets.comment] };
}

/** An entity the current transaction has just inserted, with the references its row was written with. */
export type Inserted =
  | { type: 'user'; id: string }
  | { type: 'post'; id: string; authorId: string }
  | { type: 'comment'; id: string; postId: string; authorId: string };

/**
 * The plan of the branches above for an entity the current transaction has just inserted, computed
 * without a query (one round trip less for every create). A new row is in no projection yet and
 * nothing else refers to it (no other transaction can see it to refer to it), so every branch that
 * reads tv_*, or looks for rows referring to it, finds nothing: what is left is the entity itself
 * and the rows its own references name. A test holds this equal to planSync() for each kind.
 */
export function planForInserted(entity: Inserted): SyncPlan {
  switch (entity.type) {
    case 'user':
      return { user: [entity.id], post: [], comment: [] };
    case 'post':
      return { user: [entity.authorId], post: [entity.id], comment: [] };
    case 'comment':
      return { user: [entity.authorId], post: [entity.postId], comment: [entity.id] };
  }
}
