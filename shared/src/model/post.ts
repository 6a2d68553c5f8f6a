import { column, count, declare, embedsOne, list, timestamp } from './declare';

/**
 * tv_post: { id, title, content, published, createdAt, updatedAt, author {id, username, fullName},
 * commentCount, comments [{id, content, createdAt, author {id, username, fullName}}] }, comments in
 * the order they were written.
 */
export const post = declare({
  name: 'post',
  graphqlType: 'Post',
  table: 'tb_post',
  view: 'tv_post',
  alias: 'p',
  columns: { author_id: 'uuid', published: 'boolean', created_at: 'timestamptz' },
  read: {
    byId: 'post',
    list: {
      field: 'posts',
      order: 'DESC',
      filters: { published: { column: 'published', type: 'Boolean' }, authorId: { column: 'author_id', type: 'ID' } },
    },
  },
  fields: {
    id: column('id'),
    title: column('title'),
    content: column('content'),
    published: column('published'),
    createdAt: timestamp('created_at'),
    updatedAt: timestamp('updated_at'),
    author: embedsOne('user', 'author_id', ['id', 'username', 'fullName']),
    commentCount: count('comment', 'post_id'),
    comments: list('comment', 'post_id', ['id', 'content', 'createdAt', 'author'], ['created_at', 'id']),
  },
});
