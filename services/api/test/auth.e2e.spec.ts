import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { seed } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import type pg from 'pg';
import type { AuthConfig } from '../src/auth/config';
import {
  ALICE,
  BOB,
  CHARLIE,
  mutationAnswer,
  POST1,
  POST3,
  SEED_OPERATIONS,
  startApi,
  UUID_RE,
  writeCounts,
  type TestApi,
} from './support';

/**
 * AUTH_MODE=jwt over real HTTP: who may write what. Every refusal asserts its code AND that
 * nothing was written (tb_* rows, updated_at, pg-boss jobs). Writes are QUEUED, so a write that
 * got through would leave a job.
 */
const SECRET = 'a-test-secret-of-at-least-32-characters!';
const ISSUER = 'https://issuer.test';
const AUDIENCE = 'blog-api';
const OPERATOR_TOKEN = 'operator-token-for-tests-0123456789';
const NEWCOMER = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
// Comments of the seed: post 1 by bob, post 3 by alice (fixed ids, see shared/src/seed/data.ts).
let pool: pg.Pool;
let api: TestApi;
let bobComment: string;

const MAX_AGE = 86_400;
const hs256: AuthConfig = {
  mode: 'jwt',
  key: { kind: 'secret', secret: SECRET },
  issuer: ISSUER,
  audience: AUDIENCE,
  roleClaim: 'role',
  maxAgeSeconds: MAX_AGE,
};

function sign(
  claims: JWTPayload,
  opts: { secret?: string; expiresIn?: string | number; issuer?: string; audience?: string; sub?: string | null } = {},
): Promise<string> {
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setIssuer(opts.issuer ?? ISSUER)
    .setAudience(opts.audience ?? AUDIENCE)
    .setExpirationTime(opts.expiresIn ?? '5m');
  if (opts.sub !== null) jwt.setSubject(opts.sub ?? ALICE);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? SECRET));
}
const tokenFor = (sub: string, role?: string) => sign(role ? { role } : {}, { sub });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function gqlAs(target: TestApi, headers: Record<string, string>, query: string, variables?: Record<string, unknown>) {
  return target.post({ query, ...(variables ? { variables } : {}) }, headers);
}

beforeAll(async () => {
  pool = testPool();
  await seed(pool);
  api = await startApi({ auth: hs256, defaultSyncMode: 'QUEUED', operatorToken: OPERATOR_TOKEN });
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM tb_comment WHERE post_id = $1 AND author_id = $2', [POST1, BOB]);
  bobComment = rows[0]!.id;
});

afterAll(async () => {
  await api?.close();
  await pool?.end();
});

/** Runs a request that must be refused, and checks the code and that nothing was written. */
async function refused(target: TestApi, headers: Record<string, string>, query: string, code: string, variables?: Record<string, unknown>) {
  const before = await writeCounts(pool);
  const res = await gqlAs(target, headers, query, variables);
  expect({ status: res.status, code: res.json.errors?.[0]?.extensions?.code, data: res.json.data }).toEqual({
    status: 200,
    code,
    data: null,
  });
  expect(res.json.errors?.[0]?.message).toEqual(expect.any(String));
  expect(await writeCounts(pool)).toEqual(before);
  return res;
}

const CREATE_POST = `mutation { createPost(title: "t", content: "c", authorId: "${ALICE}") { id } }`;

