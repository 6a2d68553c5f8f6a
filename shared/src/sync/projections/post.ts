import { fromById, inScope, isoUtc, joinById, type Scope } from './iso';

/** A post's comment count and comments (as `comment_count`, `comments`), over its tb_comment rows `cm` joined to their authors `ca`. */
const commentAggregates = `count(*)::int AS comment_count,
                    jsonb_agg(
                      jsonb_build_object(
                        'id', cm.id,
                        'content', cm.content,
                        'createdAt', ${isoUtc('cm.created_at')},
                        'author', jsonb_build_object('id', ca.id, 'username', ca.username, 'fullName', ca.full_name)
                      ) ORDER BY cm.created_at, cm.id
                    ) AS comments`;

/**
 * tv_post document:
 * { id, title, content, published, createdAt, updatedAt, author {id, username, fullName},
 *   commentCount, comments [{id, content, createdAt, author {id, username, fullName}}] }
 * Comments are in the order they were written (createdAt, then id).
 *
 * One statement; computed from tb_* alone. Returns (id, author_id, published, created_at, data)
 * for each id whose tb_post row exists.
 */
export function postDocumentsSql(scope: Scope): string {
  return `
    SELECT p.id,
           p.author_id,
           p.published,
           p.created_at,
           jsonb_build_object(
             'id', p.id,
             'title', p.title,
             'content', p.content,
             'published', p.published,
             'createdAt', ${isoUtc('p.created_at')},
             'updatedAt', ${isoUtc('p.updated_at')},
             'author', jsonb_build_object('id', a.id, 'username', a.username, 'fullName', a.full_name),
             'commentCount', coalesce(c.comment_count, 0),
             'comments', coalesce(c.comments, '[]'::jsonb)
           ) AS data
      FROM ${fromById(scope, 'tb_post', 'p')}
      ${joinById(scope, 'tb_user', 'a', 'id, username, full_name', 'p.author_id')}
      ${
        scope === 'few'
          ? // For a few posts, each post's comments through the post_id index (LATERAL), like every other lookup of 'few'.
            `LEFT JOIN LATERAL (SELECT ${commentAggregates} FROM tb_comment cm
               ${joinById(scope, 'tb_user', 'ca', 'id, username, full_name', 'cm.author_id')}
              WHERE cm.post_id = p.id) c ON true`
          : `LEFT JOIN (
             SELECT cm.post_id, ${commentAggregates}
               FROM tb_comment cm
               ${joinById(scope, 'tb_user', 'ca', 'id, username, full_name', 'cm.author_id')}
              WHERE ${inScope(scope, 'cm.post_id')}
              GROUP BY cm.post_id
           ) c ON c.post_id = p.id`
      }
     WHERE ${inScope(scope, 'p.id')}`;
}
