import { ENTITY_TYPES, planSync } from '@blog/shared';
import { BOB, POST1, POST2, seededApi } from './support';

/**
 * A delete of a row whose own projection has not been written yet.
 *
 * The dependency map finds what embeds a changed row from tb_* (the deleted row is gone from there)
 * and from tv_* (where it is not yet either, when the worker is still projecting its creation). A
 * document that held the row (a post holding its comments, as posts once did) would keep it; the
 * deletes therefore also name what their rows referenced (referencedBy), and the claim protocol
 * makes the delete's sync wait for the creation's uncommitted projection row and remove it.
 *
 * The race, step by step: the worker's sync of a new comment has written its projection,
 * uncommitted; the comment is deleted (QUEUED) meanwhile and commits; the worker commits; the
 * delete's own job runs. Nothing may be stale or orphaned at the end.
 */
const seeded = seededApi();

async function racedDelete(mutation: (id: string) => string, comment: { post: string; author: string }): Promise<Record<string, unknown>> {
  const { pool, api } = seeded;
  await api.app.sync.all(); // every projection current: what follows is this test's alone
  // A comment created as a QUEUED command creates it (kept counts included), its job taken by the
  // worker: the row is in tb_comment and in no projection yet.
  const { rows } = await pool.query<{ id: string }>(
    "INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, 'about to go') RETURNING id",
    [comment.post, comment.author],
  );
  const id = rows[0]!.id;
  await pool.query('UPDATE tb_user_stats SET comment_count = comment_count + 1 WHERE user_id = $1', [comment.author]);
  await pool.query('UPDATE tb_post_stats SET comment_count = comment_count + 1 WHERE post_id = $1', [comment.post]);

  // The worker's sync of the creation: the comment's projection, written, not committed.
  const worker = await pool.connect();
  try {
    await worker.query('BEGIN');
    await api.app.sync.refreshIn(worker, await planSync(worker, { comment: [id] }));

    // The delete plans and commits meanwhile (tv_comment has no committed row for the comment).
    const res = await api.gql(mutation(id));
    expect(res.json.errors).toBeUndefined();

    await worker.query('COMMIT');
  } catch (err) {
    await worker.query('ROLLBACK');
    throw err;
  } finally {
    worker.release();
  }
  // Then the delete's own job runs, as the worker would.
  expect(await api.drainQueue()).toBe(1);
  return (await api.app.sync.verify()).problems as unknown as Record<string, unknown>;
}

const NO_DRIFT = Object.fromEntries(ENTITY_TYPES.map((t) => [t, { missing: [], stale: [], orphaned: [] }]));

test('deleteComment while the worker projects the comment: no orphan, no stale count', async () => {
  const problems = await racedDelete((id) => `mutation { deleteComment(id: "${id}", sync: QUEUED) { id } }`, { post: POST1, author: BOB });
  expect(problems).toEqual(NO_DRIFT);
});

test('deletePost while the worker projects one of its comments: no orphan, no stale count', async () => {
  const problems = await racedDelete(() => `mutation { deletePost(id: "${POST2}", sync: QUEUED) { id } }`, { post: POST2, author: BOB });
  expect(problems).toEqual(NO_DRIFT);
});
