import { column, declare, embedsOne, timestamp } from './declare';

/** tv_comment: { id, postId, content, createdAt, updatedAt, author {id, username, fullName}, post {id, title} }. */
export const comment = declare({
  name: 'comment',
  graphqlType: 'Comment',
  table: 'tb_comment',
  view: 'tv_comment',
  alias: 'cm',
  columns: { post_id: 'uuid', author_id: 'uuid', created_at: 'timestamptz' },
  read: { list: { field: 'comments', order: 'ASC', filters: { postId: { column: 'post_id', type: 'ID', required: true } } } },
  fields: {
    id: column('id'),
    postId: column('post_id'),
    content: column('content'),
    createdAt: timestamp('created_at'),
    updatedAt: timestamp('updated_at'),
    author: embedsOne('user', 'author_id', ['id', 'username', 'fullName']),
    post: embedsOne('post', 'post_id', ['id', 'title']),
  },
});
