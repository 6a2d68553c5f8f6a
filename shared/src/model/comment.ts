import { column, declare, embedsOne, timestamp } from './declare';

/** A comment, embedding its author and its post's id and title. */
export const comment = declare({
  name: 'comment',
  graphqlType: 'Comment',
  table: 'tb_comment',
  view: 'tv_comment',
  alias: 'cm',
  columns: { post_id: 'uuid', author_id: 'uuid', created_at: 'timestamptz' },
  read: {
    list: {
      field: 'comments',
      order: 'ASC',
      filters: { postId: { column: 'post_id', type: 'ID', required: true } },
      description: 'Comments of a post, oldest first.',
    },
  },
  fields: {
    id: column('id', 'ID!'),
    postId: column('post_id', 'ID!'),
    content: column('content', 'String!'),
    createdAt: timestamp('created_at'),
    updatedAt: timestamp('updated_at'),
    // The same type as the post's author (described there).
    author: embedsOne('user', 'author_id', ['id', 'username', 'fullName'], { type: 'Author' }),
    post: embedsOne('post', 'post_id', ['id', 'title'], {
      type: 'PostSummary',
      description: 'The post a comment belongs to, as embedded in the comment.',
    }),
  },
});
