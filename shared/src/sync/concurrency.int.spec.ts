import { randomInt, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { insertComments, insertPosts, insertUsers, projection } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { pause, pick, raceOperations, type RaceWrite } from '../../test/race';
import { withTransaction } from '../db/pool';
import { isRetryablePgError } from '../db/errors';
import { planSync } from './dependencies';
import { SyncEngine } from './engine';
import { FEW_IDS } from './scope';
import { STATEMENTS } from './statements';
import { ENTITY_TYPES, mergePlans, type SyncPlan } from './types';

const WRITERS = 8;
const OPS_PER_WRITER = 60;
const SYNCERS = 4;

/**
 * Many writers and several syncers race on a small set of rows (so that they collide constantly),
 * with pauses inside transactions to widen every window. Half the writes sync INLINE in their own
 * transaction, half hand their plan to a queue drained by concurrent syncers; a full rebuild runs
 * in the middle. Afterwards every projection must equal a fresh computation: zero drift.
 */
describe('concurrent writers and syncers', () => {
  let pool: pg.Pool;
  let sync: SyncEngine;
  let users: string[];
  let posts: string[];

  beforeAll(async () => {
    pool = testPool(WRITERS + SYNCERS + 4);
    sync = new SyncEngine(pool);
    users = (await insertUsers(pool, 5)).map((u) => u.id);
    posts = await insertPosts(pool, users, 8);
    await insertComments(pool, posts, users, 24);
    await sync.all();
  });
  afterAll(() => pool.end());

  it('ends with zero drift', async () => {
    const queue: SyncPlan[] = [];
    let writersDone = false;
    const stats = { ops: 0, inline: 0, queued: 0, retried: 0, syncBatches: 0 };

    /** One command: write tb_*, plan in the same transaction, sync inline or hand the plan over. */
    // A delete also names what its row referenced (`related`), read from the row it removed, as the
    // API's deletes do: the dependency map cannot find it once the row is gone from tb_* while its
    // projection is still being written (services/api/test/delete-race.e2e.spec.ts).
    async function command(write: (c: pg.PoolClient) => Promise<RaceWrite | undefined>): Promise<void> {
      const inline = Math.random() < 0.5;
      for (;;) {
        try {
          const plan = await withTransaction(pool, async (client) => {
            const changes = await write(client);
            if (!changes) return undefined;
            await pause(3);
            // Kept counts are left out: this test's rows have no counts rows (reads count them).
            const { related, counts: _counts, ...changed } = changes;
            const p = mergePlans([await planSync(client, changed), related ?? {}]);
            if (inline) await sync.refreshIn(client, p);
            await pause(3);
            return p;
          });
          if (plan && !inline) queue.push(plan);
          stats.ops += 1;
          stats[inline ? 'inline' : 'queued'] += 1;
          return;
        } catch (err) {
          // A writer may lose a race on the command side (e.g. a lock timeout); never a deadlock
          // between syncs, which take locks in one global order.
          if ((err as { code?: string }).code === '40P01') throw err;
          if (!isRetryablePgError(err)) throw err;
          stats.retried += 1;
        }
      }
    }

    const operations = raceOperations(users, posts, command);

    const writer = async () => {
      for (let i = 0; i < OPS_PER_WRITER; i++) {
        await pick(operations)();
        await pause(2);
      }
    };
    const syncer = async () => {
      while (!writersDone || queue.length) {
        const batch = queue.splice(0, randomInt(1, 8));
        if (!batch.length) {
          await pause(2);
          continue;
        }
        await sync.refresh(mergePlans(batch));
        stats.syncBatches += 1;
      }
    };
    const rebuilder = async () => {
      await pause(200);
      await sync.all();
    };

    const syncers = Array.from({ length: SYNCERS }, syncer);
    await Promise.all([...Array.from({ length: WRITERS }, writer), rebuilder()]);
    writersDone = true;
    await Promise.all(syncers);

    expect(stats.ops).toBe(WRITERS * OPS_PER_WRITER);
    expect(stats.inline).toBeGreaterThan(0);
    expect(stats.queued).toBeGreaterThan(0);
    expect(stats.syncBatches).toBeGreaterThan(0);
    const report = await sync.verify();
    expect(report.problems).toEqual(Object.fromEntries(ENTITY_TYPES.map((t) => [t, { missing: [], stale: [], orphaned: [] }])));
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM sync_log WHERE NOT success');
    expect(rows[0].n).toBe(0);
  });
});

/**
 * The claim's narrow race, made to happen: sync A has inserted the placeholder of a new post and
 * not committed; sync B's claim meets it. B must wait for A and then hold the row's lock when its
 * claim returns, although its snapshot predates A's commit: otherwise B's write could overwrite a
 * newer document.
 */
describe('a placeholder committed during the claim', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = testPool(4);
  });
  afterAll(() => pool.end());

  it('is locked by the claim that waited for it', async () => {
    const [u] = await insertUsers(pool, 1);
    const [post] = await insertPosts(pool, [u!.id], 1);
    const a = await pool.connect();
    const b = await pool.connect();
    try {
      await a.query('BEGIN');
      await a.query(STATEMENTS.post.claim, [[post]]);
      const bPid = (await b.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      await b.query('BEGIN');
      const claimedByB = b.query(STATEMENTS.post.claim, [[post]]);
      // Wait until B's claim waits for A's uncommitted placeholder...
      for (let i = 0; ; i += 1) {
        const { rows } = await pool.query('SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', [bPid]);
        if (rows[0]?.wait_event_type === 'Lock') break;
        if (i > 200) throw new Error('sync B never waited for A');
        await new Promise((r) => setTimeout(r, 10));
      }
      // ...then commit A: B's claim finds A's row and locks it.
      await a.query('COMMIT');
      await claimedByB;
      const third = await pool.query('SELECT 1 FROM tv_post WHERE id = $1 FOR UPDATE NOWAIT', [post]).then(
        () => 'not locked',
        (err: { code?: string }) => err.code,
      );
      expect(third).toBe('55P03'); // lock_not_available: B holds it
      await b.query('ROLLBACK');
      // Released with B's transaction; A's placeholder stays (committed), unchanged by B's claim.
      expect((await pool.query('SELECT 1 FROM tv_post WHERE id = $1 FOR UPDATE NOWAIT', [post])).rowCount).toBe(1);
      expect(await projection(pool, 'tv_post', post!)).toEqual({});
    } finally {
      a.release();
      b.release();
    }
  });
});

