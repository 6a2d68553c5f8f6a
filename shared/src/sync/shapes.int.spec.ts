import type pg from 'pg';
import { insertComments, insertPosts, insertUsers } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { pause, pick, raceOperations, type RaceWrite } from '../../test/race';
import { withTransaction } from '../db/pool';
import { isRetryablePgError } from '../db/errors';
import { column, declare, documentFields, MODEL, type Entity } from '../model';
import { post } from '../model/post';
import { planSync } from './dependencies';
import { SyncEngine } from './engine';
import { createKeptCounts } from './kept-counts';
import {
  announceShapes,
  buildShapes,
  dropOldShapes,
  followShapes,
  pendingShapes,
  prepareShapes,
  refreshWhereStale,
  shapeRows,
  type BuildProgress,
} from './shapes';
import { statementsFor } from './statements';
import { mergePlans } from './types';

/**
 * A real change of a document's shape: version 2 of the post drops `content` from the document and
 * adds `authorId`. Version 1 is the model's (the release still running); version 2 is the release
 * being deployed.
 */
const { content: _dropped, ...keptFields } = post.fields;
const post2 = declare({ ...post, version: 2, fields: { ...keptFields, authorId: column('author_id', 'ID!') } });
const post3 = declare({ ...post2, version: 3 });

const keysOf = (e: Entity) =>
  documentFields(e)
    .map(([name]) => name)
    .sort();

let pool: pg.Pool;
let sync: SyncEngine;
beforeAll(() => {
  pool = testPool(16);
  sync = new SyncEngine(pool);
});
afterAll(() => pool.end());

async function blog(users: number, posts: number, comments: number) {
  const u = (await insertUsers(pool, users)).map((x) => x.id);
  const p = await insertPosts(pool, u, posts);
  await insertComments(pool, p, u, comments);
  await createKeptCounts(pool, 'user', u);
  await createKeptCounts(pool, 'post', p);
  await sync.rebuild();
  return { users: u, posts: p };
}

/**
 * One read of a whole table, as a reader of `e`'s release would see it, in one statement (one
 * snapshot): its rows, the command side's rows, and the rows whose document has other keys than
 * `e`'s shape.
 */
async function readTable(e: Entity): Promise<{ rows: number; sources: number; otherShape: number }> {
  const { rows } = await pool.query<{ rows: number; sources: number; other_shape: number }>(
    `SELECT count(*)::int AS rows, (SELECT count(*) FROM ${e.table})::int AS sources,
            count(*) FILTER (WHERE ARRAY(SELECT jsonb_object_keys(data) ORDER BY 1) <> $1::text[])::int AS other_shape
       FROM ${e.view}`,
    [keysOf(e)],
  );
  return { rows: rows[0]!.rows, sources: rows[0]!.sources, otherShape: rows[0]!.other_shape };
}

async function drift(e: Entity): Promise<string[]> {
  const { rows } = await pool.query<{ id: string; problem: string }>(statementsFor(e).verify);
  return rows.map((r) => `${r.problem} ${r.id}`);
}

/** A command of the release that runs version 1: writes tb_* and syncs its own tables, INLINE or after commit. */
async function v1Command(write: (c: pg.PoolClient) => Promise<RaceWrite | undefined>): Promise<void> {
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
        await pause(3);
        return plan;
      });
      if (planned && !inline) await sync.refresh(planned);
      return;
    } catch (err) {
      if (!isRetryablePgError(err)) throw err;
    }
  }
}

