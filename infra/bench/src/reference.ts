import type { Queryable } from '@blog/shared';
import type { CanonicalPost, CanonicalUser } from './documents';

/**
 * The expected answers, computed from the command tables (tb_*) by the harness itself, so that
 * every system, ours included, is checked against the source of truth and not against another
 * system. Same order as the API promises: posts newest first (created_at, then id, descending),
 * comments oldest first (created_at, then id).
 */
export async function expectedRecentPosts(db: Queryable, limit: number): Promise<CanonicalPost[]> {
  const { rows } = await db.query<{ posts: CanonicalPost[] }>(
    `SELECT coalesce(json_agg(json_build_object(
              'id', p.id,
              'title', p.title,
              'author', json_build_object('username', u.username, 'fullName', u.full_name),
              'commentCount', (SELECT count(*)::int FROM tb_comment c WHERE c.post_id = p.id),
              'comments', (SELECT coalesce(json_agg(json_build_object('content', c.content,
                                                                      'author', json_build_object('username', cu.username))
                                                    ORDER BY c.created_at, c.id), '[]'::json)
                             FROM tb_comment c JOIN tb_user cu ON cu.id = c.author_id
                            WHERE c.post_id = p.id)
            ) ORDER BY p.created_at DESC, p.id DESC), '[]'::json) AS posts
       FROM (SELECT * FROM tb_post ORDER BY created_at DESC, id DESC LIMIT $1) p
       JOIN tb_user u ON u.id = p.author_id`,
    [limit],
  );
  return rows[0]!.posts;
}

export async function expectedUser(db: Queryable, id: string): Promise<CanonicalUser | null> {
  const { rows } = await db.query<CanonicalUser>(
    `SELECT u.username,
            u.full_name AS "fullName",
            (SELECT count(*)::int FROM tb_post p WHERE p.author_id = u.id AND p.published) AS "publishedPostCount",
            (SELECT count(*)::int FROM tb_comment c WHERE c.author_id = u.id) AS "commentCount"
       FROM tb_user u WHERE u.id = $1`,
    [id],
  );
  return rows[0] ?? null;
}

/** Usernames by user id (to check who a write was attributed to). */
export async function usernames(db: Queryable, ids: string[]): Promise<Map<string, string>> {
  const { rows } = await db.query<{ id: string; username: string }>('SELECT id, username FROM tb_user WHERE id = ANY($1::uuid[])', [ids]);
  return new Map(rows.map((r) => [r.id, r.username]));
}