/**
 * The delete's race, made to happen: sync A has written the document of a comment and not
 * committed; the comment is then deleted and the delete's own sync runs. Its snapshot shows no
 * projection row (A's is not committed), so had it claimed only the rows it could see, it would
 * have removed nothing, and A would then commit a document of a comment that no longer exists: an
 * orphan, for good. The claim inserts a placeholder for every id whose source is gone, and that
 * insert waits for A's uncommitted row; once A commits, the delete's sync locks and removes it.
 */
describe('a source deleted while a sync of it is uncommitted', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = testPool(4);
  });
  afterAll(() => pool.end());

  it.each(['few', 'ids'] as const)("leaves no orphan: the delete's sync waits for the other one (%s statements)", async (scope) => {
    const [u] = await insertUsers(pool, 1);
    const [post] = await insertPosts(pool, [u!.id], 1);
    const [comment] = await insertComments(pool, [post!], [u!.id], 1);
    const sync = new SyncEngine(pool);
    // Enough ids for the 'ids' statements (the others do not exist: nothing is written for them).
    const ids = scope === 'few' ? [comment!] : [comment!, ...Array.from({ length: FEW_IDS }, () => randomUUID())];
    const a = await pool.connect();
    const b = await pool.connect();
    try {
      await a.query('BEGIN');
      await sync.refreshIn(a, { comment: ids });
      const bPid = (await b.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      let done = false;
      const deleted = withTransactionOn(b, async () => {
        await b.query('DELETE FROM tb_comment WHERE id = $1', [comment]);
        await sync.refreshIn(b, { comment: [comment!] });
      }).finally(() => {
        done = true;
      });
      let waited = false;
      for (let i = 0; i < 100 && !done; i += 1) {
        const { rows } = await pool.query('SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1', [bPid]);
        if (rows[0]?.wait_event_type === 'Lock') {
          waited = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      await a.query('COMMIT');
      await deleted;
      const report = await sync.verify();
      expect({ waited, comment: report.problems.comment }).toEqual({ waited: true, comment: { missing: [], stale: [], orphaned: [] } });
      expect(await pool.query('SELECT 1 FROM tv_comment WHERE id = $1', [comment])).toMatchObject({ rowCount: 0 });
    } finally {
      a.release();
      b.release();
    }
  });
});

async function withTransactionOn(client: pg.PoolClient, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

/**
 * Why commands lock the rows they reference FOR SHARE, made to happen: A creates a comment on a
 * post and refreshes it (its document embeds the post's title), not committed yet; B renames the
 * post and asks the dependency map what to refresh. Without A's lock, B's rename goes through at
 * once and its plan cannot see A's uncommitted comment: once A commits, the comment embeds the old
 * title for good. With it, B's UPDATE waits for A's COMMIT, and B's plan finds the comment.
 */
describe('a relation created while the row it references changes', () => {
  let pool: pg.Pool;
  let sync: SyncEngine;
  beforeAll(() => {
    pool = testPool(4);
    sync = new SyncEngine(pool);
  });
  afterAll(() => pool.end());

  const race = async (forShare: boolean) => {
    const [u] = await insertUsers(pool, 1);
    const [post] = await insertPosts(pool, [u!.id], 1);
    await sync.syncChanges({ post: [post!] });
    const a = await pool.connect();
    try {
      await a.query('BEGIN');
      if (forShare) await a.query('SELECT 1 FROM tb_post WHERE id = $1 FOR SHARE', [post]);
      const [comment] = await insertComments(a, [post!], [u!.id], 1);
      await sync.refreshIn(a, await planSync(a, { comment: [comment!] }));
      const renamed = withTransaction(pool, async (c) => {
        await c.query("UPDATE tb_post SET title = 'Renamed', updated_at = now() WHERE id = $1", [post]);
        await sync.refreshIn(c, await planSync(c, { post: [post!] }));
      });
      if (forShare) {
        // B waits for A's FOR SHARE...
        for (let i = 0; ; i += 1) {
          const { rows } = await pool.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
          );
          if (rows[0].n > 0) break;
          if (i > 200) throw new Error('the rename never waited for the comment');
          await new Promise((r) => setTimeout(r, 10));
        }
        // ...then A commits, and B finishes.
        await a.query('COMMIT');
        await renamed;
      } else {
        // Nothing holds B back (A's refresh claimed only the comment's row): B commits first.
        await renamed;
        await a.query('COMMIT');
      }
      return (await projection<{ post: { title: string } }>(pool, 'tv_comment', comment!))!.post.title;
    } finally {
      a.release();
    }
  };

  it('with the lock, the rename refreshes the new comment; without it, the comment keeps the old title', async () => {
    expect(await race(true)).toBe('Renamed');
    expect(await race(false)).not.toBe('Renamed');
  });
});