describe('a change of a document shape, built beside the served version', () => {
  it('builds version 2 in chunks while version 1 takes writes and serves; no reader meets a half-built or mixed table', async () => {
    const b = await blog(6, 150, 400);
    expect(keysOf(post2)).not.toEqual(keysOf(post));
    await announceShapes(pool); // the running release (every version 1)

    const created = await prepareShapes(pool, [post2]);
    expect(created).toEqual([{ entityType: 'post', version: 2, table: 'tv_post_v2', from: 'tv_post' }]);
    expect(await prepareShapes(pool, [post2])).toEqual([]);
    // Its indexes are the served table's (the GIN index on the tags included).
    const indexes = async (t: string) =>
      (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_indexes WHERE tablename = $1', [t])).rows[0]!.n;
    expect(await indexes('tv_post_v2')).toBe(await indexes('tv_post'));
    expect(await pendingShapes(pool, [post2])).toEqual([
      expect.objectContaining({ entityType: 'post', version: 2, table: 'tv_post_v2', state: 'building', done: 0 }),
    ]);
    expect(await pendingShapes(pool)).toEqual([]);

    const stats = { v1Reads: 0, v2Gated: 0, v2Reads: 0, writes: 0, chunks: 0 };
    let writing = true;
    const operations = raceOperations(b.users, b.posts, v1Command);
    const writer = async () => {
      for (let i = 0; i < 40; i++) {
        await pick(operations)();
        stats.writes += 1;
        await pause(4);
      }
    };
    // Readers of version 1 read their table throughout: always complete, always of their shape.
    const v1Reader = async () => {
      while (writing) {
        const t = await readTable(post);
        expect(t).toEqual({ rows: t.sources, sources: t.sources, otherShape: 0 });
        stats.v1Reads += 1;
      }
    };
    // Readers of version 2 are let in once its table is ready, never before (the API's gate).
    const v2Reader = async () => {
      while (writing) {
        if ((await pendingShapes(pool, [post2])).length) {
          stats.v2Gated += 1;
          await pause(2);
          continue;
        }
        const t = await readTable(post2);
        expect(t).toEqual({ rows: t.sources, sources: t.sources, otherShape: 0 });
        stats.v2Reads += 1;
      }
    };
    const progress: BuildProgress[] = [];
    const builder = async () => {
      await pause(20);
      const r = await buildShapes(pool, { model: [post2], chunk: 7, onProgress: (p) => progress.push(p) });
      expect(r).toEqual({ built: ['tv_post_v2'], busy: [], stopped: false });
    };
    const readers = [v1Reader(), v2Reader()];
    await Promise.all([builder(), ...Array.from({ length: 4 }, writer)]);
    // Version 2 is ready: its readers get a few reads in while version 1 still takes writes.
    await Promise.all(Array.from({ length: 2 }, writer));
    writing = false;
    await Promise.all(readers);

    expect(stats.v2Gated).toBeGreaterThan(0);
    expect(stats.v2Reads).toBeGreaterThan(0);
    expect(stats.v1Reads).toBeGreaterThan(0);
    expect(progress.filter((p) => p.event === 'chunk').length).toBeGreaterThan(10);
    expect(progress.at(-1)).toEqual(expect.objectContaining({ event: 'done', done: expect.any(Number) }));
    const [row] = (await shapeRows(pool)).filter((r) => r.table_name === 'tv_post_v2');
    expect(row).toEqual(expect.objectContaining({ state: 'ready', rows_done: expect.any(Number) }));
    expect(row!.ready_at).toBeInstanceOf(Date);

    // The writes version 1 took after version 2's last pass reach it with the next pass of its
    // follower (a worker of release 2 runs one every FOLLOW_EVERY_MS).
    await announceShapes(pool, [post2]);
    await followShapes(pool, { model: [post2] });
    expect(await drift(post2)).toEqual([]);
    expect(await drift(post)).toEqual([]);

    // Release 2 writes (retitles five posts and refreshes its own table): release 1 follows.
    const retitled = b.posts.slice(0, 5);
    await pool.query("UPDATE tb_post SET title = 'By release 2', updated_at = now() WHERE id = ANY($1::uuid[])", [retitled]);
    const client = await pool.connect();
    try {
      expect(await refreshWhereStale(client, post2, retitled)).toBe(5);
    } finally {
      client.release();
    }
    expect((await drift(post)).length).toBe(5);
    await announceShapes(pool, [post2]);
    expect(await followShapes(pool)).toEqual(expect.objectContaining({ refreshed: 5 }));
    expect(await drift(post)).toEqual([]);

    // Release 1 deletes a post: release 2's table loses it with its next pass.
    const gone = b.posts[10]!;
    await withTransaction(pool, async (c) => {
      await c.query('DELETE FROM tb_comment WHERE post_id = $1', [gone]);
      await c.query('DELETE FROM tb_post_stats WHERE post_id = $1', [gone]);
      await c.query('DELETE FROM tb_post WHERE id = $1', [gone]);
      await sync.refreshIn(c, { post: [gone] });
    });
    await announceShapes(pool);
    await followShapes(pool, { model: [post2] });
    expect((await pool.query('SELECT 1 FROM tv_post_v2 WHERE id = $1', [gone])).rowCount).toBe(0);
    expect(await drift(post2)).toEqual([]);
  });

  it('a build stopped halfway continues from its last committed chunk', async () => {
    await prepareShapes(pool, [post3]);
    const stop = new AbortController();
    let chunks = 0;
    const first = await buildShapes(pool, {
      model: [post3],
      chunk: 10,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.event === 'chunk' && ++chunks === 3) stop.abort();
      },
    });
    expect(first).toEqual({ built: [], busy: [], stopped: true });
    const [half] = await pendingShapes(pool, [post3]);
    expect(half).toEqual(expect.objectContaining({ state: 'building', done: 30 }));
    const events: BuildProgress[] = [];
    const second = await buildShapes(pool, { model: [post3], chunk: 10, onProgress: (p) => events.push(p) });
    expect(second.built).toEqual(['tv_post_v3']);
    expect(events[0]).toEqual(expect.objectContaining({ event: 'start', done: 30 }));
    expect(await pendingShapes(pool, [post3])).toEqual([]);
    expect(await drift(post3)).toEqual([]);
    expect((await readTable(post3)).otherShape).toBe(0);
  });

  it('a version whose table cannot be made says why; the tables of versions not run any more are dropped', async () => {
    // An entity no migration made a table for (not one of the model's names, hence the cast).
    const orphan = declare({
      ...MODEL.find((e) => e.name === 'tag')!,
      name: 'nothing',
      base: 'tv_nothing_here',
      version: 2,
    }) as unknown as Entity;
    await expect(prepareShapes(pool, [orphan])).rejects.toThrow(
      /nothing v2: no table of another version of nothing to copy the structure of tv_nothing_here_v2 from/,
    );
    expect(await pendingShapes(pool, [orphan])).toEqual([expect.objectContaining({ state: 'missing', table: 'tv_nothing_here_v2' })]);

    // Version 1 and 2 were seen a moment ago: kept. Once their processes are gone, dropped.
    await announceShapes(pool);
    expect(await dropOldShapes(pool, { model: [post3] })).toEqual({ dropped: [], kept: ['tv_post', 'tv_post_v2'] });
    const dropped = await dropOldShapes(pool, { model: [post3], unseenMs: 0 });
    expect(dropped.dropped.sort()).toEqual(['tv_post', 'tv_post_v2']);
    expect((await pool.query("SELECT to_regclass('tv_post') AS t")).rows[0].t).toBeNull();
    expect((await shapeRows(pool)).filter((r) => r.entity_type === 'post').map((r) => r.table_name)).toEqual(['tv_post_v3']);
  });
});
