import { SYNC_QUEUE } from '@blog/shared';
import { mutationAnswer, seededApis, type TestApi } from './support';

/**
 * A write whose dependency map reaches more than SYNC_FANOUT_MAX_IDS rows (here 12; rows found in tb_* and tv_* both count) refreshes only
 * its own entity in its transaction and leaves the rest to the workers as a fan-out job, which they
 * expand and sync in chunks; the answer says so (extensions.sync.restQueued). At the end: zero drift.
 */
const file = seededApis();
let api: TestApi;
beforeAll(async () => {
  api = await file.api({ fanOutMaxIds: 12 });
});

let n = 0;
/** A user with `comments` comments (on one post of theirs), all synced. */
async function prolific(comments: number): Promise<{ user: string; post: string; comments: string[] }> {
  n += 1;
  const user = (
    await api.data(`mutation { createUser(email: "fan${n}@example.test", username: "fan${n}", fullName: "Fan ${n}", sync: INLINE) { id } }`)
  ).createUser.id;
  const post = (await api.data(`mutation { createPost(title: "Fan post ${n}", content: "x", authorId: "${user}", sync: INLINE) { id } }`))
    .createPost.id;
  const ids: string[] = [];
  for (let i = 0; i < comments; i++) {
    ids.push(
      (await api.data(`mutation { createComment(postId: "${post}", authorId: "${user}", content: "c${i}", sync: INLINE) { id } }`))
        .createComment.id,
    );
  }
  return { user, post, comments: ids };
}

const commentAuthor = async (id: string) =>
  (await file.pool.query<{ name: string }>("SELECT data->'author'->>'fullName' AS name FROM tv_comment WHERE id = $1", [id])).rows[0]?.name;

/** The waiting fan-out jobs naming `user`, once the sync outbox is relayed to pg-boss (as a worker would). */
async function fanOutJobs(user: string): Promise<{ plan: Record<string, string[]>; expand?: boolean }[]> {
  await api.app.queue.relay();
  const { rows } = await file.pool.query(
    `SELECT data FROM pgboss.job WHERE name = $1 AND state = 'created' AND data->>'expand' = 'true' AND data->'plan'->'user' ? $2`,
    [SYNC_QUEUE, user],
  );
  return rows.map((r) => r.data);
}

test('INLINE: the renamed user is current at once; the posts and comments embedding them follow through the workers', async () => {
  const f = await prolific(8);
  const res = await api.gql(`mutation { updateUser(id: "${f.user}", fullName: "Renamed Fan", sync: INLINE) { id fullName } }`);
  expect(res.json).toEqual(mutationAnswer({ updateUser: { id: f.user, fullName: 'Renamed Fan' } }, { restQueued: true }));
  // Its own document now; the comments still embed the old name until the workers sync them.
  expect((await api.data(`{ user(id: "${f.user}") { fullName } }`)).user.fullName).toBe('Renamed Fan');
  expect(await commentAuthor(f.comments[0]!)).toBe(`Fan ${n}`);
  expect(await fanOutJobs(f.user)).toEqual([expect.objectContaining({ expand: true, plan: expect.objectContaining({ user: [f.user] }) })]);

  // The workers expand the change (into jobs of at most MAX_IDS_PER_JOB ids) and sync them.
  expect(await api.drainQueue()).toBeGreaterThanOrEqual(1);
  expect(await api.drainQueue()).toBeGreaterThanOrEqual(1);
  for (const id of f.comments) expect(await commentAuthor(id)).toBe('Renamed Fan');
  expect((await api.app.sync.verify()).total).toBe(0);
});

test('a write within the bound answers without sync.restQueued and queues no fan-out', async () => {
  const f = await prolific(2);
  const res = await api.gql(`mutation { updateUser(id: "${f.user}", fullName: "Small Fan", sync: INLINE) { fullName } }`);
  expect(res.json).toEqual(mutationAnswer({ updateUser: { fullName: 'Small Fan' } }));
  expect(await fanOutJobs(f.user)).toEqual([]);
  for (const id of f.comments) expect(await commentAuthor(id)).toBe('Small Fan');
});

test('QUEUED and on the Apollo path: the same fan-out job, the same extension', async () => {
  const f = await prolific(8);
  // A variable @include sends the mutation to Apollo Server.
  const res = await api.gql(
    `mutation($x: Boolean!) { updateUser(id: "${f.user}", fullName: "Queued Fan", sync: QUEUED) { fullName @include(if: $x) } }`,
    {
      x: true,
    },
  );
  expect(res.json).toMatchObject({ data: { updateUser: { fullName: 'Queued Fan' } }, extensions: { sync: { restQueued: true } } });
  expect(await fanOutJobs(f.user)).toHaveLength(1);
  while ((await api.drainQueue()) > 0);
  for (const id of f.comments) expect(await commentAuthor(id)).toBe('Queued Fan');
  expect((await api.app.sync.verify()).total).toBe(0);
});

test('deletePost of a post with more comments than the bound: the post goes at once, its comments through the workers', async () => {
  const f = await prolific(8);
  const res = await api.gql(`mutation { deletePost(id: "${f.post}", sync: INLINE) { id deletedCommentIds } }`);
  expect(res.json).toMatchObject({ data: { deletePost: { id: f.post } }, extensions: { sync: { restQueued: true } } });
  expect((await api.data(`{ post(id: "${f.post}") { id } }`)).post).toBeNull();
  while ((await api.drainQueue()) > 0);
  const { rows } = await file.pool.query('SELECT count(*)::int AS n FROM tv_comment WHERE post_id = $1', [f.post]);
  expect(rows[0].n).toBe(0);
  expect((await api.app.sync.verify()).total).toBe(0);
});
