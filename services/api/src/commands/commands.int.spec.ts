import { createBoss, seed, SyncEngine, SyncQueue, type EnqueueOptions, type EntityType, type SyncPlan } from '@blog/shared';
import { testDatabaseUrl, testPool, watchSocketWrites } from '@blog/shared/test/helpers';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { Commands } from './commands';
import { ALICE, BOB, CHARLIE, POST1, POST2, POST3, writeCounts } from '../../test/support';

/**
 * The enqueue is part of the command's transaction: when the transaction fails AFTER the job was
 * recorded, the job goes with the rows. The failure is injected after the enqueue (the step that
 * computes the answer), against the real database. (A QUEUED create is one statement, which
 * PostgreSQL applies whole or not at all; test/midway.e2e.spec.ts kills one in the middle.)
 */
let pool: pg.Pool;
let boss: PgBoss;

class FailingAnswer extends SyncEngine {
  override preview<T>(_type: EntityType, _ids: readonly string[], _client?: pg.ClientBase): Promise<Map<string, T>> {
    return Promise.reject(new Error('injected failure after the enqueue'));
  }
}

/** The real queue, remembering the ids of the jobs it inserted. */
class RecordingQueue extends SyncQueue {
  readonly ids: string[] = [];
  override async enqueue(client: pg.ClientBase, plan: SyncPlan, options: EnqueueOptions): Promise<string[]> {
    const ids = await super.enqueue(client, plan, options);
    this.ids.push(...ids);
    return ids;
  }
}

beforeAll(async () => {
  pool = testPool();
  await seed(pool);
  boss = createBoss({ url: testDatabaseUrl(), applicationName: 'blog-test-boss', maintenance: false, max: 2 });
  await boss.start();
});

/** The commands on `db`, with the real sync engine and queue unless given others. */
function commandsOn(db: pg.Pool, parts: { sync?: SyncEngine; queue?: SyncQueue } = {}): Commands {
  return new Commands(db, parts.sync ?? new SyncEngine(db), parts.queue ?? new SyncQueue(boss, db), {
    defaultSyncMode: 'QUEUED',
    deferSeconds: 30,
    fanOutMaxIds: 1000,
    defaultPageSize: 20,
    maxPageSize: 100,
  });
}

afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await pool?.end();
});

test('a command that fails after enqueueing leaves neither its rows nor its job', async () => {
  const queue = new RecordingQueue(boss, pool);
  const commands = commandsOn(pool, { sync: new FailingAnswer(pool), queue });
  const before = await writeCounts(pool);
  await expect(commands.updatePost({ id: '00000000-0000-0000-0001-000000000001', title: 'Lost' }, 'QUEUED')).rejects.toThrow(
    'injected failure after the enqueue',
  );
  await expect(commands.updateUser({ id: ALICE, fullName: 'Lost' }, 'DEFERRED')).rejects.toThrow('injected failure after the enqueue');
  expect(await writeCounts(pool)).toEqual(before);
  // Both jobs were recorded in their transactions, and rolled back with them.
  expect(queue.ids).toHaveLength(2);
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM sync_outbox WHERE id = ANY($1::uuid[])', [queue.ids]);
  expect(rows[0].n).toBe(0);
});

test('the same command without the failure commits its rows and exactly one job', async () => {
  const commands = commandsOn(pool);
  const before = await writeCounts(pool);
  const post = await commands.createPost({ title: 'Kept', content: 'x', authorId: ALICE, published: true }, 'QUEUED');
  expect(post.title).toBe('Kept');
  const after = await writeCounts(pool);
  expect({ posts: after.tb_post, outbox: after.outbox }).toEqual({ posts: before.tb_post! + 1, outbox: before.outbox! + 1 });
});