describe('authentication: UNAUTHENTICATED, nothing written', () => {
  const cases: { name: string; headers: () => Promise<Record<string, string>>; message: RegExp }[] = [
    { name: 'no token', headers: async () => ({}), message: /needs a token/ },
    {
      name: 'an expired token',
      headers: async () => bearer(await sign({}, { expiresIn: Math.floor(Date.now() / 1000) - 60 })),
      message: /expired/,
    },
    {
      name: 'a wrong signature',
      headers: async () => bearer(await sign({}, { secret: 'another-secret-of-at-least-32-characters' })),
      message: /signature/,
    },
    {
      name: 'a tampered payload',
      headers: async () => {
        const [h, , s] = (await tokenFor(ALICE)).split('.');
        const forged = Buffer.from(JSON.stringify({ sub: ALICE, role: 'admin', iss: ISSUER, aud: AUDIENCE, exp: 9_999_999_999 })).toString(
          'base64url',
        );
        return bearer(`${h}.${forged}.${s}`);
      },
      message: /signature/,
    },
    { name: 'a wrong issuer', headers: async () => bearer(await sign({}, { issuer: 'https://evil.test' })), message: /issuer/ },
    { name: 'a wrong audience', headers: async () => bearer(await sign({}, { audience: 'another-api' })), message: /audience/ },
    {
      name: 'no expiry (exp is required)',
      headers: async () => {
        const token = await new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject(ALICE)
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .sign(new TextEncoder().encode(SECRET));
        return bearer(token);
      },
      message: /exp/,
    },
    {
      name: 'exp: 1e20 (valid for longer than JWT_MAX_AGE_SECONDS from its iat)',
      headers: async () => bearer(await sign({}, { expiresIn: 1e20 })),
      message: /longer than this server accepts/,
    },
    {
      name: 'a lifetime of a day and a second (JWT_MAX_AGE_SECONDS is a day)',
      headers: async () => {
        const iat = Math.floor(Date.now() / 1000);
        return bearer(
          await new SignJWT({})
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject(ALICE)
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setIssuedAt(iat)
            .setExpirationTime(iat + MAX_AGE + 1)
            .sign(new TextEncoder().encode(SECRET)),
        );
      },
      message: /longer than this server accepts/,
    },
    {
      name: 'no iat, and exp two days from now',
      headers: async () => {
        const token = await new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject(ALICE)
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime('2d')
          .sign(new TextEncoder().encode(SECRET));
        return bearer(token);
      },
      message: /longer than this server accepts/,
    },
    {
      name: 'an iat in the future (which would shorten the lifetime measured)',
      headers: async () => {
        const iat = Math.floor(Date.now() / 1000) + 3600;
        return bearer(
          await new SignJWT({})
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject(ALICE)
            .setIssuer(ISSUER)
            .setAudience(AUDIENCE)
            .setIssuedAt(iat)
            .setExpirationTime(iat + 300)
            .sign(new TextEncoder().encode(SECRET)),
        );
      },
      message: /iat.*future/,
    },
    { name: 'no subject', headers: async () => bearer(await sign({}, { sub: null })), message: /subject/ },
    { name: 'a subject that is not a UUID', headers: async () => bearer(await sign({}, { sub: 'alice' })), message: /subject/ },
    {
      name: 'an unsigned token (alg none)',
      headers: async () => {
        const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
        return bearer(`${part({ alg: 'none' })}.${part({ sub: ALICE, iss: ISSUER, aud: AUDIENCE, exp: 9_999_999_999 })}.`);
      },
      message: /not valid|algorithm/,
    },
    { name: 'a malformed header (no Bearer)', headers: async () => ({ authorization: await tokenFor(ALICE) }), message: /Malformed/ },
    { name: 'a malformed header (Basic)', headers: async () => ({ authorization: 'Basic YWxpY2U6c2VjcmV0' }), message: /Malformed/ },
    { name: 'a malformed header (Bearer garbage)', headers: async () => ({ authorization: 'Bearer not.a.jwt' }), message: /not valid/ },
  ];
  test.each(cases)('$name', async (c) => {
    const res = await refused(api, await c.headers(), CREATE_POST, 'UNAUTHENTICATED');
    expect(res.json.errors?.[0]?.message).toMatch(c.message);
    expect(res.json.errors?.[0]?.message).not.toMatch(/stack|jose|at .+\.(ts|js):\d+/i);
  });

  test('every mutation needs a token, even one with bad input (no token, nothing written)', async () => {
    for (const q of [
      `mutation { createUser(email: "x@example.com", username: "xxx", fullName: "X") { id } }`,
      `mutation { updateUser(id: "${ALICE}", fullName: "A") { id } }`,
      `mutation { updatePost(id: "${POST1}", title: "t") { id } }`,
      `mutation { publishPost(id: "${POST1}") { id } }`,
      `mutation { deletePost(id: "${POST1}") { id } }`,
      `mutation { createComment(postId: "${POST1}", content: "c") { id } }`,
      `mutation { deleteComment(id: "${bobComment}") { id } }`,
      `mutation { createPost(title: "", content: "c") { id } }`,
    ]) {
      await refused(api, {}, q, 'UNAUTHENTICATED');
    }
  });

  test('reads stay public: no token, and a bad token is not even looked at', async () => {
    const variants: Record<string, string>[] = [{}, { authorization: 'Bearer not.a.jwt' }, { authorization: 'Basic x' }];
    for (const headers of variants) {
      const res = await gqlAs(api, headers, SEED_OPERATIONS.GetRecentPosts);
      expect(res.status).toBe(200);
      expect(res.json.errors).toBeUndefined();
      expect((res.json.data as { posts: unknown[] }).posts.length).toBeGreaterThan(0);
      // A read that Apollo answers (introspection), not the compiled path: public too.
      const intro = await gqlAs(api, headers, '{ __typename }');
      expect(intro.json).toEqual({ data: { __typename: 'Query' } });
    }
  });
});

