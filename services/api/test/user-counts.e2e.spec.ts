import { recountKeptCounts, withTransaction } from '@blog/shared';
import { BOB, CHARLIE, seededApi, startApi } from './support';

/**
 * Users' counts are kept in tb_user_stats by the commands (migration 003), so that refreshing a
 * user reads one row instead of counting what they wrote. These tests hold the kept counts against
 * the rows after every kind of command, concurrent ones included, and check that verify, repair and
 * the full rebuild find and mend counts that differ from the rows (written behind the API's back).
 */
const seeded = seededApi();

interface Counts {
  postCount: number;
  publishedPostCount: number;
  commentCount: number;
}

/** What tb_user_stats keeps for a user, or undefined without a row. */
async function kept(userId: string): Promise<Counts | undefined> {
  const { rows } = await seeded.pool.query<Counts>(
    `SELECT post_count AS "postCount", published_post_count AS "publishedPostCount", comment_count AS "commentCount"
       FROM tb_user_stats WHERE user_id = $1`,
    [userId],
  );
  return rows[0];
}

/** The user's counts from the rows themselves. */
async function counted(userId: string): Promise<Counts> {
  const { rows } = await seeded.pool.query<Counts>(
    `SELECT (SELECT count(*) FROM tb_post WHERE author_id = $1)::int AS "postCount",
            (SELECT count(*) FROM tb_post WHERE author_id = $1 AND published)::int AS "publishedPostCount",
            (SELECT count(*) FROM tb_comment WHERE author_id = $1)::int AS "commentCount"`,
    [userId],
  );
  return rows[0]!;
}

/** The counts the API answers (from tv_user). */
async function answered(userId: string): Promise<Counts> {
  return (await seeded.api.data(`query($id: ID!) { user(id: $id) { postCount publishedPostCount commentCount } }`, { id: userId })).user;
}

async function newUser(name: string): Promise<string> {
  const made = await seeded.api.data(
    `mutation { createUser(email: "${name}@example.com", username: "${name}", fullName: "${name}", sync: INLINE) { id } }`,
  );
  return made.createUser.id as string;
}

async function createPost(authorId: string, published: boolean, sync: 'INLINE' | 'QUEUED' = 'INLINE'): Promise<string> {
  const made = await seeded.api.data(
    `mutation { createPost(title: "Counted", content: "Body", authorId: "${authorId}", published: ${published}, sync: ${sync}) { id } }`,
  );
  return made.createPost.id as string;
}

async function createComment(postId: string, authorId: string): Promise<string> {
  const made = await seeded.api.data(
    `mutation { createComment(postId: "${postId}", authorId: "${authorId}", content: "Counted", sync: INLINE) { id } }`,
  );
  return made.createComment.id as string;
}

test('a new user starts with a row of zeros', async () => {
  const id = await newUser('zero');
  expect(await kept(id)).toEqual({ postCount: 0, publishedPostCount: 0, commentCount: 0 });
  expect(await answered(id)).toEqual({ postCount: 0, publishedPostCount: 0, commentCount: 0 });
});

test('every command that changes a count keeps it equal to the rows, and the projection answers it', async () => {
  const ann = await newUser('ann');
  const ben = await newUser('ben');
  const draft = await createPost(ann, false);
  const live = await createPost(ann, true);
  const other = await createPost(ann, true, 'QUEUED');
  expect(await kept(ann)).toEqual({ postCount: 3, publishedPostCount: 2, commentCount: 0 });

  await seeded.api.data(`mutation { publishPost(id: "${draft}", sync: INLINE) { id } }`);
  await seeded.api.data(`mutation { publishPost(id: "${draft}", sync: INLINE) { id } }`); // already published: no change
  expect(await kept(ann)).toEqual({ postCount: 3, publishedPostCount: 3, commentCount: 0 });
  await seeded.api.data(`mutation { updatePost(id: "${live}", published: false, sync: INLINE) { id } }`);
  await seeded.api.data(`mutation { updatePost(id: "${live}", title: "Retitled", sync: INLINE) { id } }`); // not the flag: no change
  expect(await kept(ann)).toEqual({ postCount: 3, publishedPostCount: 2, commentCount: 0 });

  const annsComment = await createComment(live, ann);
  await createComment(other, ben);
  await createComment(other, ben);
  await createComment(live, BOB);
  expect(await kept(ann)).toEqual({ postCount: 3, publishedPostCount: 2, commentCount: 1 });
  expect(await kept(ben)).toEqual({ postCount: 0, publishedPostCount: 0, commentCount: 2 });

  await seeded.api.data(`mutation { deleteComment(id: "${annsComment}", sync: INLINE) { id } }`);
  // Deleting a post deletes its comments: their authors' counts go down too.
  await seeded.api.data(`mutation { deletePost(id: "${other}", sync: INLINE) { id } }`);
  expect(await kept(ann)).toEqual({ postCount: 2, publishedPostCount: 1, commentCount: 0 });
  expect(await kept(ben)).toEqual({ postCount: 0, publishedPostCount: 0, commentCount: 0 });

  for (const user of [ann, ben, BOB]) {
    expect(await kept(user)).toEqual(await counted(user));
    expect(await answered(user)).toEqual(await counted(user));
  }
  expect((await seeded.api.app.sync.verify()).total).toBe(0);
});

