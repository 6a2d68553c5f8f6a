import { ALICE, BOB, seededApis, type TestApi } from './support';

/**
 * A post's comments are read a page at a time from tv_comment (shared/src/model/declare.ts, list),
 * in the read's one statement: the first page, pages after a cursor, the limits, an empty list,
 * several pages of one post under aliases, the same answers on the Apollo path, and in mutation
 * answers. commentCount comes from the post's counts row (tb_post_stats).
 */
const file = seededApis();
let api: TestApi;
let post: string;
/** The post's comments, oldest first, as created. */
let created: string[];

beforeAll(async () => {
  api = await file.api({ defaultPageSize: 10, maxPageSize: 15 });
  post = (
    await api.data(`mutation { createPost(title: "Busy", content: "x", authorId: "${ALICE}", published: true, sync: INLINE) { id } }`)
  ).createPost.id;
  created = [];
  for (let i = 0; i < 25; i++) {
    const c = await api.data(
      `mutation($p: ID!, $t: String!) { createComment(postId: $p, authorId: "${BOB}", content: $t, sync: INLINE) { id } }`,
      {
        p: post,
        t: `comment ${i}`,
      },
    );
    created.push(c.createComment.id);
  }
});

const page =
  'query($id: ID!, $limit: Int, $after: String) { post(id: $id) { commentCount ' +
  'comments(limit: $limit, after: $after) { id content cursor author { username } } } }';
type Item = { id: string; content: string; cursor: string; author: { username: string } };
const pageOf = async (variables: Record<string, unknown>): Promise<{ commentCount: number; comments: Item[] }> =>
  (await api.data(page, { id: post, ...variables })).post;

test('the first page: DEFAULT_PAGE_SIZE comments, oldest first, each with its author and a cursor; the count of all', async () => {
  const first = await pageOf({});
  expect(first.commentCount).toBe(25);
  expect(first.comments.map((c) => c.id)).toEqual(created.slice(0, 10));
  expect(first.comments[0]).toMatchObject({ content: 'comment 0', author: { username: 'bob' }, cursor: expect.any(String) });
});

test('pages after a cursor walk every comment once, then an empty page', async () => {
  const seen: string[] = [];
  let after: string | undefined;
  for (;;) {
    const { comments } = await pageOf({ limit: 7, ...(after ? { after } : {}) });
    if (!comments.length) break;
    seen.push(...comments.map((c) => c.id));
    after = comments[comments.length - 1]!.cursor;
  }
  expect(seen).toEqual(created);
});

test('limit past MAX_PAGE_SIZE, or below 1, and a bad cursor are BAD_USER_INPUT naming the argument', async () => {
  for (const [variables, arg] of [
    [{ limit: 16 }, 'limit'],
    [{ limit: 0 }, 'limit'],
    [{ after: 'not-a-cursor' }, 'after'],
  ] as const) {
    const res = await api.gql(page, { id: post, ...variables });
    expect(res.json.errors?.[0]).toMatchObject({ message: expect.stringContaining(arg), extensions: { code: 'BAD_USER_INPUT' } });
  }
});

test('a post without comments: an empty page and a count of 0', async () => {
  const empty = (
    await api.data(
      `mutation { createPost(title: "Quiet", content: "x", authorId: "${ALICE}", sync: INLINE) { id commentCount comments { id } } }`,
    )
  ).createPost;
  expect(empty).toMatchObject({ commentCount: 0, comments: [] });
  expect((await api.data(page, { id: empty.id })).post).toEqual({ commentCount: 0, comments: [] });
});

test('aliases ask for different pages of one post in one request; lists of posts page each post', async () => {
  const first = await pageOf({ limit: 3 });
  const both = (
    await api.data(
      `query($id: ID!, $after: String) { post(id: $id) { a: comments(limit: 3) { id } b: comments(limit: 2, after: $after) { id } } }`,
      {
        id: post,
        after: first.comments[2]!.cursor,
      },
    )
  ).post;
  expect(both).toEqual({ a: created.slice(0, 3).map((id) => ({ id })), b: created.slice(3, 5).map((id) => ({ id })) });
  const posts = (await api.data(`{ posts(limit: 15) { id comments(limit: 2) { id } } }`)).posts as {
    id: string;
    comments: { id: string }[];
  }[];
  expect(posts.find((p) => p.id === post)!.comments).toEqual(created.slice(0, 2).map((id) => ({ id })));
  for (const p of posts) expect(p.comments.length).toBeLessThanOrEqual(2);
});

test('the Apollo path answers the same pages, with aliases', async () => {
  // A variable @include sends the document to Apollo Server (graphql-js resolvers).
  const query =
    'query($id: ID!, $x: Boolean!, $after: String) { post(id: $id) { title @include(if: $x) commentCount ' +
    'a: comments(limit: 2) { id } b: comments(limit: 2, after: $after) { id content } } }';
  const first = await pageOf({ limit: 2 });
  const res = await api.gql(query, { id: post, x: false, after: first.comments[1]!.cursor });
  expect(res.json).toEqual({
    data: {
      post: {
        commentCount: 25,
        a: created.slice(0, 2).map((id) => ({ id })),
        b: [2, 3].map((i) => ({ id: created[i], content: `comment ${i}` })),
      },
    },
  });
  const bad = await api.gql(query, { id: post, x: true, after: 'nope' });
  expect(bad.json.errors?.[0]).toMatchObject({ message: expect.stringContaining('after'), extensions: { code: 'BAD_USER_INPUT' } });
});

test("a mutation's answer reads its comments and count too", async () => {
  const updated = (
    await api.data(
      `mutation($id: ID!) { updatePost(id: $id, title: "Busier", sync: INLINE) { title commentCount comments(limit: 2) { content } } }`,
      { id: post },
    )
  ).updatePost;
  expect(updated).toEqual({ title: 'Busier', commentCount: 25, comments: [{ content: 'comment 0' }, { content: 'comment 1' }] });
});
