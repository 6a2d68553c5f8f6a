import { SignJWT } from 'jose';
import type { AuthConfig } from '../src/auth/config';
import { ALICE, BOB, CHARLIE, POST1, seededApis, writeCounts, type TestApi } from './support';

/**
 * The event log over real HTTP: every command that commits appends exactly one event (its name,
 * the ids it wrote, its actor, its validated arguments) in its own transaction, whatever its sync
 * mode; a command that fails appends none; admins read an entity's events with `events`, a page at
 * a time.
 */
const file = seededApis();
let open: TestApi; // AUTH_MODE=none: everyone is an admin
let jwt: TestApi; // AUTH_MODE=jwt

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const auth: AuthConfig = { mode: 'jwt', key: { kind: 'secret', secret: SECRET }, roleClaim: 'role', maxAgeSeconds: 3600 };
const tokenFor = (sub: string, role?: string) =>
  new SignJWT(role ? { role } : {})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
const bearer = async (sub: string, role?: string) => ({ authorization: `Bearer ${await tokenFor(sub, role)}` });

beforeAll(async () => {
  open = await file.api();
  jwt = await file.api({ auth });
});

interface EventRow {
  command: string;
  entity_type: string;
  entity_ids: string[];
  actor_id: string | null;
  actor_admin: boolean;
  args: Record<string, unknown>;
}

async function eventCount(): Promise<number> {
  const { rows } = await file.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM event_log');
  return rows[0]!.n;
}

/** Runs a mutation that must succeed and append exactly one event; returns its data and that event. */
async function appending(
  api: TestApi,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ data: Record<string, any>; event: EventRow }> {
  const before = await eventCount();
  const res = await api.post({ query, variables }, headers);
  if (res.status !== 200 || res.json.errors) throw new Error(`request failed (${res.status}): ${res.text}`);
  expect(await eventCount()).toBe(before + 1);
  const { rows } = await file.pool.query<EventRow>(
    'SELECT command, entity_type, entity_ids, actor_id, actor_admin, args FROM event_log ORDER BY id DESC LIMIT 1',
  );
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { data: res.json.data as Record<string, any>, event: rows[0]! };
}

const EVENT_FIELDS = 'id at command entityType entityIds actorId actorAdmin args cursor';
const EVENTS = `query($id: ID!, $limit: Int, $after: String) { events(entityId: $id, limit: $limit, after: $after) { ${EVENT_FIELDS} } }`;

interface EventDoc {
  id: string;
  at: string;
  command: string;
  entityType: string;
  entityIds: string[];
  actorId: string | null;
  actorAdmin: boolean;
  args: string;
  cursor: string;
}

async function eventsOf(api: TestApi, id: string, page: { limit?: number; after?: string } = {}): Promise<EventDoc[]> {
  return (await api.data<{ events: EventDoc[] }>(EVENTS, { id, ...page })).events;
}

const anyone = { actor_id: null, actor_admin: true };

