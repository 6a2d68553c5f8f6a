import { column, countThrough, declare, timestamp } from './declare';

/** A tag of posts (many to many, through tb_post_tag); postCount counts every post it is on. */
export const tag = declare({
  name: 'tag',
  graphqlType: 'Tag',
  table: 'tb_tag',
  view: 'tv_tag',
  alias: 't',
  columns: { slug: 'text', created_at: 'timestamptz' },
  read: {
    byKey: { field: 'tag', arg: 'slug', column: 'slug', type: 'String' },
    list: { field: 'tags', order: 'DESC', description: 'Tags, newest first.' },
  },
  fields: {
    id: column('id', 'ID!'),
    name: column('name', 'String!'),
    slug: column('slug', 'String!'),
    postCount: countThrough('post', { table: 'tb_post_tag', from: 'tag_id', to: 'post_id' }),
    createdAt: timestamp('created_at'),
  },
});
