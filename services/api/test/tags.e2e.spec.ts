import { SYNC_QUEUE, SyncEngine } from '@blog/shared';
import { SignJWT } from 'jose';
import type { AuthConfig } from '../src/auth/config';
import { ALICE, BOB, POST1, POST2, POST3, seededApis, type TestApi } from './support';

/**
 * Tags (migration 006, shared/src/model/tag.ts, src/commands/tags.ts): the mutations in each sync
 * mode, what they refresh (the tag's postCount, the posts embedding it), the reads (tag(slug),
 * tags, posts(tag:)), bad input, and verify finding drift in tv_tag.
 */
const file = seededApis();
let api: TestApi;
beforeAll(async () => {
  api = await file.api({ deferSeconds: 120 });
});

const TAG = 'id name slug postCount createdAt';
const postTags = `query($id: ID!) { post(id: $id) { id tags { id name slug } } }`;
const tagBySlug = `query($slug: String!) { tag(slug: $slug) { ${TAG} } }`;

let n = 0;
/** A new tag, INLINE, with a name of its own. */
async function newTag(name = `Topic ${++n}`): Promise<{ id: string; name: string; slug: string; postCount: number }> {
  return (await api.data(`mutation($name: String!) { createTag(name: $name, sync: INLINE) { ${TAG} } }`, { name })).createTag;
}

/** The waiting jobs naming `id`, once the sync outbox is relayed to pg-boss (as a worker would). */
async function jobsNaming(id: string): Promise<{ plan: Record<string, string[]>; start_after: Date }[]> {
  await api.app.queue.relay();
  const { rows } = await file.pool.query(
    `SELECT data->'plan' AS plan, start_after FROM pgboss.job WHERE name = $1 AND state = 'created' AND data::text LIKE '%' || $2 || '%'`,
    [SYNC_QUEUE, id],
  );
  return rows;
}

async function tagRows(): Promise<Record<string, number>> {
  const { rows } = await file.pool.query<Record<string, number>>(
    `SELECT (SELECT count(*) FROM tb_tag)::int AS tags, (SELECT count(*) FROM tb_post_tag)::int AS links,
            (SELECT count(*) FROM tv_tag)::int AS projected, (SELECT count(*) FROM pgboss.job)::int AS jobs,
            (SELECT count(*) FROM sync_outbox)::int AS outbox`,
  );
  return rows[0]!;
}

describe('createTag', () => {
  test('INLINE: answers the tag; tag(slug) and tags read it at once; the slug is made from the name', async () => {
    const tag = await newTag('Node.js & Ünïcode tips');
    expect(tag).toEqual({
      id: expect.any(String),
      name: 'Node.js & Ünïcode tips',
      slug: 'node-js-unicode-tips',
      postCount: 0,
      createdAt: expect.any(String),
    });
    expect((await api.data(tagBySlug, { slug: 'node-js-unicode-tips' })).tag).toEqual(tag);
    expect((await api.data(`{ tags(limit: 1) { id cursor } }`)).tags).toEqual([{ id: tag.id, cursor: expect.any(String) }]);
    expect((await api.data(tagBySlug, { slug: 'no-such-tag' })).tag).toBeNull();
  });

  test('QUEUED: answers the tag at once; other readers see it after the sync', async () => {
    const created = (await api.data(`mutation { createTag(name: "Queued topic", slug: "queued-topic", sync: QUEUED) { ${TAG} } }`))
      .createTag;
    expect(created).toMatchObject({ name: 'Queued topic', slug: 'queued-topic', postCount: 0 });
    expect((await api.data(tagBySlug, { slug: 'queued-topic' })).tag).toBeNull();
    expect(await jobsNaming(created.id)).toEqual([{ plan: expect.objectContaining({ tag: [created.id] }), start_after: expect.any(Date) }]);
    await api.drainQueue();
    expect((await api.data(tagBySlug, { slug: 'queued-topic' })).tag).toEqual(created);
  });

  test('DEFERRED: its job waits out the deferral delay', async () => {
    const created = (await api.data(`mutation { createTag(name: "Later", slug: "later-topic", sync: DEFERRED) { id } }`)).createTag;
    const [job] = await jobsNaming(created.id);
    expect(job!.start_after.getTime()).toBeGreaterThan(Date.now() + 100_000);
    expect((await api.data(tagBySlug, { slug: 'later-topic' })).tag).toBeNull();
  });

  test('bad input is refused, naming each argument, and nothing is written', async () => {
    const before = await tagRows();
    const cases: [string, string, string][] = [
      ['createTag(name: "", slug: "ok")', 'BAD_USER_INPUT', 'name'],
      ['createTag(name: "Fine", slug: "Not A Slug")', 'BAD_USER_INPUT', 'slug'],
      ['createTag(name: "Fine", slug: "double--hyphen")', 'BAD_USER_INPUT', 'slug'],
      ['createTag(name: "!!!")', 'BAD_USER_INPUT', 'slug'],
      [`createTag(name: "${'x'.repeat(51)}")`, 'BAD_USER_INPUT', 'name'],
      ['createTag(name: "Again", slug: "queued-topic")', 'CONFLICT', 'slug'],
    ];
    for (const [call, code, field] of cases) {
      const res = await api.gql(`mutation { ${call} { id } }`);
      expect({ call, code: res.json.errors?.[0]?.extensions?.code, field: res.json.errors?.[0]?.extensions?.field }).toEqual({
        call,
        code,
        field,
      });
    }
    expect(await tagRows()).toEqual(before);
  });
});