test.each(['INLINE', 'QUEUED'] as const)(
  '%s: every command appends exactly one event: its name, the ids it wrote, its actor and its validated arguments',
  async (sync) => {
    const tag = `${sync.toLowerCase()}-${Date.now()}`;
    const v = { sync };

    const user = await appending(
      open,
      'mutation($sync: SyncMode) { ' +
        `createUser(email: " ${tag}@example.com ", username: "u_${tag.replace('-', '_')}", fullName: "Eve", sync: $sync) { id } }`,
      v,
    );
    const U = user.data.createUser.id as string;
    expect(user.event).toEqual({
      command: 'createUser',
      entity_type: 'user',
      entity_ids: [U],
      ...anyone,
      // Validated: the email trimmed, the bio given as null.
      args: { email: `${tag}@example.com`, username: `u_${tag.replace('-', '_')}`, fullName: 'Eve', bio: null },
    });

    expect(
      (await appending(open, `mutation($id: ID!, $sync: SyncMode) { updateUser(id: $id, bio: "b", sync: $sync) { id } }`, { id: U, ...v }))
        .event,
    ).toEqual({
      command: 'updateUser',
      entity_type: 'user',
      entity_ids: [U],
      ...anyone,
      args: { id: U, bio: 'b' },
    });

    const post = await appending(
      open,
      `mutation($a: ID!, $sync: SyncMode) { createPost(title: "  Events  ", content: "body", authorId: $a, sync: $sync) { id } }`,
      { a: U, ...v },
    );
    const P = post.data.createPost.id as string;
    expect(post.event).toEqual({
      command: 'createPost',
      entity_type: 'post',
      entity_ids: [P],
      ...anyone,
      args: { title: 'Events', content: 'body', authorId: U, published: false },
    });

    expect(
      (
        await appending(open, `mutation($id: ID!, $sync: SyncMode) { updatePost(id: $id, title: "Events 2", sync: $sync) { id } }`, {
          id: P,
          ...v,
        })
      ).event,
    ).toEqual({
      command: 'updatePost',
      entity_type: 'post',
      entity_ids: [P],
      ...anyone,
      args: { id: P, title: 'Events 2' },
    });
    expect(
      (await appending(open, `mutation($id: ID!, $sync: SyncMode) { publishPost(id: $id, sync: $sync) { id } }`, { id: P, ...v })).event,
    ).toEqual({
      command: 'publishPost',
      entity_type: 'post',
      entity_ids: [P],
      ...anyone,
      args: { id: P },
    });

    // A comment's events are about its post too.
    const comment = await appending(
      open,
      `mutation($p: ID!, $a: ID!, $sync: SyncMode) { createComment(postId: $p, authorId: $a, content: "first", sync: $sync) { id } }`,
      { p: P, a: U, ...v },
    );
    const C = comment.data.createComment.id as string;
    expect(comment.event).toEqual({
      command: 'createComment',
      entity_type: 'comment',
      entity_ids: [C, P],
      ...anyone,
      args: { postId: P, authorId: U, content: 'first' },
    });

    const created = await appending(open, `mutation($sync: SyncMode) { createTag(name: "Tag ${tag}", sync: $sync) { id } }`, v);
    const G = created.data.createTag.id as string;
    expect(created.event).toEqual({
      command: 'createTag',
      entity_type: 'tag',
      entity_ids: [G],
      ...anyone,
      args: { name: `Tag ${tag}`, slug: `tag-${tag}` },
    });
    expect(
      (
        await appending(open, `mutation($id: ID!, $sync: SyncMode) { renameTag(id: $id, name: "Renamed", sync: $sync) { id } }`, {
          id: G,
          ...v,
        })
      ).event,
    ).toEqual({
      command: 'renameTag',
      entity_type: 'tag',
      entity_ids: [G],
      ...anyone,
      args: { id: G, name: 'Renamed' },
    });
    for (const command of ['tagPost', 'untagPost']) {
      expect(
        (
          await appending(
            open,
            `mutation($p: ID!, $t: [ID!]!, $sync: SyncMode) { ${command}(postId: $p, tagIds: $t, sync: $sync) { id } }`,
            { p: P, t: [G.toUpperCase()], ...v },
          )
        ).event,
      ).toEqual({
        command,
        entity_type: 'post',
        entity_ids: [P, G],
        ...anyone,
        args: { postId: P, tagIds: [G] },
      });
    }

    expect(
      (await appending(open, `mutation($id: ID!, $sync: SyncMode) { deleteComment(id: $id, sync: $sync) { id } }`, { id: C, ...v })).event,
    ).toEqual({
      command: 'deleteComment',
      entity_type: 'comment',
      entity_ids: [C, P],
      ...anyone,
      args: { id: C },
    });

    // A deleted post's event names the comments deleted with it.
    const second = await appending(
      open,
      `mutation($p: ID!, $a: ID!, $sync: SyncMode) { createComment(postId: $p, authorId: $a, content: "second", sync: $sync) { id } }`,
      { p: P, a: U, ...v },
    );
    const C2 = second.data.createComment.id as string;
    expect(
      (await appending(open, `mutation($id: ID!, $sync: SyncMode) { deletePost(id: $id, sync: $sync) { id } }`, { id: P, ...v })).event,
    ).toEqual({
      command: 'deletePost',
      entity_type: 'post',
      entity_ids: [P, C2],
      ...anyone,
      args: { id: P },
    });

    // What happened to the post, newest first, as admins read it.
    const events = await eventsOf(open, P);
    expect(events.map((e) => e.command)).toEqual([
      'deletePost',
      'createComment',
      'deleteComment',
      'untagPost',
      'tagPost',
      'createComment',
      'publishPost',
      'updatePost',
      'createPost',
    ]);
    expect(events.at(-1)).toEqual({
      id: expect.stringMatching(/^\d+$/),
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      command: 'createPost',
      entityType: 'post',
      entityIds: [P],
      actorId: null,
      actorAdmin: true,
      args: expect.any(String),
      cursor: expect.any(String),
    });
    expect(JSON.parse(events.at(-1)!.args)).toEqual({ title: 'Events', content: 'body', authorId: U, published: false });
    expect((await eventsOf(open, C)).map((e) => e.command)).toEqual(['deleteComment', 'createComment']);
    expect((await eventsOf(open, U)).map((e) => e.command)).toEqual(['updateUser', 'createUser']);
  },
);

