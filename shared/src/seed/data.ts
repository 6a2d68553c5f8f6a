/**
 * The fixed sample data of the product's original specification: three users, three published
 * posts, four comments, with fixed ids and timestamps so that examples and tests can name them.
 */
export const SEED_USERS = [
  {
    id: '00000000-0000-0000-0000-000000000001',
    email: 'alice@example.com',
    username: 'alice',
    fullName: 'Alice Johnson',
    bio: 'Database enthusiast and CQRS advocate.',
    createdAt: '2024-01-01T09:00:00.000Z',
  },
  {
    id: '00000000-0000-0000-0000-000000000002',
    email: 'bob@example.com',
    username: 'bob',
    fullName: 'Bob Smith',
    bio: 'Backend developer who likes explicit code.',
    createdAt: '2024-01-01T09:05:00.000Z',
  },
  {
    id: '00000000-0000-0000-0000-000000000003',
    email: 'charlie@example.com',
    username: 'charlie',
    fullName: 'Charlie Brown',
    bio: null,
    createdAt: '2024-01-01T09:10:00.000Z',
  },
] as const;

export const SEED_POSTS = [
  {
    id: '00000000-0000-0000-0001-000000000001',
    authorId: SEED_USERS[0].id,
    title: 'Getting Started with FraiseQL',
    content:
      'Command tables (tb_*) hold normalized data; query tables (tv_*) hold one JSON document per entity. ' +
      'Writes go to the first, reads come from the second, and an explicit sync keeps them together.',
    createdAt: '2024-01-02T10:00:00.000Z',
  },
  {
    id: '00000000-0000-0000-0001-000000000002',
    authorId: SEED_USERS[0].id,
    title: 'Why CQRS Matters',
    content:
      'Separating the write model from the read model lets each be shaped for its job: integrity on one side, ' +
      'one-query reads on the other.',
    createdAt: '2024-01-03T10:00:00.000Z',
  },
  {
    id: '00000000-0000-0000-0001-000000000003',
    authorId: SEED_USERS[1].id,
    title: 'Explicit Sync vs Triggers',
    content: 'A trigger hides work inside the database. An explicit sync is code you can read, test, batch, defer and measure.',
    createdAt: '2024-01-04T10:00:00.000Z',
  },
] as const;

export const SEED_COMMENTS = [
  {
    id: '00000000-0000-0000-0002-000000000001',
    postId: SEED_POSTS[0].id,
    authorId: SEED_USERS[1].id,
    content: 'Great introduction, thanks Alice!',
    createdAt: '2024-01-02T11:00:00.000Z',
  },
  {
    id: '00000000-0000-0000-0002-000000000002',
    postId: SEED_POSTS[0].id,
    authorId: SEED_USERS[2].id,
    content: 'Clear and to the point.',
    createdAt: '2024-01-02T12:00:00.000Z',
  },
  {
    id: '00000000-0000-0000-0002-000000000003',
    postId: SEED_POSTS[1].id,
    authorId: SEED_USERS[2].id,
    content: 'CQRS finally makes sense to me.',
    createdAt: '2024-01-03T11:00:00.000Z',
  },
  {
    id: '00000000-0000-0000-0002-000000000004',
    postId: SEED_POSTS[2].id,
    authorId: SEED_USERS[0].id,
    content: 'Explicit beats implicit every time.',
    createdAt: '2024-01-04T11:00:00.000Z',
  },
] as const;