describe('authorization: FORBIDDEN, nothing written', () => {
  test('writing as someone else: createPost / createComment with another authorId', async () => {
    const bob = bearer(await tokenFor(BOB));
    await refused(api, bob, CREATE_POST, 'FORBIDDEN');
    await refused(api, bob, `mutation { createComment(postId: "${POST1}", authorId: "${ALICE}", content: "hi") { id } }`, 'FORBIDDEN');
  });

  test("another user's post: update, publish, delete", async () => {
    const bob = bearer(await tokenFor(BOB));
    for (const q of [
      `mutation { updatePost(id: "${POST1}", title: "mine now") { id } }`,
      `mutation { publishPost(id: "${POST1}") { id } }`,
      `mutation { deletePost(id: "${POST1}") { id deletedCommentIds } }`,
    ]) {
      const res = await refused(api, bob, q, 'FORBIDDEN');
      expect(res.json.errors?.[0]?.extensions?.field).toBe('id');
    }
  });

  test("another user's comment: delete", async () => {
    await refused(api, bearer(await tokenFor(CHARLIE)), `mutation { deleteComment(id: "${bobComment}") { id } }`, 'FORBIDDEN');
  });

  test('another user: updateUser', async () => {
    await refused(api, bearer(await tokenFor(BOB)), `mutation { updateUser(id: "${ALICE}", fullName: "Not Alice") { id } }`, 'FORBIDDEN');
  });

  test('createUser by a token that already has its user', async () => {
    await refused(
      api,
      bearer(await tokenFor(ALICE)),
      `mutation { createUser(email: "a2@example.com", username: "alice2", fullName: "Alice 2") { id } }`,
      'FORBIDDEN',
    );
  });

  test('a role other than admin is no admin', async () => {
    await refused(api, bearer(await tokenFor(BOB, 'editor')), `mutation { publishPost(id: "${POST1}") { id } }`, 'FORBIDDEN');
  });

  test('the ownership check holds the row: a concurrent delete is seen (NOT_FOUND), no check-then-act', async () => {
    const bob = bearer(await tokenFor(BOB));
    const made = await gqlAs(api, bob, `mutation { createPost(title: "contested", content: "c", sync: INLINE) { id } }`);
    const id = (made.json.data as { createPost: { id: string } }).createPost.id;
    const before = await writeCounts(pool);
    const other = await pool.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT 1 FROM tb_post WHERE id = $1 FOR UPDATE', [id]);
      const update = gqlAs(api, bob, `mutation { updatePost(id: "${id}", title: "too late") { id } }`);
      // The mutation's ownership check waits on the row lock...
      for (let i = 0; ; i++) {
        const { rows } = await pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' " +
            "AND query LIKE 'SELECT author_id, published FROM tb_post%'",
        );
        if (rows[0]!.n > 0) break;
        if (i > 100) throw new Error('the ownership check did not wait for the row lock');
        await new Promise((r) => setTimeout(r, 50));
      }
      // ...while the row is deleted and committed: the check then sees no row.
      await other.query('DELETE FROM tb_post WHERE id = $1', [id]);
      await other.query('COMMIT');
      const res = await update;
      expect(res.json.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    } finally {
      await other.query('ROLLBACK').catch(() => undefined);
      other.release();
    }
    const after = await writeCounts(pool);
    // Only our delete (the post and its counts row).
    expect({ ...after, tb_post: after.tb_post! + 1, tb_post_stats: after.tb_post_stats! + 1 }).toEqual({
      ...before,
      tb_post_updated: after.tb_post_updated,
    });
  });

  test('unknown ids stay NOT_FOUND for an authenticated user (nothing written)', async () => {
    await refused(api, bearer(await tokenFor(BOB)), `mutation { deletePost(id: "${NEWCOMER}") { id } }`, 'NOT_FOUND');
  });
});

