import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { insertComments, insertPosts, insertUsers, projection } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { pause, pick, raceOperations, type RaceWrite } from '../../test/race';
import { withTransaction } from '../db/pool';
import { isRetryablePgError } from '../db/errors';
import { planSync } from './dependencies';
import { SyncEngine } from './engine';
import { RebuildBusyError, type RebuildProgress, type RebuildStart } from './rebuild';
import { STATEMENTS } from './statements';
import { ENTITY_TYPES, mergePlans, SYNC_ORDER } from './types';
import { createKeptCounts } from './kept-counts';
import { VERIFY_PROBLEMS, type VerifyProblem, type VerifyReport } from './verify';

const MIN_UUID = '00000000-0000-0000-0000-000000000000';
const MAX_UUID = 'ffffffff-ffff-ffff-ffff-ffffffffffff';
const NO_DRIFT = Object.fromEntries(ENTITY_TYPES.map((t) => [t, { missing: [], stale: [], orphaned: [] }]));

let pool: pg.Pool;
let sync: SyncEngine;
beforeAll(() => {
  pool = testPool(16);
  sync = new SyncEngine(pool);
});
afterAll(() => pool.end());

/** Users with counts rows, posts (some with a tag), comments: every entity type has rows. */
async function blog(users: number, posts: number, comments: number) {
  const u = (await insertUsers(pool, users)).map((x) => x.id);
  const p = await insertPosts(pool, u, posts);
  const c = await insertComments(pool, p, u, comments);
  await createKeptCounts(pool, 'user', u);
  await createKeptCounts(pool, 'post', p);
  const slug = `tag-${randomUUID().slice(0, 8)}`;
  const { rows } = await pool.query<{ id: string }>("INSERT INTO tb_tag (name, slug) VALUES ('A tag', $1) RETURNING id", [slug]);
  const tag = rows[0]!.id;
  await pool.query('INSERT INTO tb_post_tag (post_id, tag_id, position) SELECT unnest($1::uuid[]), $2, 1', [p.slice(0, 2), tag]);
  return { users: u, posts: p, comments: c, tag };
}

/** What the whole-table verify statement of each type (one statement per table, as before chunks) finds. */
async function wholeTableVerify(): Promise<VerifyReport['problems']> {
  const out = {} as VerifyReport['problems'];
  for (const t of ENTITY_TYPES) {
    const { rows } = await pool.query<{ id: string; problem: VerifyProblem }>(STATEMENTS[t].verify);
    out[t] = { missing: [], stale: [], orphaned: [] };
    for (const r of rows) out[t][r.problem].push(r.id);
  }
  return sortedProblems(out);
}

function sortedProblems(p: VerifyReport['problems']): VerifyReport['problems'] {
  return Object.fromEntries(
    ENTITY_TYPES.map((t) => [t, Object.fromEntries(VERIFY_PROBLEMS.map((k) => [k, [...p[t][k]].sort()]))]),
  ) as VerifyReport['problems'];
}

