import { randomInt } from 'node:crypto';
import type pg from 'pg';
import type { CountChange } from '../src/sync/kept-counts';
import type { ChangeSet, SyncPlan } from '../src/sync/types';

/**
 * The random writes of the race tests (shared/src/sync/concurrency.int.spec.ts, rebuild.int.spec.ts),
 * each as the API's commands make it: rename a user, retitle a post, toggle a post's published flag,
 * comment (locking the post and the author FOR SHARE, as the commands do), delete a random comment.
 * A write returns what it changed, what its removed rows referenced (`related`, as the deletes add
 * it) and its kept-count changes; `command` runs it in a transaction and syncs it its own way.
 */
export interface RaceWrite extends ChangeSet {
  related?: Partial<SyncPlan>;
  counts?: CountChange[];
}

export type RaceCommand = (write: (c: pg.PoolClient) => Promise<RaceWrite | undefined>) => Promise<void>;

export const pick = <T>(xs: readonly T[]): T => xs[randomInt(0, xs.length)]!;

/** A pause of up to `ms` milliseconds, random. */
export const pause = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, randomInt(0, ms + 1)));

export function raceOperations(users: readonly string[], posts: readonly string[], command: RaceCommand): (() => Promise<void>)[] {
  return [
    () =>
      command(async (c) => {
        const u = pick(users);
        await c.query('UPDATE tb_user SET full_name = $2, updated_at = now() WHERE id = $1', [u, `Name ${randomInt(1e6)}`]);
        return { user: [u] };
      }),
    () =>
      command(async (c) => {
        const p = pick(posts);
        await c.query('UPDATE tb_post SET title = $2, updated_at = now() WHERE id = $1', [p, `Title ${randomInt(1e6)}`]);
        return { post: [p] };
      }),
    () =>
      command(async (c) => {
        const { rows } = await c.query<{ id: string; published: boolean; author_id: string }>(
          'UPDATE tb_post SET published = NOT published, updated_at = now() WHERE id = $1 RETURNING id, published, author_id',
          [pick(posts)],
        );
        const r = rows[0]!;
        return { post: [r.id], counts: [{ type: 'user', id: r.author_id, counts: { publishedPostCount: r.published ? 1 : -1 } }] };
      }),
    () =>
      command(async (c) => {
        const p = pick(posts);
        const u = pick(users);
        // Commands lock what they reference FOR SHARE (see dependencies.ts).
        await c.query('SELECT 1 FROM tb_user WHERE id = $1 FOR SHARE', [u]);
        await c.query('SELECT 1 FROM tb_post WHERE id = $1 FOR SHARE', [p]);
        const { rows } = await c.query<{ id: string }>(
          "INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, 'race') RETURNING id",
          [p, u],
        );
        return {
          comment: [rows[0]!.id],
          counts: [
            { type: 'user', id: u, counts: { commentCount: 1 } },
            { type: 'post', id: p, counts: { commentCount: 1 } },
          ],
        };
      }),
    () =>
      command(async (c) => {
        const { rows } = await c.query<{ id: string; post_id: string; author_id: string }>(
          `DELETE FROM tb_comment WHERE id = (
             SELECT id FROM tb_comment WHERE post_id = $1 ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING id, post_id, author_id`,
          [pick(posts)],
        );
        const r = rows[0];
        return r
          ? {
              comment: [r.id],
              related: { post: [r.post_id], user: [r.author_id] },
              counts: [
                { type: 'user', id: r.author_id, counts: { commentCount: -1 } },
                { type: 'post', id: r.post_id, counts: { commentCount: -1 } },
              ],
            }
          : undefined;
      }),
  ];
}
