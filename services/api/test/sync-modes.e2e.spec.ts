import { emptyPlan, seed, SYNC_PRIORITY, SYNC_QUEUE } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { ALICE, BOB, CHARLIE, POST1, POST3, startApi, type TestApi } from './support';

/**
 * Sync modes over HTTP: INLINE is read-your-writes for every reader; QUEUED answers the current
 * entity at once but other readers see the write only after a sync; DEFERRED waits out its delay.
 * The "other reader" is a separate HTTP request, answered from tv_* like any read.
 */
let pool: pg.Pool;
let api: TestApi;
const DEFER_SECONDS = 120;

beforeAll(async () => {
  pool = testPool();
  await seed(pool);
  api = await startApi({ deferSeconds: DEFER_SECONDS });
});

afterAll(async () => {
  await api?.close();
  await pool?.end();
});

const userCounts = `query($id: ID!) { user(id: $id) { postCount publishedPostCount commentCount } }`;
const postById =
  'query($id: ID!) { post(id: $id) { id title published commentCount ' +
  'comments { id content author { username } } author { username } } }';

/** The jobs whose plan names `id`, once the sync outbox is relayed to pg-boss (as a worker would). */
async function jobsFor(id: string): Promise<{ priority: number; start_after: Date; plan: Record<string, string[]> }[]> {
  await api.app.queue.relay();
  const { rows } = await pool.query(
    `SELECT priority, start_after, data->'plan' AS plan FROM pgboss.job
      WHERE name = $1 AND (data->'plan'->'post' ? $2 OR data->'plan'->'comment' ? $2 OR data->'plan'->'user' ? $2)`,
    [SYNC_QUEUE, id],
  );
  return rows;
}

