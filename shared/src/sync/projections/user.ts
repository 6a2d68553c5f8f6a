import { inScope, isoUtc, type Scope } from './iso';

/**
 * A user's counts. For a few ids, counted per user through the author_id indexes (LATERAL): the
 * cost is that user's rows, with no sort or grouping, which matters for a prolific author whose
 * row every one of their writes refreshes (half the time of the grouped form at 5,000 posts). For
 * many ids, one pass over each table's matching rows grouped by author, which is twice as fast at
 * 1,000 users (`npm run bench:sync`).
 */
const COUNTS_PER_USER = `
      LEFT JOIN LATERAL (
             SELECT count(*)::int AS post_count, (count(*) FILTER (WHERE published))::int AS published_count
               FROM tb_post
              WHERE author_id = u.id
           ) p ON true
      LEFT JOIN LATERAL (SELECT count(*)::int AS comment_count FROM tb_comment WHERE author_id = u.id) c ON true`;
const countsGrouped = (scope: Scope) => `
      LEFT JOIN (
             SELECT author_id,
                    count(*)::int AS post_count,
                    (count(*) FILTER (WHERE published))::int AS published_count
               FROM tb_post
              WHERE ${inScope(scope, 'author_id')}
              GROUP BY author_id
           ) p ON p.author_id = u.id
      LEFT JOIN (
             SELECT author_id, count(*)::int AS comment_count
               FROM tb_comment
              WHERE ${inScope(scope, 'author_id')}
              GROUP BY author_id
           ) c ON c.author_id = u.id`;

/**
 * tv_user document:
 * { id, email, username, fullName, bio, createdAt, updatedAt, postCount, publishedPostCount, commentCount }
 *
 * One statement; computed from tb_* alone. Returns (id, data, created_at) for each id whose
 * tb_user row exists (a missing id means the user is gone).
 */
export function userDocumentsSql(scope: Scope): string {
  return `
    SELECT u.id,
           u.created_at,
           jsonb_build_object(
             'id', u.id,
             'email', u.email,
             'username', u.username,
             'fullName', u.full_name,
             'bio', u.bio,
             'createdAt', ${isoUtc('u.created_at')},
             'updatedAt', ${isoUtc('u.updated_at')},
             'postCount', coalesce(p.post_count, 0),
             'publishedPostCount', coalesce(p.published_count, 0),
             'commentCount', coalesce(c.comment_count, 0)
           ) AS data
      FROM tb_user u
      ${scope === 'few' ? COUNTS_PER_USER : countsGrouped(scope)}
     WHERE ${inScope(scope, 'u.id')}`;
}
