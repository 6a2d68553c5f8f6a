import { byId, column, count, declare, embedsMany, embedsOne, list, timestamp } from './declare';

/** A post, embedding its author, its comments (in the order they were written) and its tags. */
export const post = declare({
  name: 'post',
  graphqlType: 'Post',
  table: 'tb_post',
  view: 'tv_post',
  alias: 'p',
  columns: { author_id: 'uuid', published: 'boolean', created_at: 'timestamptz' },
  read: {
    byKey: byId('post'),
    list: {
      field: 'posts',
      order: 'DESC',
      filters: {
        published: { column: 'published', type: 'Boolean' },
        authorId: { column: 'author_id', type: 'ID' },
        tag: { column: '', type: 'String', contains: { field: 'tags', key: 'slug' } },
      },
      description: "Posts, newest first. limit defaults to the server's page size and may not exceed its maximum.",
    },
  },
  fields: {
    id: column('id', 'ID!'),
    title: column('title', 'String!'),
    content: column('content', 'String!'),
    published: column('published', 'Boolean!'),
    createdAt: timestamp('created_at'),
    updatedAt: timestamp('updated_at'),
    author: embedsOne('user', 'author_id', ['id', 'username', 'fullName'], {
      type: 'Author',
      description: 'The author of a post or comment, as embedded in it.',
    }),
    commentCount: count('comment', 'post_id'),
    comments: list('comment', 'post_id', ['id', 'content', 'createdAt', 'author'], ['created_at', 'id'], {
      type: 'PostComment',
      description: 'A comment as embedded in its post (oldest first).',
    }),
    tags: embedsMany('tag', { table: 'tb_post_tag', from: 'post_id', to: 'tag_id', order: 'position' }, ['id', 'name', 'slug'], 20, {
      type: 'TagSummary',
      description: 'A tag of a post, as embedded in it (in the order it was added).',
    }),
  },
});