describe('allowed', () => {
  test('a token living exactly JWT_MAX_AGE_SECONDS, and one without iat expiring within it', async () => {
    const iat = Math.floor(Date.now() / 1000);
    const key = new TextEncoder().encode(SECRET);
    const base = () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(ALICE).setIssuer(ISSUER).setAudience(AUDIENCE);
    for (const token of [
      await base()
        .setIssuedAt(iat)
        .setExpirationTime(iat + MAX_AGE)
        .sign(key),
      await base().setExpirationTime('23h').sign(key),
    ]) {
      const res = await gqlAs(api, bearer(token), `mutation { createPost(title: "max age", content: "c") { author { id } } }`);
      expect(res.json).toEqual(mutationAnswer({ createPost: { author: { id: ALICE } } }));
    }
  });

  test('JWT_MAX_AGE_SECONDS=0: no limit (exp: 1e20 accepted)', async () => {
    const unlimited = await startApi({ auth: { ...hs256, maxAgeSeconds: 0 }, defaultSyncMode: 'QUEUED' });
    try {
      const res = await gqlAs(
        unlimited,
        bearer(await sign({}, { expiresIn: 1e20 })),
        `mutation { createPost(title: "for ever", content: "c") { author { id } } }`,
      );
      expect(res.json).toEqual(mutationAnswer({ createPost: { author: { id: ALICE } } }));
    } finally {
      await unlimited.close();
    }
  });

  test('the owner may do all: create (authorId from the token), update, publish, comment, delete', async () => {
    const bob = bearer(await tokenFor(BOB));
    const before = await writeCounts(pool);
    const created = await gqlAs(api, bob, `mutation { createPost(title: "Bob's", content: "c") { id published author { id username } } }`);
    expect(created.json.errors).toBeUndefined();
    const post = (created.json.data as { createPost: { id: string; author: { id: string; username: string } } }).createPost;
    expect(post.author).toEqual({ id: BOB, username: 'bob' });
    // Giving one's own id explicitly is fine too.
    const explicit = await gqlAs(api, bob, `mutation { createPost(title: "t", content: "c", authorId: "${BOB}") { author { id } } }`);
    expect(explicit.json.data).toEqual({ createPost: { author: { id: BOB } } });

    const ok = async (q: string) => {
      const res = await gqlAs(api, bob, q);
      expect(res.json.errors).toBeUndefined();
      return res.json.data as Record<string, Record<string, unknown>>;
    };
    expect((await ok(`mutation { updatePost(id: "${post.id}", title: "Renamed") { title } }`)).updatePost).toEqual({ title: 'Renamed' });
    expect((await ok(`mutation { publishPost(id: "${post.id}") { published } }`)).publishPost).toEqual({ published: true });
    const comment = (await ok(`mutation { createComment(postId: "${post.id}", content: "first") { id author { id } } }`)).createComment!;
    expect(comment.author).toEqual({ id: BOB });
    expect((await ok(`mutation { deleteComment(id: "${comment.id as string}") { id } }`)).deleteComment).toEqual({ id: comment.id });
    expect((await ok(`mutation { updateUser(id: "${BOB}", bio: "Bob's bio") { bio } }`)).updateUser).toEqual({ bio: "Bob's bio" });
    expect((await ok(`mutation { deletePost(id: "${post.id}") { id deletedCommentIds } }`)).deletePost).toEqual({
      id: post.id,
      deletedCommentIds: [],
    });
    const after = await writeCounts(pool);
    expect(after.tb_post).toBe(before.tb_post! + 1); // the explicit one stays
    expect(after.outbox! + after.jobs!).toBeGreaterThan(before.outbox! + before.jobs!); // QUEUED: each write enqueued its sync
  });

  test('admin may do all: write as others, change and delete what others wrote, create users', async () => {
    const admin = bearer(await tokenFor(CHARLIE, 'admin'));
    const ok = async (q: string) => {
      const res = await gqlAs(api, admin, q);
      expect(res.json.errors).toBeUndefined();
      return res.json.data as Record<string, Record<string, unknown>>;
    };
    const asAlice = (await ok(`mutation { createPost(title: "by admin", content: "c", authorId: "${ALICE}") { id author { id } } }`))
      .createPost!;
    expect(asAlice.author).toEqual({ id: ALICE });
    expect((await ok(`mutation { updatePost(id: "${POST3}", content: "edited by admin") { content } }`)).updatePost).toEqual({
      content: 'edited by admin',
    });
    expect((await ok(`mutation { publishPost(id: "${asAlice.id as string}") { published } }`)).publishPost).toEqual({ published: true });
    expect((await ok(`mutation { updateUser(id: "${BOB}", fullName: "Robert Smith") { fullName } }`)).updateUser).toEqual({
      fullName: 'Robert Smith',
    });
    const c = (await ok(`mutation { createComment(postId: "${POST3}", authorId: "${BOB}", content: "as bob") { id } }`)).createComment!;
    expect((await ok(`mutation { deleteComment(id: "${c.id as string}") { id } }`)).deleteComment).toEqual({ id: c.id });
    const user = (await ok(`mutation { createUser(email: "dave@example.com", username: "dave", fullName: "Dave") { id } }`)).createUser!;
    expect(user.id).toMatch(UUID_RE);
    expect(user.id).not.toBe(CHARLIE);
    expect((await ok(`mutation { deletePost(id: "${asAlice.id as string}") { id } }`)).deletePost).toEqual({ id: asAlice.id });
  });

  test('the role claim may also be a list of roles', async () => {
    const admin = bearer(await sign({ role: ['reader', 'admin'] }, { sub: CHARLIE }));
    const res = await gqlAs(api, admin, `mutation { updateUser(id: "${ALICE}", bio: "set by admin") { bio } }`);
    expect(res.json).toEqual(mutationAnswer({ updateUser: { bio: 'set by admin' } }));
  });

  test('sign-up: a token whose subject has no user yet creates it, with the subject as id', async () => {
    const token = bearer(await tokenFor(NEWCOMER));
    const res = await gqlAs(
      api,
      token,
      `mutation { createUser(email: "new@example.com", username: "newcomer", fullName: "New Comer") { id username } }`,
    );
    expect(res.json).toEqual(mutationAnswer({ createUser: { id: NEWCOMER, username: 'newcomer' } }));
    // Then it writes as itself.
    const post = await gqlAs(api, token, `mutation { createPost(title: "hello", content: "c") { author { id } } }`);
    expect(post.json).toEqual(mutationAnswer({ createPost: { author: { id: NEWCOMER } } }));
    // A second user for the same subject: FORBIDDEN.
    await refused(
      api,
      token,
      `mutation { createUser(email: "new2@example.com", username: "newcomer2", fullName: "Again") { id } }`,
      'FORBIDDEN',
    );
  });
});