async function progressRows(): Promise<{ entity_type: string; last_id: string | null; done: boolean; chunks: number; run_id: string }[]> {
  const { rows } = await pool.query('SELECT run_id, entity_type, last_id, done, chunks FROM sync_rebuild ORDER BY entity_type');
  return rows;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('online rebuild and chunked verify on a corrupted database', () => {
  it('chunked verify finds what the whole-table verify finds; the rebuild mends all of it', async () => {
    const b = await blog(4, 12, 40);
    await sync.rebuild({ chunk: 5 });
    expect((await sync.verify()).total).toBe(0);

    // A stale document, a write that skipped its sync, rows missing, orphans (at both ends of the
    // id order too), a deleted source, and kept counts that differ from the rows.
    await pool.query(`UPDATE tv_post SET data = jsonb_set(data, '{title}', '"wrong"') WHERE id = $1`, [b.posts[0]]);
    await pool.query("UPDATE tb_comment SET content = 'edited behind the sync' WHERE id = $1", [b.comments[0]]);
    await pool.query('DELETE FROM tv_comment WHERE id = $1', [b.comments[1]]);
    await pool.query('DELETE FROM tv_tag WHERE id = $1', [b.tag]);
    await pool.query('DELETE FROM tb_comment WHERE id = $1', [b.comments[2]]);
    const orphans = [MIN_UUID, MAX_UUID, randomUUID()];
    await pool.query(
      `INSERT INTO tv_comment (id, data, post_id, author_id, created_at)
       SELECT id, '{}', $2, $3, now() FROM unnest($1::uuid[]) id`,
      [orphans, b.posts[0], b.users[0]],
    );
    const orphanUser = randomUUID();
    await pool.query("INSERT INTO tv_user (id, data, created_at) VALUES ($1, '{}', now())", [orphanUser]);
    await pool.query('UPDATE tb_user_stats SET comment_count = comment_count + 3 WHERE user_id = $1', [b.users[1]]);

    const expected = await wholeTableVerify();
    expect(expected.post.stale).toEqual(expect.arrayContaining([b.posts[0]]));
    expect(expected.comment).toMatchObject({ missing: [b.comments[1]], orphaned: [...orphans, b.comments[2]].sort() });
    expect(expected.comment.stale).toEqual([b.comments[0]]);
    expect(expected.tag.missing).toEqual([b.tag]);
    expect(expected.user.orphaned).toEqual([orphanUser]);
    expect(expected.user.stale).toEqual(expect.arrayContaining([b.users[1]]));
    const total = ENTITY_TYPES.reduce((n, t) => n + VERIFY_PROBLEMS.reduce((m, k) => m + expected[t][k].length, 0), 0);

    for (const chunk of [1, 2, 7, 1000]) {
      const report = await sync.verify({ chunk });
      expect({ chunk, problems: sortedProblems(report.problems) }).toEqual({ chunk, problems: expected });
      expect(report.total).toBe(total);
    }
    // Ids kept are capped; the counts are not.
    const capped = await sync.verify({ chunk: 3, keepIds: 1 });
    expect(capped.total).toBe(total);
    expect(capped.counts.comment).toEqual({ missing: 1, stale: 1, orphaned: 4 });
    expect(capped.problems.comment.orphaned).toEqual([MIN_UUID]);
    for (const t of ENTITY_TYPES) for (const k of VERIFY_PROBLEMS) expect(capped.counts[t][k]).toBe(expected[t][k].length);

    const since = (await pool.query<{ id: number }>('SELECT coalesce(max(id), 0)::int AS id FROM sync_log')).rows[0]!.id;
    const result = await sync.rebuild({ chunk: 3 });
    expect(result).toMatchObject({ resumed: false, stopped: false, chunksBefore: 0 });
    expect(result.recounted).toBeGreaterThanOrEqual(1);
    const byType = Object.fromEntries(result.report.results.map((r) => [r.entityType, r]));
    expect(byType.comment!.deleted).toBe(4);
    expect(byType.user!.deleted).toBe(1);
    expect(result.report.results.map((r) => r.entityType)).toEqual(SYNC_ORDER);
    expect(await sync.verify({ chunk: 2 })).toMatchObject({ total: 0, problems: NO_DRIFT });
    expect((await sync.verify()).total).toBe(0);
    expect(await wholeTableVerify()).toEqual(NO_DRIFT);
    const { rows: stats } = await pool.query('SELECT comment_count FROM tb_user_stats WHERE user_id = $1', [b.users[1]]);
    expect(stats).toEqual([
      { comment_count: (await pool.query('SELECT count(*)::int AS n FROM tb_comment WHERE author_id = $1', [b.users[1]])).rows[0].n },
    ]);
    // Each chunk's write logged itself as part of a full rebuild.
    const { rows: log } = await pool.query<{ operation: string; success: boolean; n: number }>(
      'SELECT operation, success, count(*)::int AS n FROM sync_log WHERE id > $1 GROUP BY 1, 2',
      [since],
    );
    expect(log).toEqual([{ operation: 'full', success: true, n: expect.any(Number) }]);
    expect(await progressRows()).toEqual(SYNC_ORDER.map(() => expect.objectContaining({ run_id: result.runId, done: true })));
  });

  it('verify --repair, chunk by chunk, mends every drifted row and recounts the stale users', async () => {
    const b = await blog(3, 6, 20);
    await sync.rebuild();
    await pool.query("UPDATE tb_user SET full_name = 'Renamed Behind' WHERE id = $1", [b.users[0]]);
    await pool.query('DELETE FROM tv_post WHERE id = $1', [b.posts[1]]);
    await pool.query(
      'UPDATE tb_user_stats SET post_count = post_count + 1, published_post_count = published_post_count + 1 WHERE user_id = $1',
      [b.users[2]],
    );
    const before = await sync.verify();
    const { found, repaired } = await sync.verifyAndRepair({ chunk: 2 });
    expect(sortedProblems(found.problems)).toEqual(sortedProblems(before.problems));
    expect(found.total).toBeGreaterThanOrEqual(4);
    expect(repaired.results.map((r) => r.entityType)).toEqual(expect.arrayContaining(['post', 'user', 'comment']));
    expect(await sync.verify({ chunk: 2 })).toMatchObject({ total: 0, problems: NO_DRIFT });
    expect(await projection(pool, 'tv_post', b.posts[1]!)).toBeDefined();
    const { rows } = await pool.query('SELECT post_count FROM tb_user_stats WHERE user_id = $1', [b.users[2]]);
    expect(rows).toEqual([{ post_count: 2 }]);
  });
});

describe('a rebuild beside live writes', () => {
  it('waits only for the rows it holds: live writes of other rows go through while it waits, and one rebuild runs at a time', async () => {
    const b = await blog(4, 10, 60);
    await sync.rebuild();
    // Hold one comment's projection row (in the middle of the id order): the rebuild's chunk
    // holding it waits for us.
    const ids = (await pool.query<{ id: string; post_id: string }>('SELECT id, post_id FROM tv_comment ORDER BY id')).rows;
    const mid = Math.floor(ids.length / 2);
    const held = ids[mid]!;
    const busyPosts = new Set(ids.slice(mid - 2, mid + 3).map((r) => r.post_id));
    const blocker = await pool.connect();
    let rebuild: Promise<unknown> | undefined;
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM tv_comment WHERE id = $1 FOR UPDATE', [held.id]);
      const starts: RebuildStart[] = [];
      rebuild = sync.rebuild({ chunk: 2, restart: true, onStart: (s) => starts.push(s) });
      await waitFor(async () => {
        const { rows } = await pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' " +
            "AND query LIKE '%INSERT INTO tv_comment AS t%'",
        );
        return rows.length > 0;
      }, 'the rebuild waits for the held row');
      // Its committed chunks are visible: progress is saved as it goes.
      const saved = (await progressRows()).find((r) => r.entity_type === 'comment')!;
      expect(saved.chunks).toBeGreaterThan(0);
      expect(saved.run_id).toBe(starts[0]!.runId);

      // A live INLINE write of a post and its comments (none of them in the waiting chunk) commits
      // at once: no table is locked (the one-transaction rebuild would hold every command here).
      const post = b.posts.find((p) => !busyPosts.has(p))!;
      const started = performance.now();
      await withTransaction(pool, async (client) => {
        await client.query("UPDATE tb_post SET title = 'Written during the rebuild', updated_at = now() WHERE id = $1", [post]);
        await sync.refreshIn(client, await planSync(client, { post: [post] }));
      });
      expect(performance.now() - started).toBeLessThan(2000);
      expect(await projection(pool, 'tv_post', post)).toMatchObject({ title: 'Written during the rebuild' });

      // A second rebuild refuses to start while this one runs.
      await expect(sync.rebuild()).rejects.toBeInstanceOf(RebuildBusyError);
      await expect(sync.rebuild()).rejects.toThrow(/Another rebuild is running/);
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    await rebuild;
    expect(await sync.verify()).toMatchObject({ total: 0, problems: NO_DRIFT });
  });

  it("a chunk that meets a live sync's uncommitted row waits for it, then writes what it committed, never an older document", async () => {
    const b = await blog(2, 6, 6);
    await sync.rebuild();
    const post = b.posts[3]!;
    const live = await pool.connect();
    let rebuild: Promise<unknown> | undefined;
    try {
      // A live INLINE command: the title changed and its post refreshed, not committed yet.
      await live.query('BEGIN');
      await live.query("UPDATE tb_post SET title = 'Newer title', updated_at = now() WHERE id = $1", [post]);
      await sync.refreshIn(live, await planSync(live, { post: [post] }));
      rebuild = sync.rebuild({ chunk: 1000 });
      // (at the first of its rows: the post's comments, the post, its author.)
      await waitFor(async () => {
        const { rows } = await pool.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
        return rows.length > 0;
      }, "the rebuild waits for the live sync's rows");
      await live.query('COMMIT');
    } finally {
      await live.query('ROLLBACK').catch(() => undefined); // after a failure only (nothing to roll back after COMMIT)
      live.release();
    }
    await rebuild;
    // The rebuild's documents were computed after the live command committed (its claim waited):
    // the newer title stays.
    expect(await projection(pool, 'tv_post', post)).toMatchObject({ title: 'Newer title' });
    expect(await sync.verify()).toMatchObject({ total: 0, problems: NO_DRIFT });
  });

  it(
    'stopped after some chunks, the next rebuild continues from its last committed chunk; ' + 'a finished run, or --restart, starts afresh',
    async () => {
      await blog(3, 8, 30);
      await sync.rebuild();
      await pool.query(`UPDATE tv_comment SET data = data || '{"content": "stale"}'`);
      const stop = new AbortController();
      const first = await sync.rebuild({
        chunk: 4,
        signal: stop.signal,
        onProgress: (p: RebuildProgress) => {
          if (p.event === 'chunk' && p.chunks >= 3) stop.abort();
        },
      });
      expect(first).toMatchObject({ stopped: true, chunks: 3, resumed: false });
      const saved = await progressRows();
      expect(saved.reduce((n, r) => n + r.chunks, 0)).toBe(3);
      const comment = saved.find((r) => r.entity_type === 'comment')!;
      expect(comment).toMatchObject({ done: false, chunks: 3 });

      const starts: RebuildStart[] = [];
      const second = await sync.rebuild({ chunk: 4, onStart: (s) => starts.push(s) });
      expect(second).toMatchObject({ runId: first.runId, resumed: true, stopped: false, chunksBefore: 3 });
      expect(starts).toEqual([
        expect.objectContaining({ resumed: true, chunksBefore: 3, from: { entityType: 'comment', after: comment.last_id } }),
      ]);
      // Counts over the whole run: every comment walked once.
      const comments = (await pool.query('SELECT count(*)::int AS n FROM tb_comment')).rows[0].n;
      expect(second.report.results.find((r) => r.entityType === 'comment')!.count).toBe(comments);
      expect(await sync.verify()).toMatchObject({ total: 0, problems: NO_DRIFT });

      const third = await sync.rebuild({ chunk: 4 });
      expect(third).toMatchObject({ resumed: false, chunksBefore: 0 });
      expect(third.runId).not.toBe(first.runId);
      expect(third.chunks).toBe(first.chunks + second.chunks);

      const again = new AbortController();
      await sync.rebuild({ chunk: 4, signal: again.signal, onProgress: () => again.abort() });
      const restarted = await sync.rebuild({ chunk: 4, restart: true });
      expect(restarted).toMatchObject({ resumed: false, chunksBefore: 0, chunks: third.chunks });
      expect(new Set((await progressRows()).map((r) => r.run_id))).toEqual(new Set([restarted.runId]));
    },
  );

  it('racing live writers and their syncs (tiny chunks, rebuild after rebuild) ends with zero drift', async () => {
    const b = await blog(6, 24, 120);
    await sync.rebuild();
    const WRITERS = 6;
    const OPS = 50;
    let rebuilding = false;
    const stats = { ops: 0, duringRebuild: 0, inline: 0, after: 0, rebuilds: 0, chunks: 0, retried: 0 };

    /** A command: write tb_* and plan in one transaction; sync INLINE in it, or after it commits. */
    async function command(write: (c: pg.PoolClient) => Promise<RaceWrite | undefined>): Promise<void> {
      const inline = Math.random() < 0.5;
      for (;;) {
        try {
          const planned = await withTransaction(pool, async (client) => {
            const w = await write(client);
            if (!w) return undefined;
            const { related, counts = [], ...changed } = w;
            const plan = mergePlans([await planSync(client, changed), related ?? {}]);
            if (inline) await sync.refreshIn(client, plan, { counts });
            else if (counts.length) await sync.refreshIn(client, {}, { counts });
            // Held a while: a chunk meeting these rows must wait, then read what this commits.
            await pause(5);
            return plan;
          });
          if (planned && !inline) await sync.refresh(planned);
          stats.ops += 1;
          stats[inline ? 'inline' : 'after'] += 1;
          if (rebuilding) stats.duringRebuild += 1;
          return;
        } catch (err) {
          if ((err as { code?: string }).code === '40P01') throw err;
          if (!isRetryablePgError(err)) throw err;
          stats.retried += 1;
        }
      }
    }
    const operations = raceOperations(b.users, b.posts, command);
    let writersDone = false;
    const writer = async () => {
      for (let i = 0; i < OPS; i++) {
        await pick(operations)();
        await pause(3);
      }
    };
    const rebuilder = async () => {
      while (!writersDone) {
        rebuilding = true;
        const r = await sync.rebuild({ chunk: 2 });
        rebuilding = false;
        stats.rebuilds += 1;
        stats.chunks += r.chunks;
      }
    };
    const rebuilds = rebuilder();
    await Promise.all(Array.from({ length: WRITERS }, writer));
    writersDone = true;
    await rebuilds;

    expect(stats.ops).toBe(WRITERS * OPS);
    expect(stats.duringRebuild).toBeGreaterThan(WRITERS * OPS * 0.5);
    expect(stats.rebuilds).toBeGreaterThanOrEqual(1);
    expect(stats.inline).toBeGreaterThan(0);
    expect(stats.after).toBeGreaterThan(0);
    const report = await sync.verify({ chunk: 7 });
    expect(report.problems).toEqual(NO_DRIFT);
    expect(report.total).toBe(0);
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM sync_log WHERE NOT success');
    expect(rows[0].n).toBe(0);
  });
});