describe('INLINE', () => {
  test('createPost: every reader sees the post and the author counts at once; nothing is enqueued', async () => {
    const before = (await api.data(userCounts, { id: BOB })).user;
    const created = await api.data(
      `mutation { createPost(title: "Inline post", content: "Body", authorId: "${BOB}", published: true, sync: INLINE) ` +
        '{ id title commentCount author { username } } }',
    );
    const id = created.createPost.id as string;
    expect(created.createPost).toEqual({ id, title: 'Inline post', commentCount: 0, author: { username: 'bob' } });

    const list = await api.data(`{ posts(limit: 1) { id title cursor } }`);
    expect(list.posts).toEqual([{ id, title: 'Inline post', cursor: expect.any(String) }]);
    // The cursor computed in SQL (reads) is the one computed in Node (mutation answers).
    const again = await api.data(`mutation { updatePost(id: "${id}", title: "Inline post", sync: INLINE) { cursor } }`);
    expect(again.updatePost.cursor).toBe(list.posts[0].cursor);
    expect((await api.data(postById, { id })).post.title).toBe('Inline post');
    expect((await api.data(userCounts, { id: BOB })).user).toEqual({
      ...before,
      postCount: before.postCount + 1,
      publishedPostCount: before.publishedPostCount + 1,
    });
    expect(await jobsFor(id)).toEqual([]);
  });

  test('createComment: the post embeds it and the author counts it, at once', async () => {
    const res = await api.data(
      `mutation { createComment(postId: "${POST3}", authorId: "${CHARLIE}", content: "Inline comment", sync: INLINE) ` +
        '{ id post { id title } author { username } } }',
    );
    const id = res.createComment.id as string;
    expect(res.createComment.post).toEqual({ id: POST3, title: 'Explicit Sync vs Triggers' });
    const post = (await api.data(postById, { id: POST3 })).post;
    expect(post.commentCount).toBe(2);
    expect(post.comments.at(-1)).toEqual({ id, content: 'Inline comment', author: { username: 'charlie' } });
    const comments = await api.data(`query($p: ID!) { comments(postId: $p) { id content } }`, { p: POST3 });
    expect(comments.comments.map((c: { id: string }) => c.id)).toContain(id);
    expect((await api.data(userCounts, { id: CHARLIE })).user.commentCount).toBe(3);
  });

  test('updateUser: the new username reaches the posts and comments that embed the user', async () => {
    await api.data(`mutation { updateUser(id: "${CHARLIE}", username: "charles", bio: "Renamed", sync: INLINE) { id } }`);
    const post = (await api.data(postById, { id: POST1 })).post;
    expect(post.comments.map((c: { author: { username: string } }) => c.author.username)).toEqual(['bob', 'charles']);
    const user = (await api.data(`{ user(id: "${CHARLIE}") { username bio } }`)).user;
    expect(user).toEqual({ username: 'charles', bio: 'Renamed' });
  });

  test('updatePost then publishPost: title reaches embedded comments, counts follow publishing', async () => {
    const draft = await api.data(
      `mutation { createPost(title: "Draft", content: "Body", authorId: "${ALICE}", sync: INLINE) { id published } }`,
    );
    const id = draft.createPost.id as string;
    expect(draft.createPost.published).toBe(false);
    const c = await api.data(`mutation { createComment(postId: "${id}", authorId: "${BOB}", content: "First", sync: INLINE) { id } }`);
    const before = (await api.data(userCounts, { id: ALICE })).user;
    await api.data(`mutation { updatePost(id: "${id}", title: "Final title", sync: INLINE) { id } }`);
    const comment = await api.data(`query($p: ID!) { comments(postId: $p) { id post { title } } }`, { p: id });
    expect(comment.comments).toEqual([{ id: c.createComment.id, post: { title: 'Final title' } }]);
    const published = await api.data(`mutation { publishPost(id: "${id}", sync: INLINE) { published title } }`);
    expect(published.publishPost).toEqual({ published: true, title: 'Final title' });
    expect((await api.data(userCounts, { id: ALICE })).user.publishedPostCount).toBe(before.publishedPostCount + 1);
    const onlyPublished = await api.data(`query($a: ID!) { posts(authorId: $a, published: false) { id } }`, { a: ALICE });
    expect(onlyPublished.posts.map((p: { id: string }) => p.id)).not.toContain(id);
  });

  test('deletePost deletes its comments; projections and counts follow at once', async () => {
    const p = await api.data(`mutation { createPost(title: "Doomed", content: "x", authorId: "${ALICE}", sync: INLINE) { id } }`);
    const id = p.createPost.id as string;
    const c = await api.data(`mutation { createComment(postId: "${id}", authorId: "${BOB}", content: "bye", sync: INLINE) { id } }`);
    const before = { alice: (await api.data(userCounts, { id: ALICE })).user, bob: (await api.data(userCounts, { id: BOB })).user };
    const res = await api.data(`mutation { deletePost(id: "${id}", sync: INLINE) { id deletedCommentIds } }`);
    expect(res.deletePost).toEqual({ id, deletedCommentIds: [c.createComment.id] });
    expect((await api.data(postById, { id })).post).toBeNull();
    expect((await api.data(`query($p: ID!) { comments(postId: $p) { id } }`, { p: id })).comments).toEqual([]);
    expect((await api.data(userCounts, { id: ALICE })).user.postCount).toBe(before.alice.postCount - 1);
    expect((await api.data(userCounts, { id: BOB })).user.commentCount).toBe(before.bob.commentCount - 1);
    const { rows } = await pool.query(
      'SELECT (SELECT count(*) FROM tb_comment WHERE post_id = $1)::int AS c, ' +
        '(SELECT count(*) FROM tv_comment WHERE post_id = $1)::int AS v',
      [id],
    );
    expect(rows[0]).toEqual({ c: 0, v: 0 });
  });

  test('deleteComment removes it from the post at once', async () => {
    const c = await api.data(`mutation { createComment(postId: "${POST1}", authorId: "${ALICE}", content: "oops", sync: INLINE) { id } }`);
    const id = c.createComment.id as string;
    expect(await api.data(`mutation { deleteComment(id: "${id}", sync: INLINE) { id deletedCommentIds } }`)).toEqual({
      deleteComment: { id, deletedCommentIds: [] },
    });
    const post = (await api.data(postById, { id: POST1 })).post;
    expect(post.comments.map((x: { id: string }) => x.id)).not.toContain(id);
  });
});

