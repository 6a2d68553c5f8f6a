import { fromById, inScope, isoUtc, joinById, type Scope } from './iso';

/**
 * tv_comment document:
 * { id, postId, content, createdAt, updatedAt, author {id, username, fullName}, post {id, title} }
 *
 * One statement; computed from tb_* alone. Returns (id, post_id, author_id, created_at, data)
 * for each id whose tb_comment row exists.
 */
export function commentDocumentsSql(scope: Scope): string {
  return `
    SELECT cm.id,
           cm.post_id,
           cm.author_id,
           cm.created_at,
           jsonb_build_object(
             'id', cm.id,
             'postId', cm.post_id,
             'content', cm.content,
             'createdAt', ${isoUtc('cm.created_at')},
             'updatedAt', ${isoUtc('cm.updated_at')},
             'author', jsonb_build_object('id', a.id, 'username', a.username, 'fullName', a.full_name),
             'post', jsonb_build_object('id', p.id, 'title', p.title)
           ) AS data
      FROM ${fromById(scope, 'tb_comment', 'cm')}
      ${joinById(scope, 'tb_user', 'a', 'id, username, full_name', 'cm.author_id')}
      ${joinById(scope, 'tb_post', 'p', 'id, title', 'cm.post_id')}
     WHERE ${inScope(scope, 'cm.id')}`;
}
