import { SYNC_QUEUE } from '@blog/shared';
import { ALICE, BOB, POST1, SEED_OPERATIONS, seededApi, UUID_RE } from './support';

/** The seed README's four operations (plus SyncMetrics), verbatim, over HTTP, on the seed data. */
const seeded = seededApi();

test('GetRecentPosts answers the seed posts, newest first, with authors and comments', async () => {
  const res = await seeded.api.gql(SEED_OPERATIONS.GetRecentPosts);
  expect(res.status).toBe(200);
  expect(res.json).toEqual({
    data: {
      posts: [
        {
          id: '00000000-0000-0000-0001-000000000003',
          title: 'Explicit Sync vs Triggers',
          author: { username: 'bob', fullName: 'Bob Smith' },
          commentCount: 1,
          comments: [{ content: 'Explicit beats implicit every time.', author: { username: 'alice' } }],
        },
        {
          id: '00000000-0000-0000-0001-000000000002',
          title: 'Why CQRS Matters',
          author: { username: 'alice', fullName: 'Alice Johnson' },
          commentCount: 1,
          comments: [{ content: 'CQRS finally makes sense to me.', author: { username: 'charlie' } }],
        },
        {
          id: POST1,
          title: 'Getting Started with FraiseQL',
          author: { username: 'alice', fullName: 'Alice Johnson' },
          commentCount: 2,
          comments: [
            { content: 'Great introduction, thanks Alice!', author: { username: 'bob' } },
            { content: 'Clear and to the point.', author: { username: 'charlie' } },
          ],
        },
      ],
    },
  });
  // Keys come in selection order, as GraphQL requires.
  expect(Object.keys((res.json.data as { posts: object[] }).posts[0]!)).toEqual(['id', 'title', 'author', 'commentCount', 'comments']);
});

test('GetUser answers alice with her counts', async () => {
  const res = await seeded.api.gql(SEED_OPERATIONS.GetUser);
  expect(res.status).toBe(200);
  expect(res.json).toEqual({
    data: { user: { username: 'alice', fullName: 'Alice Johnson', publishedPostCount: 2, commentCount: 1 } },
  });
});

test('SyncMetrics answers the 24-hour figures of post syncs (the seed synced once)', async () => {
  const res = await seeded.api.gql(SEED_OPERATIONS.SyncMetrics);
  expect(res.status).toBe(200);
  const m = (res.json.data as { syncMetrics: Record<string, number> }).syncMetrics;
  expect(m.totalSyncs24h).toBeGreaterThanOrEqual(1);
  expect(m.successRate).toBe(100);
  expect(m.failures24h).toBe(0);
  expect(typeof m.avgDurationMs).toBe('number');
});

test('CreatePost writes the post, answers it, and enqueues its sync (server default QUEUED)', async () => {
  const res = await seeded.api.gql(SEED_OPERATIONS.CreatePost);
  expect(res.status).toBe(200);
  const post = (res.json.data as { createPost: { id: string; title: string; author: { username: string } } }).createPost;
  expect(post).toEqual({ id: expect.stringMatching(UUID_RE), title: 'My New Post', author: { username: 'alice' } });
  const { rows } = await seeded.pool.query('SELECT author_id, title, content, published FROM tb_post WHERE id = $1', [post.id]);
  expect(rows).toEqual([{ author_id: ALICE, title: 'My New Post', content: 'This is the content...', published: true }]);
  // The sync plan is the dependency map's: the post alone (its author's post count is kept, not in a document).
  await seeded.api.app.queue.relay(); // as a worker would: the job moves from the sync outbox to pg-boss
  const jobs = await seeded.pool.query(`SELECT data->'plan' AS plan FROM pgboss.job WHERE name = $1 AND data->'plan'->'post' ? $2`, [
    SYNC_QUEUE,
    post.id,
  ]);
  expect(jobs.rows).toHaveLength(1);
  expect(jobs.rows[0].plan.user).toEqual([]);
  const counts = await seeded.pool.query('SELECT post_count FROM tb_user_stats WHERE user_id = $1', [ALICE]);
  expect(counts.rows).toEqual([{ post_count: 3 }]);
});

test('AddComment writes the comment, answers it, enqueues its sync and counts it for its post and author', async () => {
  const res = await seeded.api.gql(SEED_OPERATIONS.AddComment);
  expect(res.status).toBe(200);
  const comment = (res.json.data as { createComment: { id: string; content: string; author: { username: string } } }).createComment;
  expect(comment).toEqual({ id: expect.stringMatching(UUID_RE), content: 'Great post!', author: { username: 'bob' } });
  const { rows } = await seeded.pool.query('SELECT post_id, author_id, content FROM tb_comment WHERE id = $1', [comment.id]);
  expect(rows).toEqual([{ post_id: POST1, author_id: BOB, content: 'Great post!' }]);
  await seeded.api.app.queue.relay(); // as a worker would: the job moves from the sync outbox to pg-boss
  const jobs = await seeded.pool.query(`SELECT data->'plan' AS plan FROM pgboss.job WHERE name = $1 AND data->'plan'->'comment' ? $2`, [
    SYNC_QUEUE,
    comment.id,
  ]);
  expect(jobs.rows).toHaveLength(1);
  // Neither the post's document nor bob's holds comments or their count: the comment alone is synced.
  expect(jobs.rows[0].plan).toMatchObject({ comment: [comment.id], post: [], user: [] });
  const posts = await seeded.pool.query('SELECT comment_count FROM tb_post_stats WHERE post_id = $1', [POST1]);
  expect(posts.rows).toEqual([{ comment_count: 3 }]);
});