describe('QUEUED', () => {
  test('answers the current entity, other readers see it only after the sync runs, then they do', async () => {
    await api.drainQueue(); // jobs of earlier tests out of the way
    const before = (await api.data(userCounts, { id: ALICE })).user;
    const created = await api.data(
      `mutation { createPost(title: "Queued post", content: "Later", authorId: "${ALICE}", published: true, sync: QUEUED) ` +
        '{ id title published commentCount author { id username fullName } } }',
    );
    const id = created.createPost.id as string;
    // The mutation's own answer is the correct, current entity (computed from tb_*).
    expect(created.createPost).toEqual({
      id,
      title: 'Queued post',
      published: true,
      commentCount: 0,
      author: { id: ALICE, username: 'alice', fullName: 'Alice Johnson' },
    });
    // Other readers: not yet.
    expect((await api.data(postById, { id })).post).toBeNull();
    expect((await api.data(`{ posts(limit: 50) { id } }`)).posts.map((p: { id: string }) => p.id)).not.toContain(id);
    // Kept counts are read from the counts rows, which the command changed as it committed.
    const counted = { ...before, postCount: before.postCount + 1, publishedPostCount: before.publishedPostCount + 1 };
    expect((await api.data(userCounts, { id: ALICE })).user).toEqual(counted);
    // The job: high priority, available now, the dependency map's plan.
    const jobs = await jobsFor(id);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.priority).toBe(SYNC_PRIORITY.QUEUED);
    expect(jobs[0]!.plan).toEqual({ ...emptyPlan(), post: [id] });

    expect(await api.drainQueue()).toBe(1);
    expect((await api.data(postById, { id })).post).toMatchObject({ id, title: 'Queued post', author: { username: 'alice' } });
    expect((await api.data(userCounts, { id: ALICE })).user).toEqual(counted);
  });
});

describe('DEFERRED', () => {
  test('enqueues at low priority, available only after the configured delay', async () => {
    await api.drainQueue();
    const started = Date.now();
    const created = await api.data(
      `mutation { createComment(postId: "${POST1}", authorId: "${BOB}", content: "Whenever", sync: DEFERRED) { id content } }`,
    );
    const id = created.createComment.id as string;
    expect(created.createComment.content).toBe('Whenever');
    const jobs = await jobsFor(id);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.priority).toBe(SYNC_PRIORITY.DEFERRED);
    const delayMs = jobs[0]!.start_after.getTime() - started;
    expect(delayMs).toBeGreaterThan((DEFER_SECONDS - 5) * 1000);
    expect(delayMs).toBeLessThan((DEFER_SECONDS + 5) * 1000);
    // Not available to a worker yet, and not visible to readers.
    expect(await api.drainQueue()).toBe(0);
    const post = (await api.data(postById, { id: POST1 })).post;
    expect(post.comments.map((c: { id: string }) => c.id)).not.toContain(id);
  });
});

describe('server default mode', () => {
  test('is configurable: with DEFAULT_SYNC_MODE=INLINE a mutation without `sync` is visible at once', async () => {
    const inline = await startApi({ defaultSyncMode: 'INLINE' });
    try {
      const created = await inline.data(`mutation { createPost(title: "Default inline", content: "x", authorId: "${BOB}") { id } }`);
      const id = created.createPost.id as string;
      expect((await api.data(postById, { id })).post.title).toBe('Default inline');
      expect(await jobsFor(id)).toEqual([]);
    } finally {
      await inline.close();
    }
  });
});