test('events pages newest first: limit, then `after` the last cursor, to the end', async () => {
  const { createPost } = await open.data(
    `mutation { createPost(title: "Paged", content: "x", authorId: "${ALICE}", sync: INLINE) { id } }`,
  );
  const P = createPost.id as string;
  for (let i = 0; i < 4; i++) await open.data(`mutation { createComment(postId: "${P}", authorId: "${BOB}", content: "c${i}") { id } }`);
  const all = await eventsOf(open, P);
  expect(all.map((e) => e.command)).toEqual(['createComment', 'createComment', 'createComment', 'createComment', 'createPost']);
  expect(all.map((e) => JSON.parse(e.args).content)).toEqual(['c3', 'c2', 'c1', 'c0', 'x']);
  const ids = all.map((e) => BigInt(e.id));
  expect([...ids].sort((a, b) => (a > b ? -1 : 1))).toEqual(ids);

  const pages: EventDoc[][] = [];
  let after: string | undefined;
  for (;;) {
    const page = await eventsOf(open, P, { limit: 2, ...(after ? { after } : {}) });
    if (!page.length) break;
    pages.push(page);
    after = page.at(-1)!.cursor;
  }
  expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
  expect(pages.flat()).toEqual(all);
  // The default page size (DEFAULT_PAGE_SIZE, 20) and an entity without events.
  expect(await eventsOf(open, '11111111-2222-4333-8444-555555555555')).toEqual([]);
});

test('bad arguments of events: BAD_USER_INPUT naming each, and nothing read', async () => {
  const refused = async (variables: Record<string, unknown>) => {
    const res = await open.gql(EVENTS, variables);
    expect(res.json.data).toBeNull();
    return (res.json.errors ?? []).map((e) => ({ code: e.extensions?.code, field: e.extensions?.field, message: e.message }));
  };
  expect(await refused({ id: 'not-a-uuid' })).toEqual([{ code: 'BAD_USER_INPUT', field: 'entityId', message: 'entityId must be a UUID.' }]);
  expect(await refused({ id: POST1, limit: 0 })).toEqual([
    { code: 'BAD_USER_INPUT', field: 'limit', message: 'limit must be between 1 and 100.' },
  ]);
  expect(await refused({ id: POST1, limit: 101 })).toEqual([
    { code: 'BAD_USER_INPUT', field: 'limit', message: 'limit must be between 1 and 100.' },
  ]);
  const notACursor = { code: 'BAD_USER_INPUT', field: 'after', message: 'after is not a cursor returned by events.' };
  expect(await refused({ id: POST1, after: 'garbage!' })).toEqual([notACursor]);
  expect(await refused({ id: POST1, after: Buffer.from('0').toString('base64url') })).toEqual([notACursor]);
  expect(await refused({ id: POST1, after: Buffer.from('9223372036854775808').toString('base64url') })).toEqual([notACursor]);
  // A cursor of another list is not an event's.
  const { posts } = await open.data('{ posts(limit: 1) { cursor } }');
  expect(await refused({ id: POST1, after: posts[0].cursor })).toEqual([notACursor]);
  // Every bad argument at once.
  expect((await refused({ id: 'x', limit: -1, after: 'y' })).map((e) => e.field)).toEqual(['entityId', 'limit', 'after']);
});