describe('tagPost and untagPost', () => {
  test('INLINE: the post embeds its tags in order, each tag counts its posts, posts(tag:) finds them', async () => {
    const [a, b, c] = [await newTag(), await newTag(), await newTag()];
    const tagged = (
      await api.data(`mutation($ids: [ID!]!) { tagPost(postId: "${POST1}", tagIds: $ids, sync: INLINE) { id tags { id name slug } } }`, {
        ids: [b!.id, a!.id],
      })
    ).tagPost;
    const summary = (t: typeof a) => ({ id: t!.id, name: t!.name, slug: t!.slug });
    expect(tagged).toEqual({ id: POST1, tags: [summary(b), summary(a)] });
    // Tagging again with one it has and one new: the new one goes last, the other stays where it is.
    await api.data(`mutation { tagPost(postId: "${POST1}", tagIds: ["${a!.id}", "${c!.id}"], sync: INLINE) { id } }`);
    expect((await api.data(postTags, { id: POST1 })).post.tags).toEqual([summary(b), summary(a), summary(c)]);
    await api.data(`mutation { tagPost(postId: "${POST2}", tagIds: ["${a!.id}"], sync: INLINE) { id } }`);
    expect((await api.data(tagBySlug, { slug: a!.slug })).tag.postCount).toBe(2);
    expect((await api.data(tagBySlug, { slug: b!.slug })).tag.postCount).toBe(1);
    const listed = await api.data(`query($tag: String) { posts(tag: $tag) { id } }`, { tag: a!.slug });
    expect(listed.posts.map((p: { id: string }) => p.id).sort()).toEqual([POST1, POST2].sort());
    expect((await api.data(`{ posts(tag: "no-such-tag") { id } }`)).posts).toEqual([]);

    // Untagging the middle one: the others keep their order, and a new tag goes last again.
    const untagged = (await api.data(`mutation { untagPost(postId: "${POST1}", tagIds: ["${a!.id}"], sync: INLINE) { tags { id } } }`))
      .untagPost;
    expect(untagged.tags).toEqual([{ id: b!.id }, { id: c!.id }]);
    expect((await api.data(tagBySlug, { slug: a!.slug })).tag.postCount).toBe(1);
    await api.data(`mutation { tagPost(postId: "${POST1}", tagIds: ["${a!.id}"], sync: INLINE) { id } }`);
    expect((await api.data(postTags, { id: POST1 })).post.tags.map((t: { id: string }) => t.id)).toEqual([b!.id, c!.id, a!.id]);
    const { rows } = await file.pool.query('SELECT position FROM tb_post_tag WHERE post_id = $1 ORDER BY position', [POST1]);
    expect(rows.map((r) => r.position)).toEqual([1, 2, 3]);
    // Untagging a tag the post does not have changes nothing.
    const other = await newTag();
    expect(
      (await api.data(`mutation { untagPost(postId: "${POST2}", tagIds: ["${other.id}"], sync: INLINE) { tags { id } } }`)).untagPost.tags,
    ).toEqual([{ id: a!.id }]);
  });

  test('QUEUED and DEFERRED: the answer has the tags at once; readers see them, and the counts, after the sync', async () => {
    const t = await newTag();
    const queued = (await api.data(`mutation { tagPost(postId: "${POST3}", tagIds: ["${t.id}"], sync: QUEUED) { tags { id } } }`)).tagPost;
    expect(queued.tags).toEqual([{ id: t.id }]);
    expect((await api.data(postTags, { id: POST3 })).post.tags).toEqual([]);
    expect((await api.data(tagBySlug, { slug: t.slug })).tag.postCount).toBe(0);
    const [job] = await jobsNaming(t.id);
    expect(job!.plan).toMatchObject({ post: [POST3], tag: [t.id] });
    await api.drainQueue();
    expect((await api.data(postTags, { id: POST3 })).post.tags).toEqual([{ id: t.id, name: t.name, slug: t.slug }]);
    expect((await api.data(tagBySlug, { slug: t.slug })).tag.postCount).toBe(1);

    const deferred = (await api.data(`mutation { untagPost(postId: "${POST3}", tagIds: ["${t.id}"], sync: DEFERRED) { tags { id } } }`))
      .untagPost;
    expect(deferred.tags).toEqual([]);
    const jobs = await jobsNaming(t.id);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.start_after.getTime()).toBeGreaterThan(Date.now() + 100_000);
    expect((await api.data(tagBySlug, { slug: t.slug })).tag.postCount).toBe(1);
  });

  test('at most 20 tags a post; unknown tags and posts are NOT_FOUND; nothing is written', async () => {
    const tags = await Promise.all(Array.from({ length: 21 }, () => newTag()));
    const before = await tagRows();
    const tooMany = await api.gql(`mutation($ids: [ID!]!) { tagPost(postId: "${POST2}", tagIds: $ids, sync: INLINE) { id } }`, {
      ids: tags.map((t) => t.id),
    });
    expect(tooMany.json.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tagIds' });
    // Twenty in all, with the one POST2 has: the constraint of the link table refuses the last.
    const twenty = await api.gql(`mutation($ids: [ID!]!) { tagPost(postId: "${POST2}", tagIds: $ids, sync: INLINE) { id } }`, {
      ids: tags.slice(0, 20).map((t) => t.id),
    });
    expect(twenty.json.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tagIds' });
    expect(twenty.json.errors?.[0]?.message).toMatch(/at most 20 tags/);
    const unknownTag = await api.gql(
      `mutation { tagPost(postId: "${POST2}", tagIds: ["${tags[0]!.id}", "00000000-0000-0000-0000-00000000dead"]) { id } }`,
    );
    expect(unknownTag.json.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'tagIds' });
    const unknownPost = await api.gql(
      `mutation { untagPost(postId: "00000000-0000-0000-0000-00000000dead", tagIds: ["${tags[0]!.id}"]) { id } }`,
    );
    expect(unknownPost.json.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'postId' });
    const empty = await api.gql(`mutation { tagPost(postId: "${POST2}", tagIds: []) { id } }`);
    expect(empty.json.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tagIds' });
    expect(await tagRows()).toEqual(before);
    // Nineteen more fit beside the one it has.
    await api.data(`mutation($ids: [ID!]!) { tagPost(postId: "${POST2}", tagIds: $ids, sync: INLINE) { id } }`, {
      ids: tags.slice(0, 19).map((t) => t.id),
    });
    expect((await api.data(postTags, { id: POST2 })).post.tags).toHaveLength(20);
  });
});

