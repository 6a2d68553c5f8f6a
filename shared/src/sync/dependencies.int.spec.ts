import type pg from 'pg';
import { insertComments, insertPosts, insertUsers, projection } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { planForInserted, planSync } from './dependencies';
import { withTransaction } from '../db/pool';
import { SyncEngine } from './engine';
import { emptyPlan, type SyncPlan } from './types';

const sorted = (plan: Pick<SyncPlan, 'user' | 'post' | 'comment'>) => ({
  user: [...plan.user].sort(),
  post: [...plan.post].sort(),
  comment: [...plan.comment].sort(),
});

describe('dependency map', () => {
  let pool: pg.Pool;
  let sync: SyncEngine;
  // bob writes postB; alice writes postA; bob comments on postA (cBob); carol comments on postB (cCarol)
  let alice: string, bob: string, carol: string, postA: string, postB: string, cBob: string, cCarol: string;

  beforeAll(async () => {
    pool = testPool();
    sync = new SyncEngine(pool);
    [alice, bob, carol] = (await insertUsers(pool, 3)).map((u) => u.id) as [string, string, string];
    [postA] = (await insertPosts(pool, [alice], 1)) as [string];
    [postB] = (await insertPosts(pool, [bob], 1)) as [string];
    [cBob] = (await insertComments(pool, [postA], [carol, bob], 1)) as [string]; // author = authors[1]
    [cCarol] = (await insertComments(pool, [postB], [bob, carol], 1)) as [string];
    await sync.syncChanges({ user: [alice, bob, carol] });
  });
  afterAll(() => pool.end());

  // Lists and kept counts are merged in at read time: no document holds a post's comments or anyone's counts.
  it('a user change reaches the user and what embeds them: the posts they wrote and their comments', async () => {
    expect(sorted(await planSync(pool, { user: [bob] }))).toEqual(sorted({ user: [bob], post: [postB], comment: [cBob] }));
  });

  it('a post change reaches the post and its comments (which embed its title), not its author', async () => {
    expect(sorted(await planSync(pool, { post: [postB] }))).toEqual(sorted({ user: [], post: [postB], comment: [cCarol] }));
  });

  it('a comment change reaches the comment alone: neither its post nor its author embeds it', async () => {
    expect(sorted(await planSync(pool, { comment: [cCarol] }))).toEqual(sorted({ user: [], post: [], comment: [cCarol] }));
  });

  it('an entity just inserted is planned without a query exactly as planSync plans it, in the inserting transaction', async () => {
    await withTransaction(pool, async (client) => {
      const [user] = await insertUsers(client, 1);
      expect(sorted(await planSync(client, { user: [user!.id] }))).toEqual(
        sorted(planForInserted({ type: 'user', id: user!.id, columns: {} })),
      );
      // A post by bob, who already wrote posts and comments: only the new post and bob are planned.
      const [post] = await insertPosts(client, [bob], 1);
      expect(sorted(await planSync(client, { post: [post!] }))).toEqual(
        sorted(planForInserted({ type: 'post', id: post!, columns: { author_id: bob } })),
      );
      const [comment] = await insertComments(client, [postA], [carol, bob], 1);
      expect(sorted(await planSync(client, { comment: [comment!] }))).toEqual(
        sorted(planForInserted({ type: 'comment', id: comment!, columns: { post_id: postA, author_id: bob } })),
      );
      throw new Error('roll back');
    }).catch((err: Error) => {
      if (err.message !== 'roll back') throw err;
    });
  });

  it('an empty change set plans nothing (and runs no query)', async () => {
    expect(await planSync(pool, {})).toEqual(emptyPlan());
  });

  it("changing bob's full name updates every post and comment that embeds him", async () => {
    await pool.query("UPDATE tb_user SET full_name = 'Robert Smith', updated_at = now() WHERE id = $1", [bob]);
    await sync.syncChanges({ user: [bob] });
    expect(await projection(pool, 'tv_user', bob)).toMatchObject({ fullName: 'Robert Smith' });
    // author of postB
    expect(await projection(pool, 'tv_post', postB)).toMatchObject({ author: { fullName: 'Robert Smith' } });
    // his comment (on alice's post, whose document does not hold it)
    expect(await projection(pool, 'tv_comment', cBob)).toMatchObject({ author: { fullName: 'Robert Smith' } });
    expect((await sync.verify()).total).toBe(0);
  });

  it('a renamed post title reaches the comments that embed it', async () => {
    await pool.query("UPDATE tb_post SET title = 'Renamed', updated_at = now() WHERE id = $1", [postB]);
    await sync.syncChanges({ post: [postB] });
    expect(await projection(pool, 'tv_comment', cCarol)).toMatchObject({ post: { id: postB, title: 'Renamed' } });
  });

  it('a deleted comment, gone from tb_comment, is removed from tv_comment; no other document changes', async () => {
    const [c] = (await insertComments(pool, [postA], [carol, carol], 1)) as [string];
    await sync.syncChanges({ comment: [c] });
    const before = await projection(pool, 'tv_post', postA);
    await pool.query('DELETE FROM tb_comment WHERE id = $1', [c]);
    expect(sorted(await planSync(pool, { comment: [c] }))).toEqual(sorted({ user: [], post: [], comment: [c] }));
    await sync.syncChanges({ comment: [c] });
    expect(await projection(pool, 'tv_comment', c)).toBeUndefined();
    expect(await projection(pool, 'tv_post', postA)).toEqual(before);
    expect((await sync.verify()).total).toBe(0);
  });

  it('a deleted post (and its comments) is removed with its comments', async () => {
    const [p] = (await insertPosts(pool, [alice], 1)) as [string];
    const [c] = (await insertComments(pool, [p], [carol, carol], 1)) as [string];
    await sync.syncChanges({ post: [p], comment: [c] });
    await pool.query('DELETE FROM tb_comment WHERE post_id = $1', [p]);
    await pool.query('DELETE FROM tb_post WHERE id = $1', [p]);
    expect(sorted(await planSync(pool, { post: [p], comment: [c] }))).toEqual(sorted({ user: [], post: [p], comment: [c] }));
    await sync.syncChanges({ post: [p], comment: [c] });
    expect(await projection(pool, 'tv_post', p)).toBeUndefined();
    expect(await projection(pool, 'tv_comment', c)).toBeUndefined();
    expect((await sync.verify()).total).toBe(0);
  });
});
