import { randomUUID } from 'node:crypto';
import type { SyncMode } from '@blog/shared';
import type pg from 'pg';
import type { Actor } from '../auth/authenticator';
import { BadInputError, ConflictError, ForbiddenError, NotFoundError } from '../errors';
import * as v from '../validate';
import { lockOwned, type CommandModule, type Commands, type Doc } from './commands';

/**
 * Tags of posts: createTag, renameTag, tagPost, untagPost. The tag's document and the post's `tags`
 * are declared in shared/src/model (tag.ts, post.ts); what a command refreshes follows from its
 * changes (a rename reaches every post embedding the tag; tagging and untagging name both sides).
 *
 * Who may: any authenticated user creates tags; only an admin renames one (a tag belongs to no
 * one, and a rename shows on every post that has it); a post's author (or an admin) tags it.
 */
export const TAG_LIMITS = { name: 50, slug: 50, perPost: 20 } as const;

const SLUG = /^[a-z0-9]+(-[a-z0-9]+)*$/;

const typeDefs = /* GraphQL */ `
  extend type Mutation {
    "slug: lowercase letters, digits and single hyphens; made from the name when omitted. It never changes."
    createTag(name: String!, slug: String, sync: SyncMode): Tag!
    "Admins only: the new name shows on every post with the tag."
    renameTag(id: ID!, name: String!, sync: SyncMode): Tag!
    "Adds tags to a post (at most 20 a post), after those it has; tags it already has are left as they are."
    tagPost(postId: ID!, tagIds: [ID!]!, sync: SyncMode): Post!
    "Removes these tags from a post; tags it does not have are ignored."
    untagPost(postId: ID!, tagIds: [ID!]!, sync: SyncMode): Post!
  }
`;

/** The slug made from a name: lowercase ASCII letters and digits, other runs of characters as one hyphen. */
export function slugOf(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, TAG_LIMITS.slug)
    .replace(/-+$/, '');
}

function slug(value: unknown, name: string | undefined): string {
  if (value === undefined || value === null) {
    const made = name === undefined ? '' : slugOf(name);
    if (!made) throw new BadInputError('slug is required when the name has no letters or digits to make one from.', 'slug');
    return made;
  }
  if (typeof value !== 'string' || !SLUG.test(value) || value.length > TAG_LIMITS.slug) {
    throw new BadInputError(`slug must be lowercase letters, digits and single hyphens, at most ${TAG_LIMITS.slug} characters.`, 'slug');
  }
  return value;
}

/** 1 to TAG_LIMITS.perPost tag ids, each once. */
function tagIds(value: unknown): string[] {
  if (!Array.isArray(value) || !value.length) throw new BadInputError('tagIds must list at least one tag id.', 'tagIds');
  const ids = [...new Set(value.map((id) => v.uuid(id, 'tagIds')))];
  if (ids.length > TAG_LIMITS.perPost) throw new BadInputError(`A post has at most ${TAG_LIMITS.perPost} tags.`, 'tagIds');
  return ids;
}

/** Locks the tags FOR SHARE, in id order (a rename of one waits for us); NOT_FOUND naming a missing one. */
async function lockTags(client: pg.ClientBase, ids: string[]): Promise<void> {
  const { rows } = await client.query<{ id: string }>('SELECT id FROM tb_tag WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE', [ids]);
  const found = new Set(rows.map((r) => r.id));
  const missing = ids.find((id) => !found.has(id));
  if (missing) throw new NotFoundError(`No tag with id ${missing}.`, 'tagIds');
}

function createTag(commands: Commands, input: { name?: unknown; slug?: unknown }, mode: SyncMode, actor: Actor): Promise<Doc> {
  const args = new v.ArgumentChecks();
  const name = args.check(() => v.text(input.name, 'name', TAG_LIMITS.name, true));
  const made = args.check(() => slug(input.slug, name));
  args.done();
  if (!actor.admin && !actor.userId) throw new ForbiddenError('Sign in to create tags.');
  return commands.entityCommand(mode, async (client) => {
    const id = randomUUID();
    const { rows } = await client.query(
      'INSERT INTO tb_tag (id, name, slug, created_at) VALUES ($1, $2, $3, now()) ON CONFLICT (slug) DO NOTHING RETURNING id',
      [id, name, made],
    );
    if (!rows.length) throw new ConflictError('That slug is already taken.', 'slug');
    return {
      event: { command: 'createTag', actor, args: { name, slug: made } },
      changes: { tag: [id] },
      entity: { type: 'tag', id },
      inserted: { type: 'tag', id, columns: {} },
    };
  });
}

