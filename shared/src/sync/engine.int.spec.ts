import type pg from 'pg';
import { insertComments, insertPosts, insertUsers, keptCount, projection } from '../../test/factory';
import { testPool } from '../../test/helpers';
import { withTransaction } from '../db/pool';
import { SyncEngine } from './engine';
import { SyncError } from './errors';
import { FEW_IDS } from './scope';
import { SYNC_ORDER } from './types';
import { createKeptCounts } from './kept-counts';

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface LogRow {
  entity_type: string;
  operation: string;
  entity_count: number;
  success: boolean;
  error_message: string | null;
}

describe('sync engine', () => {
  let pool: pg.Pool;
  let sync: SyncEngine;
  beforeAll(() => {
    pool = testPool(8);
    sync = new SyncEngine(pool);
  });
  afterAll(() => pool.end());

  /** sync_log rows written after `since` (a log id). */
  async function logSince(since: number): Promise<LogRow[]> {
    const { rows } = await pool.query<LogRow>(
      'SELECT entity_type, operation, entity_count, success, error_message FROM sync_log WHERE id > $1 ORDER BY id',
      [since],
    );
    return rows;
  }
  async function lastLogId(): Promise<number> {
    const { rows } = await pool.query('SELECT coalesce(max(id), 0)::int AS id FROM sync_log');
    return rows[0].id;
  }

  it('refreshes a batch of one', async () => {
    const [u] = await insertUsers(pool, 1);
    const since = await lastLogId();
    const report = await sync.users([u!.id]);
    expect(report.results).toEqual([expect.objectContaining({ entityType: 'user', count: 1, updated: 1, deleted: 0 })]);
    expect(await projection(pool, 'tv_user', u!.id)).toMatchObject({ id: u!.id, username: u!.username });
    expect(await logSince(since)).toEqual([
      { entity_type: 'user', operation: 'incremental', entity_count: 1, success: true, error_message: null },
    ]);
  });

  it('refreshes thousands in one batch: one log row per entity type, every document right', async () => {
    const users = await insertUsers(pool, 50);
    const posts = await insertPosts(
      pool,
      users.map((u) => u.id),
      3000,
    );
    const comments = await insertComments(
      pool,
      posts,
      users.map((u) => u.id),
      6000,
    );
    const since = await lastLogId();
    const report = await sync.refresh({ user: users.map((u) => u.id), post: posts, comment: comments });
    // In SYNC_ORDER: the most contended rows (users) are locked last.
    expect(report.results.map((r) => [r.entityType, r.count, r.updated])).toEqual([
      ['comment', 6000, 6000],
      ['post', 3000, 3000],
      ['user', 50, 50],
    ]);
    expect((await logSince(since)).map((r) => [r.entity_type, r.entity_count, r.success])).toEqual([
      ['comment', 6000, true],
      ['post', 3000, true],
      ['user', 50, true],
    ]);
    const { rows } = await pool.query(
      'SELECT count(DISTINCT p.id)::int AS n, count(c.id)::int AS comments ' +
        'FROM tv_post p LEFT JOIN tv_comment c ON c.post_id = p.id WHERE p.id = ANY($1::uuid[])',
      [posts],
    );
    expect(rows[0]).toEqual({ n: 3000, comments: 6000 });
    expect((await sync.verify()).total).toBe(0);
  });

  it('is idempotent: repeating a sync writes no row whose document did not change', async () => {
    const [u] = await insertUsers(pool, 1);
    const posts = await insertPosts(pool, [u!.id], 5);
    await sync.posts(posts);
    const { rows: before } = await pool.query('SELECT id, synced_at FROM tv_post WHERE id = ANY($1::uuid[]) ORDER BY id', [posts]);
    const again = await sync.posts(posts);
    expect(again.results[0]).toMatchObject({ count: 5, updated: 0, deleted: 0 });
    const { rows: after } = await pool.query('SELECT id, synced_at FROM tv_post WHERE id = ANY($1::uuid[]) ORDER BY id', [posts]);
    expect(after).toEqual(before);
  });

  it('removes projections whose source is gone', async () => {
    const [u] = await insertUsers(pool, 1);
    const [p] = await insertPosts(pool, [u!.id], 1);
    await sync.posts([p!]);
    await pool.query('DELETE FROM tb_post WHERE id = $1', [p]);
    const report = await sync.posts([p!]);
    expect(report.results[0]).toMatchObject({ count: 1, updated: 0, deleted: 1 });
    expect(await projection(pool, 'tv_post', p!)).toBeUndefined();
    // and syncing an id that never existed is harmless
    expect((await sync.posts(['00000000-0000-4000-8000-00000000dead'])).results[0]).toMatchObject({ updated: 0, deleted: 0 });
  });

  it('preview computes the current document without writing, inside the caller transaction', async () => {
    const [u] = await insertUsers(pool, 1);
    await withTransaction(pool, async (client) => {
      const { rows } = await client.query<{ id: string }>(
        "INSERT INTO tb_post (author_id, title, content) VALUES ($1, 'Draft', 'Body') RETURNING id",
        [u!.id],
      );
      const id = rows[0]!.id;
      const doc = (await sync.preview('post', [id], client)).get(id);
      expect(doc).toMatchObject({ id, title: 'Draft' });
      expect(await projection(client, 'tv_post', id)).toBeUndefined();
    });
  });

  it('refreshIn returns the document it wrote for the entity asked for (a handful of ids), else nothing', async () => {
    const [u] = await insertUsers(pool, 1);
    const posts = await insertPosts(pool, [u!.id], FEW_IDS + 1);
    const first = posts[0]!;
    const small = await withTransaction(pool, (client) =>
      sync.refreshIn(client, { post: [first], user: [u!.id] }, { answer: { type: 'post', id: first } }),
    );
    expect(small.answer).toEqual(await projection(pool, 'tv_post', first));
    expect(small.answer).toMatchObject({ id: first, author: { id: u!.id } });
    // Unchanged since: the same document comes back although nothing is rewritten.
    const again = await withTransaction(pool, (client) =>
      sync.refreshIn(client, { post: [first] }, { answer: { type: 'post', id: first } }),
    );
    expect(again.results[0]).toMatchObject({ updated: 0 });
    expect(again.answer).toEqual(small.answer);
    // Past FEW_IDS ids of its type the caller reads it from tv_* itself.
    const big = await withTransaction(pool, (client) => sync.refreshIn(client, { post: posts }, { answer: { type: 'post', id: first } }));
    expect(big.answer).toBeUndefined();
  });

  it(
    'on a pipelined connection, sends every statement of the refresh before the first answer; ' + 'the write statements log the batch',
    async () => {
      const [u] = await insertUsers(pool, 1);
      const [p] = await insertPosts(pool, [u!.id], 1);
      const [c] = await insertComments(pool, [p!], [u!.id], 1);
      const since = await lastLogId();
      const events: string[] = [];
      let atReturn: string[] = [];
      let restore = () => undefined as void;
      const report = await withTransaction(pool, async (client) => {
        const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
        restore = () => void ((client as { query: unknown }).query = query);
        (client as { query: unknown }).query = (...args: unknown[]) => {
          const text = String(typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text).trim();
          const label = text.split(/\s+/).slice(0, 3).join(' ');
          events.push(`sent ${label}`);
          return query(...args).finally(() => events.push(`answered ${label}`));
        };
        const result = await sync.refreshIn(client, { user: [u!.id], post: [p!], comment: [c!] });
        atReturn = [...events];
        return result;
      });
      restore();
      expect(report.results.map((r) => [r.entityType, r.updated])).toEqual([
        ['comment', 1],
        ['post', 1],
        ['user', 1],
      ]);
      // Two statements per type (claim, write), all sent before any answer; no statement of its own
      // for the log rows (each write statement writes its type's row).
      expect(atReturn.slice(0, 6).every((e) => e.startsWith('sent'))).toBe(true);
      expect(atReturn.slice(6).every((e) => e.startsWith('answered'))).toBe(true);
      expect(atReturn).toHaveLength(12);
      expect(events.slice(12)).toEqual(['sent COMMIT', 'answered COMMIT']);
      // The rows carry the write statements' time on the server.
      const { rows: durations } = await pool.query<{ d: number }>('SELECT duration_ms AS d FROM sync_log WHERE id > $1', [since]);
      for (const { d } of durations) expect(d).toBeGreaterThan(0);
      expect((await logSince(since)).map((r) => [r.entity_type, r.entity_count, r.success])).toEqual([
        ['comment', 1, true],
        ['post', 1, true],
        ['user', 1, true],
      ]);
      expect(await projection(pool, 'tv_comment', c!)).toMatchObject({ id: c, post: { id: p } });
    },
  );

  it(
    'created: the document of an entity inserted by the transaction is inserted by one statement (no claim), ' +
      'as a claimed refresh would write it',
    async () => {
      const [u] = await insertUsers(pool, 1);
      const since = await lastLogId();
      const texts: string[] = [];
      const { report, post } = await withTransaction(pool, async (client) => {
        const [p] = await insertPosts(client, [u!.id], 1);
        const query = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
        (client as { query: unknown }).query = (...args: unknown[]) => {
          texts.push(String(typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text).trim());
          return query(...args);
        };
        try {
          const created = { type: 'post' as const, id: p! };
          return { report: await sync.refreshIn(client, { post: [p!], user: [u!.id] }, { created, answer: created }), post: p! };
        } finally {
          (client as { query: unknown }).query = query;
        }
      });
      // The post: one INSERT (of its document); the user: its claim and its write.
      expect(texts.map((t) => t.split(/\s+/).slice(0, 3).join(' '))).toEqual(['WITH doc AS', 'INSERT INTO tv_user', 'WITH doc AS']);
      expect(report.results.map((r) => [r.entityType, r.updated])).toEqual([
        ['post', 1],
        ['user', 1],
      ]);
      expect(report.answer).toEqual(await projection(pool, 'tv_post', post));
      expect((await logSince(since)).map((r) => [r.entity_type, r.entity_count, r.success])).toEqual([
        ['post', 1, true],
        ['user', 1, true],
      ]);
      // What a claimed refresh computes from the same rows: nothing left to change.
      const again = await sync.refresh({ post: [post] });
      expect(again.results[0]).toMatchObject({ entityType: 'post', updated: 0, deleted: 0 });
    },
  );

  it('a failing onRefresh hook (metrics) fails neither the sync nor its caller', async () => {
    const [u] = await insertUsers(pool, 1);
    const hooked = new SyncEngine(pool, {
      onRefresh: () => {
        throw new Error('metrics are broken');
      },
    });
    await expect(hooked.users([u!.id])).resolves.toMatchObject({ results: [expect.objectContaining({ entityType: 'user', updated: 1 })] });
    expect(await projection(pool, 'tv_user', u!.id)).toMatchObject({ id: u!.id });
  });

  it('a failed sync writes a failure row, raises SyncError and leaves projections as they were', async () => {
    const [u] = await insertUsers(pool, 1);
    const [p] = await insertPosts(pool, [u!.id], 1);
    await sync.posts([p!]);
    const before = await projection(pool, 'tv_post', p!);
    await pool.query("UPDATE tb_post SET title = 'Changed', updated_at = now() WHERE id = $1", [p]);
    const since = await lastLogId();

    // One malformed id makes the set-based statement fail for the whole batch.
    const err = await sync.posts([p!, 'not-a-uuid']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncError);
    expect(err).toMatchObject({ code: 'SYNC_FAILED', entityType: 'post', entityCount: 2 });
    expect(await projection(pool, 'tv_post', p!)).toEqual(before);
    const log = await logSince(since);
    expect(log).toEqual([
      expect.objectContaining({ entity_type: 'post', entity_count: 2, success: false, error_message: expect.stringContaining('uuid') }),
    ]);
  });

  it('a failure in a later type rolls back the earlier types of the same batch', async () => {
    const [u] = await insertUsers(pool, 1);
    await pool.query("UPDATE tb_user SET full_name = 'Before Sync' WHERE id = $1", [u!.id]);
    await expect(sync.refresh({ user: [u!.id], post: ['not-a-uuid'] })).rejects.toBeInstanceOf(SyncError);
    expect(await projection(pool, 'tv_user', u!.id)).toBeUndefined();
  });

  it('full mode rebuilds every projection in one transaction and removes orphans', async () => {
    const [u] = await insertUsers(pool, 1);
    const [p] = await insertPosts(pool, [u!.id], 1);
    await insertComments(pool, [p!], [u!.id], 2);
    await pool.query("INSERT INTO tv_user (id, data, created_at) VALUES ('00000000-0000-4000-8000-0000000000aa', '{}', now())");
    const since = await lastLogId();
    const report = await sync.all();
    expect(report.operation).toBe('full');
    expect(report.results.find((r) => r.entityType === 'user')).toMatchObject({ deleted: 1 });
    expect(await projection(pool, 'tv_post', p!)).toMatchObject({ id: p });
    expect(await keptCount(pool, 'post', 'commentCount', p!)).toBe(2);
    // One row per entity type, in the lock order (comment, post, user, ...).
    expect(SYNC_ORDER.slice(0, 3)).toEqual(['comment', 'post', 'user']);
    expect((await logSince(since)).map((r) => [r.entity_type, r.operation, r.success])).toEqual(SYNC_ORDER.map((t) => [t, 'full', true]));
    expect((await sync.verify()).total).toBe(0);
  });

  it('verify reports a user whose kept counts differ from the rows as stale, before any refresh copied them; repair recounts', async () => {
    const [alice, bob] = await insertUsers(pool, 2);
    await insertPosts(pool, [alice!.id], 2);
    await insertComments(pool, await insertPosts(pool, [bob!.id], 1), [alice!.id], 3);
    await createKeptCounts(pool, 'user', [alice!.id, bob!.id]);
    await sync.users([alice!.id, bob!.id]);
    const problemsOf = (report: Awaited<ReturnType<SyncEngine['verify']>>, id: string) =>
      Object.entries(report.problems.user)
        .filter(([, ids]) => ids.includes(id))
        .map(([problem]) => problem);
    expect(problemsOf(await sync.verify(), alice!.id)).toEqual([]);

    // A count changed behind the commands' back: tv_user still shows the right one.
    await pool.query('UPDATE tb_user_stats SET comment_count = comment_count + 5 WHERE user_id = $1', [alice!.id]);
    const report = await sync.verify();
    expect(problemsOf(report, alice!.id)).toEqual(['stale']);
    expect(problemsOf(report, bob!.id)).toEqual([]);
    expect(report.problems.user.stale.filter((id) => id === alice!.id)).toHaveLength(1);

    await sync.repair(report);
    const { rows } = await pool.query('SELECT comment_count FROM tb_user_stats WHERE user_id = $1', [alice!.id]);
    expect(rows).toEqual([{ comment_count: 3 }]);
    expect(problemsOf(await sync.verify(), alice!.id)).toEqual([]);
    expect(await keptCount(pool, 'user', 'commentCount', alice!.id)).toBe(3);
    expect(await keptCount(pool, 'user', 'postCount', alice!.id)).toBe(2);
  });

  it('readers keep seeing the old rows until a full rebuild commits', async () => {
    const [u] = await insertUsers(pool, 1);
    await sync.users([u!.id]);
    await pool.query("UPDATE tb_user SET full_name = 'Rebuilt Name' WHERE id = $1", [u!.id]);
    // Hold tv_post so the rebuild stops after rebuilding tv_user, before it can commit.
    const blocker = await pool.connect();
    let rebuild: Promise<unknown> | undefined;
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE tv_post IN ROW EXCLUSIVE MODE');
      rebuild = sync.all();
      await waitFor(async () => {
        const { rows } = await pool.query(
          "SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'tv_post'::regclass AND mode = 'ShareRowExclusiveLock' AND NOT granted",
        );
        return rows[0].n === 1;
      });
      // The rebuild has recomputed tv_user but not committed: readers see the old row, unblocked.
      expect(await projection(pool, 'tv_user', u!.id)).toMatchObject({ fullName: u!.fullName });
    } finally {
      await blocker.query('COMMIT');
      blocker.release();
    }
    await rebuild;
    expect(await projection(pool, 'tv_user', u!.id)).toMatchObject({ fullName: 'Rebuilt Name' });
  });
});