describe('a command that fails appends no event (nor anything else)', () => {
  const UNKNOWN = '11111111-2222-4333-8444-555555555555';
  const cases: { name: string; query: string; code: string }[] = [
    {
      name: 'bad input',
      query: `mutation { createPost(title: " ", content: "x", authorId: "${ALICE}", sync: INLINE) { id } }`,
      code: 'BAD_USER_INPUT',
    },
    // The event was sent behind the insert that failed, in the same batch: PostgreSQL skipped it.
    {
      name: 'a missing post, INLINE',
      query: `mutation { createComment(postId: "${UNKNOWN}", authorId: "${ALICE}", content: "x", sync: INLINE) { id } }`,
      code: 'NOT_FOUND',
    },
    {
      name: 'a missing author, QUEUED',
      query: `mutation { createPost(title: "t", content: "x", authorId: "${UNKNOWN}", sync: QUEUED) { id } }`,
      code: 'NOT_FOUND',
    },
    {
      name: 'a missing post to update',
      query: `mutation { updatePost(id: "${UNKNOWN}", title: "t", sync: INLINE) { id } }`,
      code: 'NOT_FOUND',
    },
    {
      name: 'a taken username',
      query: `mutation { createUser(email: "x@example.com", username: "alice", fullName: "X") { id } }`,
      code: 'CONFLICT',
    },
  ];
  test.each(cases)('$name: $code', async ({ query, code }) => {
    const before = await writeCounts(file.pool);
    const res = await open.gql(query);
    expect(res.json.errors?.[0]?.extensions?.code).toBe(code);
    expect(await writeCounts(file.pool)).toEqual(before);
  });
});

describe('AUTH_MODE=jwt', () => {
  test("the actor is the token's subject, and whether it is an admin; a forbidden command appends no event", async () => {
    const mine = await appending(
      jwt,
      `mutation { createPost(title: "Mine", content: "x", published: true) { id } }`,
      {},
      await bearer(ALICE),
    );
    const P = mine.data.createPost.id as string;
    // authorId was omitted: the validated arguments hold the one the command used.
    expect(mine.event).toMatchObject({ command: 'createPost', actor_id: ALICE, actor_admin: false, args: { authorId: ALICE } });

    const before = await writeCounts(file.pool);
    const res = await jwt.post({ query: `mutation { updatePost(id: "${P}", title: "Not yours") { id } }` }, await bearer(BOB));
    expect(res.json.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await writeCounts(file.pool)).toEqual(before);

    const moderated = await appending(
      jwt,
      `mutation { updatePost(id: "${P}", title: "Moderated") { id } }`,
      {},
      await bearer(CHARLIE, 'admin'),
    );
    expect(moderated.event).toMatchObject({
      command: 'updatePost',
      actor_id: CHARLIE,
      actor_admin: true,
      args: { id: P, title: 'Moderated' },
    });

    const read = await jwt.post({ query: EVENTS, variables: { id: P } }, await bearer(CHARLIE, 'admin'));
    expect((read.json.data as { events: EventDoc[] }).events.map((e) => [e.command, e.actorId, e.actorAdmin])).toEqual([
      ['updatePost', CHARLIE, true],
      ['createPost', ALICE, false],
    ]);
  });

  test('events is for admins only: FORBIDDEN, saying why, without a token or with a non-admin one', async () => {
    const asked = async (headers: Record<string, string>) => {
      const res = await jwt.post({ query: EVENTS, variables: { id: POST1 } }, headers);
      return {
        status: res.status,
        data: res.json.data,
        code: res.json.errors?.[0]?.extensions?.code,
        message: res.json.errors?.[0]?.message,
      };
    };
    expect(await asked({})).toEqual({
      status: 200,
      data: null,
      code: 'FORBIDDEN',
      message: expect.stringMatching(/only an admin may read the event log.*send an admin's token/i),
    });
    expect(await asked(await bearer(ALICE))).toEqual({
      status: 200,
      data: null,
      code: 'FORBIDDEN',
      message: expect.stringMatching(/only an admin may read the event log.*not admin/i),
    });
    expect(await asked({ authorization: 'Bearer not.a.token' })).toMatchObject({ data: null, code: 'UNAUTHENTICATED' });
    expect(await asked(await bearer(CHARLIE, 'admin'))).toMatchObject({
      status: 200,
      data: { events: expect.any(Array) },
      code: undefined,
    });
    // Authorization comes first: a non-admin learns nothing of the arguments either.
    const bad = await jwt.post({ query: EVENTS, variables: { id: 'not-a-uuid' } }, await bearer(ALICE));
    expect(bad.json.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
  });
});
