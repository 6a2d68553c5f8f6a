import { randomInt } from 'node:crypto';
import type pg from 'pg';
import { insertComments, insertPosts, insertUsers } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { isRetryablePgError } from '../db/errors';
import { planSync } from './dependencies';
import { SyncEngine } from './engine';
import { mergePlans, type ChangeSet, type SyncPlan } from './types';

const WRITERS = 8;
const OPS_PER_WRITER = 60;
const SYNCERS = 4;

const pause = (maxMs: number) => new Promise((r) => setTimeout(r, randomInt(0, maxMs + 1)));
const pick = <T>(xs: readonly T[]): T => xs[randomInt(0, xs.length)]!;

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
    async function command(write: (c: pg.PoolClient) => Promise<ChangeSet | undefined>): Promise<void> {
      const inline = Math.random() < 0.5;
      for (;;) {
        try {
          const plan = await withTransaction(pool, async (client) => {
            const changes = await write(client);
            if (!changes) return undefined;
            await pause(3);
            const p = await planSync(client, changes);
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

    const operations: (() => Promise<void>)[] = [
      () =>
        command(async (c) => {
          const u = pick(users);
          await c.query('UPDATE tb_user SET full_name = $2, updated_at = now() WHERE id = $1', [u, `Name ${randomInt(1e6)}`]);
          return { user: [u] };
        }),
      () =>
        command(async (c) => {
          const p = pick(posts);
          await c.query('UPDATE tb_post SET title = $2, updated_at = now() WHERE id = $1', [p, `Title ${randomInt(1e6)}`]);
          return { post: [p] };
        }),
      () =>
        command(async (c) => {
          const p = pick(posts);
          await c.query('UPDATE tb_post SET published = NOT published, updated_at = now() WHERE id = $1', [p]);
          return { post: [p] };
        }),
      () =>
        command(async (c) => {
          const p = pick(posts);
          const u = pick(users);
          // Commands lock what they reference FOR SHARE (see dependencies.ts).
          await c.query('SELECT 1 FROM tb_user WHERE id = $1 FOR SHARE', [u]);
          await c.query('SELECT 1 FROM tb_post WHERE id = $1 FOR SHARE', [p]);
          const { rows } = await c.query<{ id: string }>(
            "INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, 'race') RETURNING id",
            [p, u],
          );
          return { comment: [rows[0]!.id] };
        }),
      () =>
        command(async (c) => {
          const { rows } = await c.query<{ id: string }>(
            `DELETE FROM tb_comment WHERE id = (
               SELECT id FROM tb_comment WHERE post_id = $1 ORDER BY random() LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id`,
            [pick(posts)],
          );
          return rows.length ? { comment: [rows[0]!.id] } : undefined;
        }),
    ];

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
    expect(report.problems).toEqual({
      user: { missing: [], stale: [], orphaned: [] },
      post: { missing: [], stale: [], orphaned: [] },
      comment: { missing: [], stale: [], orphaned: [] },
    });
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM sync_log WHERE NOT success');
    expect(rows[0].n).toBe(0);
  });
});