describe('RS256', () => {
  let otherKey: CryptoKey;
  beforeAll(async () => {
    ({ privateKey: otherKey } = await generateKeyPair('RS256'));
  });
  const rs = (key: CryptoKey, sub: string, kid?: string) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', ...(kid ? { kid } : {}) })
      .setSubject(sub)
      .setExpirationTime('5m')
      .sign(key);

  test('with a PEM public key (JWT_PUBLIC_KEY)', async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(pair.publicKey);
    const rsApi = await startApi({
      auth: { mode: 'jwt', key: { kind: 'publicKey', pem }, roleClaim: 'role', maxAgeSeconds: MAX_AGE },
      defaultSyncMode: 'QUEUED',
    });
    try {
      const good = await gqlAs(
        rsApi,
        bearer(await rs(pair.privateKey, ALICE)),
        `mutation { createComment(postId: "${POST3}", content: "rs256") { author { id } } }`,
      );
      expect(good.json).toEqual(mutationAnswer({ createComment: { author: { id: ALICE } } }));
      await refused(rsApi, bearer(await rs(otherKey, ALICE)), CREATE_POST, 'UNAUTHENTICATED');
      // An HS256 token (e.g. signed with the public key as a secret: the alg confusion attack) is refused.
      await refused(rsApi, bearer(await sign({}, { secret: pem })), CREATE_POST, 'UNAUTHENTICATED');
    } finally {
      await rsApi.close();
    }
  });

  test('with a JWKS served over HTTP (JWT_JWKS_URL)', async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    let fetches = 0;
    const jwks = http.createServer((_req, res) => {
      fetches += 1;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
    const jwksApi = await startApi({
      auth: { mode: 'jwt', key: { kind: 'jwks', url }, roleClaim: 'role', maxAgeSeconds: MAX_AGE },
      defaultSyncMode: 'QUEUED',
    });
    try {
      const good = await gqlAs(
        jwksApi,
        bearer(await rs(pair.privateKey, BOB, 'k1')),
        `mutation { createComment(postId: "${POST3}", content: "jwks") { author { id } } }`,
      );
      expect(good.json).toEqual(mutationAnswer({ createComment: { author: { id: BOB } } }));
      expect(fetches).toBeGreaterThanOrEqual(1);
      // Same kid, another key: the signature does not verify.
      await refused(jwksApi, bearer(await rs(otherKey, BOB, 'k1')), CREATE_POST, 'UNAUTHENTICATED');
      // A kid the JWKS does not have.
      await refused(jwksApi, bearer(await rs(pair.privateKey, BOB, 'k2')), CREATE_POST, 'UNAUTHENTICATED');
    } finally {
      await jwksApi.close();
      await new Promise((resolve) => jwks.close(resolve));
    }
  });
});

