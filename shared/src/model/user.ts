import { byId, column, count, declare, timestamp } from './declare';

/** A user; the counts are kept by the commands in tb_user_stats (migration 003). */
export const user = declare({
  name: 'user',
  graphqlType: 'User',
  table: 'tb_user',
  view: 'tv_user',
  alias: 'u',
  columns: { created_at: 'timestamptz' },
  read: { byKey: byId('user'), list: { field: 'users', order: 'DESC', description: 'Users, newest first.' } },
  keptCounts: { table: 'tb_user_stats', key: 'user_id' },
  fields: {
    id: column('id', 'ID!'),
    email: column('email', 'String!'),
    username: column('username', 'String!'),
    fullName: column('full_name', 'String!'),
    bio: column('bio', 'String'),
    createdAt: timestamp('created_at'),
    updatedAt: timestamp('updated_at'),
    postCount: count('post', 'author_id', { kept: 'post_count' }),
    publishedPostCount: count('post', 'author_id', { where: 'published', kept: 'published_post_count' }),
    commentCount: count('comment', 'author_id', { kept: 'comment_count' }),
  },
});