describe('round trips', () => {
  /** A one-connection pool whose connection is opened here, and the socket writes of the process's pools from then on. */
  async function watchedPool(): Promise<{ own: pg.Pool; watch: { writes: number } }> {
    const own = testPool(1);
    const client = await own.connect();
    client.release();
    return { own, watch: watchSocketWrites() };
  }

  test('an INLINE create is one statement (its rows, event, projection, count change and answer): one write', async () => {
    const { own, watch: counter } = await watchedPool();
    try {
      const commands = commandsOn(own);
      for (let i = 0; i < 3; i++) {
        counter.writes = 0;
        const post = await commands.createPost({ title: `One trip ${i}`, content: 'x', authorId: ALICE, published: true }, 'INLINE');
        expect({ writes: counter.writes, title: post.title }).toEqual({ writes: 1, title: `One trip ${i}` });
        counter.writes = 0;
        const comment = await commands.createComment({ postId: post.id, authorId: ALICE, content: 'and back' }, 'INLINE');
        expect({ writes: counter.writes, post: comment.post }).toEqual({ writes: 1, post: { id: post.id, title: `One trip ${i}` } });
      }
      // What it wrote is committed: another connection reads both documents.
      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM tv_post JOIN tb_post_stats s ON s.post_id = id JOIN tv_comment c ON c.post_id = tv_post.id ' +
          "WHERE tv_post.data->>'title' LIKE 'One trip %' AND s.comment_count = 1",
      );
      expect(rows[0]!.n).toBe(3);
    } finally {
      await own.end();
    }
  });

  test('a QUEUED create is one statement (its rows, event, outbox row, count change and answer): one write', async () => {
    const { own, watch: counter } = await watchedPool();
    try {
      const commands = commandsOn(own);
      for (let i = 0; i < 2; i++) {
        counter.writes = 0;
        const post = await commands.createPost({ title: `Queued trip ${i}`, content: 'x', authorId: ALICE, published: true }, 'QUEUED');
        expect({ writes: counter.writes, title: post.title }).toEqual({ writes: 1, title: `Queued trip ${i}` });
      }
    } finally {
      await own.end();
    }
  });

  test.each(['INLINE', 'QUEUED', 'DEFERRED'] as const)(
    '%s: a create of a missing reference is NOT_FOUND (from the insert), records no sync failure and writes nothing',
    async (mode) => {
      const commands = commandsOn(pool);
      const unknown = '11111111-2222-4333-8444-555555555555';
      const before = await writeCounts(pool);
      await expect(commands.createPost({ title: 't', content: 'x', authorId: unknown }, mode)).rejects.toMatchObject({
        code: 'NOT_FOUND',
        field: 'authorId',
      });
      await expect(commands.createComment({ postId: unknown, authorId: ALICE, content: 'c' }, mode)).rejects.toMatchObject({
        code: 'NOT_FOUND',
        field: 'postId',
      });
      await expect(
        commands.createComment({ postId: '00000000-0000-0000-0001-000000000001', authorId: unknown, content: 'c' }, mode),
      ).rejects.toMatchObject({ code: 'NOT_FOUND', field: 'authorId' });
      expect(await writeCounts(pool)).toEqual(before);
    },
  );
});

/**
 * An INLINE create's statement takes its snapshot when it starts, and may then wait for its FOR SHARE
 * lock on a referenced row that another transaction is changing. The document it writes must hold
 * that row as the other transaction committed it (the other's sync cannot know of the new row), or
 * the projection drifts for good.
 */
test.each([
  { name: 'its author renamed', table: 'tb_user', set: "username = 'renamed_meanwhile'", id: ALICE, field: ['author', 'username'] },
  { name: 'its post retitled', table: 'tb_post', set: "title = 'Retitled meanwhile'", id: POST1, field: ['post', 'title'] },
])('an INLINE comment created while $name (committed while it waited) embeds the committed values', async ({ table, set, id, field }) => {
  const commands = commandsOn(pool);
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query(`UPDATE ${table} SET ${set} WHERE id = $1`, [id]);
    const creating = commands.createComment({ postId: POST1, authorId: ALICE, content: 'written while it changed' }, 'INLINE');
    // The comment's statement has started and waits for the row lock.
    for (let i = 0; ; i++) {
      const { rows } = await pool.query(
        `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO tb_comment%'`,
      );
      if (rows.length) break;
      if (i > 500) throw new Error('the comment never waited for the lock');
      await new Promise((r) => setTimeout(r, 10));
    }
    await holder.query('COMMIT');
    const comment = await creating;
    const { rows } = await pool.query<{ data: Record<string, Record<string, string>> }>('SELECT data FROM tv_comment WHERE id = $1', [
      comment.id,
    ]);
    const [embedded, column] = field as [string, string];
    const { rows: source } = await pool.query(`SELECT ${column === 'username' ? 'username' : 'title'} AS v FROM ${table} WHERE id = $1`, [
      id,
    ]);
    expect(rows[0]!.data[embedded]![column]).toBe(source[0]!.v);
    // The whole document as computed from tb_* now.
    const fresh = await new SyncEngine(pool).preview('comment', [comment.id as string]);
    expect(rows[0]!.data).toEqual(fresh.get(comment.id as string));
  } finally {
    await holder.query('ROLLBACK').catch(() => undefined);
    holder.release();
  }
});

test('INLINE creates racing INLINE renames, retitles and deletes of what they embed leave no drift', async () => {
  const commands = commandsOn(pool);
  // From projections in step with tb_* (the tests above changed rows behind the commands' backs).
  await new SyncEngine(pool).all();
  expect((await new SyncEngine(pool).verify()).total).toBe(0);
  const users = [ALICE, BOB, CHARLIE];
  const posts = [POST1, POST2, POST3];
  const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;
  const created: string[] = [];
  const until = Date.now() + 2_000;
  let n = 0;
  const loop = async (worker: number): Promise<void> => {
    while (Date.now() < until) {
      const i = n++;
      const kind = (worker + i) % 4;
      if (kind === 0 || kind === 1) {
        const c = await commands.createComment({ postId: pick(posts), authorId: pick(users), content: `race ${i}` }, 'INLINE');
        created.push(c.id as string);
      } else if (kind === 2) {
        if (Math.random() < 0.5) await commands.updateUser({ id: pick(users), fullName: `Name ${i}` }, 'INLINE');
        else await commands.updatePost({ id: pick(posts), title: `Title ${i}` }, 'INLINE');
      } else if (created.length) {
        await commands.deleteComment({ id: created.splice(Math.floor(Math.random() * created.length), 1)[0] }, 'INLINE');
      }
    }
  };
  await Promise.all([0, 1, 2, 3, 4, 5].map(loop));
  expect(n).toBeGreaterThan(20);
  const report = await new SyncEngine(pool).verify();
  expect(report.total).toBe(0);
});
