import { fromById, inScope, isoUtc, type Scope } from './iso';

/**
 * A user's counts.
 *
 * For the incremental scopes ('few', 'ids') they come from the user's tb_user_stats row, which the
 * commands keep up to date (../user-stats.ts): one row read, whatever the user wrote. A user without
 * such a row (inserted by other means than the API) is counted from the rows, as is every user of
 * 'all' (the full rebuild and verify), so that `sync verify` checks the kept counts against the rows.
 *
 * Counting: for a few ids, per user through the author_id indexes (LATERAL: that user's rows, no
 * sort or grouping); for many ids or all, one pass over each table grouped by author. For a few ids
 * the kept row is a lookup by key too (see joinById in iso.ts for why).
 */
const COUNTS_PER_USER = `
      LEFT JOIN LATERAL (
             SELECT user_id, post_count, published_post_count, comment_count FROM tb_user_stats WHERE user_id = u.id LIMIT 1
           ) s ON true
      LEFT JOIN LATERAL (
             SELECT count(*)::int AS post_count, (count(*) FILTER (WHERE published))::int AS published_count
               FROM tb_post
              WHERE s.user_id IS NULL AND author_id = u.id
           ) p ON true
      LEFT JOIN LATERAL (SELECT count(*)::int AS comment_count FROM tb_comment WHERE s.user_id IS NULL AND author_id = u.id) c ON true`;
/**
 * Each author's counts from the rows, one pass over each table grouped by author: joined as `p`
 * (post_count, published_count) and `c` (comment_count) on `userId`, for the authors that `authors`
 * (a condition on author_id) lets through. Also what tb_user_stats is counted from (../user-stats.ts).
 */
export const joinAuthorCounts = (userId: string, authors: string): string => `
      LEFT JOIN (
             SELECT author_id,
                    count(*)::int AS post_count,
                    (count(*) FILTER (WHERE published))::int AS published_count
               FROM tb_post
              WHERE ${authors}
              GROUP BY author_id
           ) p ON p.author_id = ${userId}
      LEFT JOIN (
             SELECT author_id, count(*)::int AS comment_count
               FROM tb_comment
              WHERE ${authors}
              GROUP BY author_id
           ) c ON c.author_id = ${userId}`;

/** Grouped counts of the authors in scope; for 'ids', only of those without a tb_user_stats row. */
const countsGrouped = (scope: Scope) =>
  scope === 'all'
    ? joinAuthorCounts('u.id', 'true')
    : `
      LEFT JOIN tb_user_stats s ON s.user_id = u.id${joinAuthorCounts(
        'u.id',
        `${inScope(scope, 'author_id')} AND NOT EXISTS (SELECT 1 FROM tb_user_stats ks WHERE ks.user_id = author_id)`,
      )}`;

export function userDocumentsSql(scope: Scope): string {
  // The kept count when there is one (not for 'all', which counts every user's rows), else the count.
  const kept = (column: string, count: string) => (scope === 'all' ? `coalesce(${count}, 0)` : `coalesce(s.${column}, ${count}, 0)`);
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
             'postCount', ${kept('post_count', 'p.post_count')},
             'publishedPostCount', ${kept('published_post_count', 'p.published_count')},
             'commentCount', ${kept('comment_count', 'c.comment_count')}
           ) AS data
      FROM ${fromById(scope, 'tb_user', 'u')}
      ${scope === 'few' ? COUNTS_PER_USER : countsGrouped(scope)}
     WHERE ${inScope(scope, 'u.id')}`;
}