describe('renameTag', () => {
  test('INLINE: every post embedding the tag shows the new name at once', async () => {
    const t = await newTag('Old name');
    for (const post of [POST1, POST3]) await api.data(`mutation { tagPost(postId: "${post}", tagIds: ["${t.id}"], sync: INLINE) { id } }`);
    const renamed = (await api.data(`mutation { renameTag(id: "${t.id}", name: "New name", sync: INLINE) { ${TAG} } }`)).renameTag;
    expect(renamed).toMatchObject({ id: t.id, name: 'New name', slug: t.slug, postCount: 2 });
    for (const post of [POST1, POST3]) {
      expect((await api.data(postTags, { id: post })).post.tags).toContainEqual({ id: t.id, name: 'New name', slug: t.slug });
    }
  });

  test('QUEUED: the posts show the new name after the sync; DEFERRED waits', async () => {
    const t = await newTag('Before');
    await api.data(`mutation { tagPost(postId: "${POST1}", tagIds: ["${t.id}"], sync: INLINE) { id } }`);
    expect((await api.data(`mutation { renameTag(id: "${t.id}", name: "After", sync: QUEUED) { name } }`)).renameTag).toEqual({
      name: 'After',
    });
    expect((await api.data(postTags, { id: POST1 })).post.tags).toContainEqual({ id: t.id, name: 'Before', slug: t.slug });
    await api.drainQueue();
    expect((await api.data(postTags, { id: POST1 })).post.tags).toContainEqual({ id: t.id, name: 'After', slug: t.slug });
    await api.data(`mutation { renameTag(id: "${t.id}", name: "Much later", sync: DEFERRED) { name } }`);
    expect((await jobsNaming(t.id))[0]!.start_after.getTime()).toBeGreaterThan(Date.now() + 100_000);
    expect((await api.data(tagBySlug, { slug: t.slug })).tag.name).toBe('After');
  });

  test('an unknown tag is NOT_FOUND; with AUTH_MODE=jwt only an admin may rename, any user may create', async () => {
    const missing = await api.gql(`mutation { renameTag(id: "00000000-0000-0000-0000-00000000dead", name: "x") { id } }`);
    expect(missing.json.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'id' });
    const secret = 'a-test-secret-of-at-least-32-characters!';
    const auth: AuthConfig = {
      mode: 'jwt',
      key: { kind: 'secret', secret },
      issuer: 'https://issuer.test',
      audience: 'blog-api',
      roleClaim: 'role',
      maxAgeSeconds: 3600,
    };
    const jwtApi = await file.api({ auth });
    const token = (sub: string, role?: string) =>
      new SignJWT(role ? { role } : {})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setIssuer(auth.issuer!)
        .setAudience(auth.audience!)
        .setIssuedAt()
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(secret));
    const as = async (sub: string, role?: string) => ({ authorization: `Bearer ${await token(sub, role)}` });
    const t = await newTag('Guarded');
    const byUser = await jwtApi.post(
      { query: `mutation { renameTag(id: "${t.id}", name: "Taken over", sync: INLINE) { name } }` },
      await as(BOB),
    );
    expect(byUser.json.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN' });
    expect((await api.data(tagBySlug, { slug: t.slug })).tag.name).toBe('Guarded');
    const byAdmin = await jwtApi.post(
      { query: `mutation { renameTag(id: "${t.id}", name: "Renamed", sync: INLINE) { name } }` },
      await as(ALICE, 'admin'),
    );
    expect(byAdmin.json.data).toEqual({ renameTag: { name: 'Renamed' } });
    const created = await jwtApi.post({ query: `mutation { createTag(name: "By Bob", sync: INLINE) { slug } }` }, await as(BOB));
    expect(created.json.data).toEqual({ createTag: { slug: 'by-bob' } });
    // Tagging is the post's author's: bob may not tag alice's post.
    const { rows } = await file.pool.query<{ id: string }>('SELECT id FROM tb_post WHERE author_id = $1 LIMIT 1', [ALICE]);
    const foreign = await jwtApi.post(
      { query: `mutation { tagPost(postId: "${rows[0]!.id}", tagIds: ["${t.id}"]) { id } }` },
      await as(BOB),
    );
    expect(foreign.json.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', field: 'postId' });
  });
});