test(
  "a JWKS endpoint that cannot be reached is our failure (INTERNAL_SERVER_ERROR, logged), not the client's; " + 'nothing written',
  async () => {
    // A port that was free a moment ago: connections are refused.
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const down = await startApi({
      auth: { mode: 'jwt', key: { kind: 'jwks', url: `http://127.0.0.1:${port}/jwks.json` }, roleClaim: 'role', maxAgeSeconds: MAX_AGE },
      defaultSyncMode: 'QUEUED',
    });
    try {
      const { privateKey } = await generateKeyPair('RS256');
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setSubject(ALICE)
        .setExpirationTime('5m')
        .sign(privateKey);
      await refused(down, bearer(token), CREATE_POST, 'INTERNAL_SERVER_ERROR');
    } finally {
      await down.close();
    }
  },
);

describe('AUTH_MODE=none (the demo default)', () => {
  let open: TestApi;
  beforeAll(async () => {
    open = await startApi({ defaultSyncMode: 'QUEUED' });
  });
  afterAll(async () => {
    await open?.close();
  });

  test("the seed's mutations run verbatim, without a token", async () => {
    const post = await open.gql(SEED_OPERATIONS.CreatePost);
    expect(post.json).toEqual(
      mutationAnswer({ createPost: { id: expect.stringMatching(UUID_RE), title: 'My New Post', author: { username: 'alice' } } }),
    );
    const comment = await open.gql(SEED_OPERATIONS.AddComment);
    expect(comment.json).toEqual(
      mutationAnswer({ createComment: { id: expect.stringMatching(UUID_RE), content: 'Great post!', author: { username: 'bob' } } }),
    );
  });

  test('an omitted authorId is BAD_USER_INPUT (there is no token to take it from), nothing written', async () => {
    await refused(open, {}, `mutation { createPost(title: "t", content: "c") { id } }`, 'BAD_USER_INPUT');
    await refused(open, {}, `mutation { createComment(postId: "${POST1}", content: "c") { id } }`, 'BAD_USER_INPUT');
  });

  test('a token is ignored: anyone may change anything', async () => {
    const res = await gqlAs(
      open,
      { authorization: 'Bearer not.a.jwt' },
      `mutation { updatePost(id: "${POST1}", content: "anyone") { content } }`,
    );
    expect(res.json).toEqual(mutationAnswer({ updatePost: { content: 'anyone' } }));
  });
});