function renameTag(commands: Commands, input: { id?: unknown; name?: unknown }, mode: SyncMode, actor: Actor): Promise<Doc> {
  const args = new v.ArgumentChecks();
  const id = args.check(() => v.uuid(input.id, 'id'));
  const name = args.check(() => v.text(input.name, 'name', TAG_LIMITS.name, true));
  args.done();
  if (!actor.admin) throw new ForbiddenError('Only an admin may rename a tag.', 'id');
  return commands.entityCommand(mode, async (client) => {
    const { rows } = await client.query('UPDATE tb_tag SET name = $2 WHERE id = $1 RETURNING id', [id, name]);
    if (!rows.length) throw new NotFoundError('No tag with that id.', 'id');
    return { event: { command: 'renameTag', actor, args: { id, name } }, changes: { tag: [id] }, entity: { type: 'tag', id } };
  });
}

/**
 * A change of a post's tags: the arguments checked, the post locked FOR UPDATE (whoever changes
 * it: tag changes of one post run one at a time, so positions stay 1..n), then `change`, which
 * returns the tags it added or removed.
 */
function changeTags(
  command: 'tagPost' | 'untagPost',
  commands: Commands,
  input: { postId?: unknown; tagIds?: unknown },
  mode: SyncMode,
  actor: Actor,
  change: (client: pg.ClientBase, postId: string, ids: string[]) => Promise<string[]>,
): Promise<Doc> {
  const args = new v.ArgumentChecks();
  const postId = args.check(() => v.uuid(input.postId, 'postId'));
  const ids = args.check(() => tagIds(input.tagIds));
  args.done();
  return commands.entityCommand(mode, async (client) => {
    await lockPost(client, postId, actor);
    const changed = await change(client, postId, ids);
    return {
      event: { command, actor, args: { postId, tagIds: ids } },
      changes: { post: [postId], tag: changed },
      entity: { type: 'post', id: postId },
    };
  });
}

/** Adds the tags after those the post has. */
async function addTags(client: pg.ClientBase, postId: string, ids: string[]): Promise<string[]> {
  await lockTags(client, ids);
  const { rows } = await client
    .query<{ tag_id: string }>(
      `INSERT INTO tb_post_tag (post_id, tag_id, position)
       SELECT $1, n.id, (SELECT count(*) FROM tb_post_tag WHERE post_id = $1) + row_number() OVER (ORDER BY n.ord)
         FROM unnest($2::uuid[]) WITH ORDINALITY AS n(id, ord)
        WHERE NOT EXISTS (SELECT 1 FROM tb_post_tag WHERE post_id = $1 AND tag_id = n.id)
       RETURNING tag_id`,
      [postId, ids],
    )
    .catch((err: unknown) => {
      if ((err as { constraint?: string }).constraint === 'tb_post_tag_at_most_20') {
        throw new BadInputError(`A post has at most ${TAG_LIMITS.perPost} tags.`, 'tagIds');
      }
      throw err;
    });
  return rows.map((r) => r.tag_id);
}

/** Removes the tags; the remaining ones keep their order, numbered 1..n again. */
async function removeTags(client: pg.ClientBase, postId: string, ids: string[]): Promise<string[]> {
  const { rows } = await client.query<{ tag_id: string }>(
    'DELETE FROM tb_post_tag WHERE post_id = $1 AND tag_id = ANY($2::uuid[]) RETURNING tag_id',
    [postId, ids],
  );
  if (rows.length) {
    await client.query(
      `UPDATE tb_post_tag l SET position = r.n
         FROM (SELECT tag_id, row_number() OVER (ORDER BY position) AS n FROM tb_post_tag WHERE post_id = $1) r
        WHERE l.post_id = $1 AND l.tag_id = r.tag_id AND l.position <> r.n`,
      [postId],
    );
  }
  return rows.map((r) => r.tag_id);
}

/** The post locked FOR UPDATE, its author being the actor unless an admin; NOT_FOUND naming postId. */
async function lockPost(client: pg.ClientBase, postId: string, actor: Actor): Promise<void> {
  try {
    await lockOwned(client, 'post', postId, actor, { evenForAdmins: true });
  } catch (err) {
    if (err instanceof NotFoundError) throw new NotFoundError('No post with that postId.', 'postId');
    if (err instanceof ForbiddenError) throw new ForbiddenError('Only the author (or an admin) may tag this post.', 'postId');
    throw err;
  }
}

export const tagCommands: CommandModule = {
  typeDefs,
  mutations: {
    createTag: (c, a, mode, actor) => createTag(c, a, mode, actor),
    renameTag: (c, a, mode, actor) => renameTag(c, a, mode, actor),
    tagPost: (c, a, mode, actor) => changeTags('tagPost', c, a, mode, actor, addTags),
    untagPost: (c, a, mode, actor) => changeTags('untagPost', c, a, mode, actor, removeTags),
  },
};