describe('deleting a tagged post, and verify', () => {
  test('deletePost removes its links: each tag counts one post less, and verify finds no drift', async () => {
    const [t1, t2] = [await newTag(), await newTag()];
    const post = (await api.data(`mutation { createPost(title: "Tagged", content: "c", authorId: "${ALICE}", sync: INLINE) { id } }`))
      .createPost.id;
    await api.data(`mutation { tagPost(postId: "${post}", tagIds: ["${t1!.id}", "${t2!.id}"], sync: INLINE) { id } }`);
    await api.data(`mutation { tagPost(postId: "${POST3}", tagIds: ["${t1!.id}"], sync: INLINE) { id } }`);
    expect((await api.data(tagBySlug, { slug: t1!.slug })).tag.postCount).toBe(2);
    await api.data(`mutation { deletePost(id: "${post}", sync: INLINE) { id } }`);
    expect((await api.data(tagBySlug, { slug: t1!.slug })).tag.postCount).toBe(1);
    expect((await api.data(tagBySlug, { slug: t2!.slug })).tag.postCount).toBe(0);
    expect((await api.data(`query($tag: String) { posts(tag: $tag) { id } }`, { tag: t2!.slug })).posts).toEqual([]);
    // No drift for these rows (the DEFERRED syncs of the tests above are still waiting: theirs is expected).
    const { problems } = await new SyncEngine(file.pool).verify();
    const named = JSON.stringify(problems);
    for (const id of [post, t1!.id, t2!.id, POST3]) expect(named).not.toContain(id);
  });

  test('verify finds drift in tv_tag (a name changed behind the sync, a row missing, an orphan) and --repair fixes it', async () => {
    const sync = new SyncEngine(file.pool);
    // What the DEFERRED syncs of the tests above have not refreshed yet is drift too: repaired first.
    await sync.repair(await sync.verify());
    expect((await sync.verify()).total).toBe(0);
    const [stale, gone] = [await newTag(), await newTag()];
    await file.pool.query("UPDATE tb_tag SET name = 'Changed behind the sync' WHERE id = $1", [stale.id]);
    await file.pool.query('DELETE FROM tv_tag WHERE id = $1', [gone.id]);
    const orphan = '00000000-0000-0000-0000-0000000000ff';
    await file.pool.query(`INSERT INTO tv_tag (id, data, slug, created_at) VALUES ($1, '{}', 'orphan', now())`, [orphan]);
    const report = await sync.verify();
    expect(report.problems.tag).toEqual({ missing: [gone.id], stale: [stale.id], orphaned: [orphan] });
    await sync.repair(report);
    expect((await sync.verify()).total).toBe(0);
    expect((await api.data(tagBySlug, { slug: stale.slug })).tag.name).toBe('Changed behind the sync');
  });
});