describe('operator token (OPERATOR_TOKEN) on /metrics', () => {
  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${api.url}${path}`, { headers });

  test.each(['/metrics', '/metrics/prometheus'])('%s: 401 without or with a wrong token, 200 with it', async (path) => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong-token' },
      { authorization: `Bearer ${OPERATOR_TOKEN}x` },
      { authorization: OPERATOR_TOKEN },
      { authorization: `Basic ${OPERATOR_TOKEN}` },
    ];
    for (const headers of attempts) {
      const res = await get(path, headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(await res.json()).toEqual({
        errors: [{ message: expect.stringContaining('OPERATOR_TOKEN'), extensions: { code: 'UNAUTHENTICATED' } }],
      });
    }
    const res = await get(path, { authorization: `Bearer ${OPERATOR_TOKEN}` });
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toMatch(path === '/metrics' ? /"sync_metrics_24h"/ : /# TYPE /);
  });

  test('/health and /ready stay open', async () => {
    expect((await get('/health')).status).toBe(200);
    expect((await get('/ready')).status).toBe(200);
  });

  test('without OPERATOR_TOKEN, /metrics is open', async () => {
    const open = await startApi();
    try {
      expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

describe('the mutation rate limit counts a signed-in user as one client', () => {
  test('the same subject from two addresses shares one bucket; another subject from the same address has its own', async () => {
    const limited = await startApi({ auth: hs256, defaultSyncMode: 'QUEUED', rateLimitMutationsPerMinute: 1, trustProxy: 1 });
    try {
      const bio = (who: string, text: string) => `mutation { updateUser(id: "${who}", bio: "${text}") { id } }`;
      const from = (ip: string, token: string) => ({ ...bearer(token), 'x-forwarded-for': ip });
      const alice = await tokenFor(ALICE);
      const bob = await tokenFor(BOB);
      const first = await gqlAs(limited, from('203.0.113.10', alice), bio(ALICE, 'one'));
      expect(first.json.errors).toBeUndefined();
      const before = await writeCounts(pool);
      // Alice from another address: still Alice, and her minute's one mutation is spent.
      const moved = await gqlAs(limited, from('203.0.113.11', alice), bio(ALICE, 'two'));
      expect(moved.status).toBe(429);
      expect(moved.json.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
      expect(await writeCounts(pool)).toEqual(before);
      // Bob from Alice's first address: a client of his own.
      const other = await gqlAs(limited, from('203.0.113.10', bob), bio(BOB, 'mine'));
      expect(other.status).toBe(200);
      expect(other.json.errors).toBeUndefined();
    } finally {
      await limited.close();
    }
  });
});