test('a rejected command changes no count', async () => {
  const before = await kept(CHARLIE);
  const res = await seeded.api.gql(`mutation { createPost(title: "", content: "x", authorId: "${CHARLIE}", sync: INLINE) { id } }`);
  expect(res.json.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  const missing = await seeded.api.gql(
    `mutation { createComment(postId: "00000000-0000-4000-8000-000000000999", authorId: "${CHARLIE}", content: "x") { id } }`,
  );
  expect(missing.json.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  expect(await kept(CHARLIE)).toEqual(before);
});

test('concurrent commands for one user add up: no change is lost', async () => {
  const cat = await newUser('cat');
  const first = await createPost(cat, false);
  await Promise.all([
    ...Array.from({ length: 8 }, (_, i) => createPost(cat, i % 2 === 0, i % 3 === 0 ? 'QUEUED' : 'INLINE')),
    // Two publishes of the same post at once: counted once.
    seeded.api.data(`mutation { publishPost(id: "${first}", sync: INLINE) { id } }`),
    seeded.api.data(`mutation { publishPost(id: "${first}", sync: QUEUED) { id } }`),
    ...Array.from({ length: 6 }, () => createComment(first, cat)),
  ]);
  expect(await kept(cat)).toEqual({ postCount: 9, publishedPostCount: 5, commentCount: 6 });
  expect(await kept(cat)).toEqual(await counted(cat));
  await seeded.api.drainQueue();
  expect(await answered(cat)).toEqual(await counted(cat));
});

test('counts changed behind the API are found by verify, and mended by repair and by the full rebuild', async () => {
  const dan = await newUser('dan');
  await createPost(dan, true);
  // A post inserted with SQL, not through the API: the kept count does not know it.
  await seeded.pool.query(`INSERT INTO tb_post (author_id, title, content, published) VALUES ($1, 'By hand', 'x', true)`, [dan]);
  await seeded.api.app.sync.users([dan]);
  expect(await answered(dan)).toMatchObject({ postCount: 1 });
  const report = await seeded.api.app.sync.verify();
  expect(report.problems.user.stale).toEqual([dan]);
  await seeded.api.app.sync.repair(report);
  expect(await kept(dan)).toEqual({ postCount: 2, publishedPostCount: 2, commentCount: 0 });
  expect(await answered(dan)).toEqual(await counted(dan));
  expect((await seeded.api.app.sync.verify()).total).toBe(0);

  await seeded.pool.query('UPDATE tb_user_stats SET post_count = 40, published_post_count = 30 WHERE user_id = $1', [dan]);
  await seeded.api.app.sync.all();
  expect(await kept(dan)).toEqual(await counted(dan));
  expect(await answered(dan)).toEqual(await counted(dan));
  // And the next command adds to the right count.
  await createPost(dan, false);
  expect(await answered(dan)).toEqual({ postCount: 3, publishedPostCount: 2, commentCount: 0 });
});

test('a user without a kept row is counted from the rows, as before', async () => {
  const eve = await newUser('eve');
  await seeded.pool.query('DELETE FROM tb_user_stats WHERE user_id = $1', [eve]);
  await createPost(eve, true);
  await createPost(eve, false);
  expect(await kept(eve)).toBeUndefined();
  expect(await answered(eve)).toEqual({ postCount: 2, publishedPostCount: 1, commentCount: 0 });
  // A recount does not create rows (a command running meanwhile could not have counted in it).
  await withTransaction(seeded.pool, async (client) => {
    expect(await recountKeptCounts(client, 'user', [eve])).toEqual([]);
  });
  expect(await kept(eve)).toBeUndefined();
});

test('a count change that fails is the error raised: the refresh behind it records no sync failure, nothing is written', async () => {
  const fay = await newUser('fay');
  const impatient = await startApi({ statementTimeoutMs: 300 });
  const holder = await seeded.pool.connect();
  try {
    const { rows } = await seeded.pool.query<{ id: number }>('SELECT coalesce(max(id), 0)::int AS id FROM sync_log');
    const before = { posts: await counted(fay), kept: await kept(fay) };
    // Fay's counts row is held elsewhere: the count change waits for it and times out.
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM tb_user_stats WHERE user_id = $1 FOR UPDATE', [fay]);
    const res = await impatient.gql(`mutation { createPost(title: "Held", content: "x", authorId: "${fay}", sync: INLINE) { id } }`);
    await holder.query('ROLLBACK');
    expect(res.json.errors).toHaveLength(1);
    expect(res.json.data).toBeNull();
    expect(await counted(fay)).toEqual(before.posts);
    expect(await kept(fay)).toEqual(before.kept);
    const failures = await seeded.pool.query('SELECT entity_type FROM sync_log WHERE id > $1 AND NOT success', [rows[0]!.id]);
    expect(failures.rows).toEqual([]);
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    holder.release();
    await impatient.close();
  }
});
