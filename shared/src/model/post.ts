import { byId, column, count, declare, embedsMany, embedsOne, list, timestamp } from './declare';

/**
 * A post, embedding its author and its tags (at most 20). Its comments and their count are merged in
 * at read time: a post may have any number of comments, and a new one changes neither the post's
 * document nor its size.
 */
export const post = declare({
  name: 'post',
  graphqlType: 'Post',
  table: 'tb_post',
  view: 'tv_post',
  alias: 'p',
  keptCounts: { table: 'tb_post_stats', key: 'post_id' },
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
    commentCount: count('comment', 'post_id', { kept: 'comment_count' }),
    comments: list('comment', 'post_id', ['id', 'content', 'createdAt', 'author'], {
      type: 'PostComment',
      description: "A comment of a post, in its post's comments (oldest first, a page at a time).",
    }),
    tags: embedsMany('tag', { table: 'tb_post_tag', from: 'post_id', to: 'tag_id', order: 'position' }, ['id', 'name', 'slug'], 20, {
      type: 'TagSummary',
      description: 'A tag of a post, as embedded in it (in the order it was added).',
    }),
  },
});
