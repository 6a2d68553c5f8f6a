import { createLogger, shapeRows, SyncEngine } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { countCompleted, createFixture, testWorkerConfig, waitFor, Writer } from '../test/helpers';
import { startHealthServer, type HealthServer } from './health';
import { createWorker, type ProjectionWorker } from './worker';

/**
 * A worker of a release whose projection table is still to be built (shared/src/sync/shapes.ts):
 * it builds it, is not ready meanwhile and takes no sync job, then takes jobs.
 */
describe('a worker whose release has a projection table to build', () => {
  let pool: pg.Pool;
  let writer: Writer;
  let worker: ProjectionWorker | undefined;
  let health: HealthServer | undefined;

  beforeAll(async () => {
    pool = testPool(6);
    writer = await Writer.start(pool);
  });
  afterAll(async () => {
    await health?.close();
    await worker?.stop();
    await writer.stop();
    await pool.end();
  });

  it('builds it first (/ready 503, no job taken), then is ready and takes the jobs', async () => {
    const f = await createFixture(pool, { users: 4, posts: 30, comments: 40 });
    // The table as `npm run migrate` leaves a new version's: registered as building, its rows to be
    // written (one is wrong here, which the build mends).
    await pool.query("UPDATE tv_post SET data = jsonb_set(data, '{title}', '\"not built yet\"') WHERE id = $1", [f.posts[0]]);
    await pool.query(
      `INSERT INTO sync_shape (entity_type, version, table_name, state, rows_total, followed_to)
       VALUES ('post', 1, 'tv_post', 'building', 30, now())
       ON CONFLICT (entity_type, version) DO UPDATE SET state = 'building', last_id = NULL, rows_done = 0, ready_at = NULL`,
    );
    const jobs = await writer.retitle(f.posts[1]!, 'queued while building');

    // A row held by another transaction keeps the build's chunk waiting: the worker is caught building.
    const holder = await pool.connect();
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM tv_post WHERE id = $1 FOR UPDATE', [f.posts[0]]);
    try {
      worker = createWorker(testWorkerConfig({ name: 'blog-worker-shapes' }), { logger: createLogger('test', 'silent') });
      await worker.start();
      health = await startHealthServer(worker, 0, createLogger('test', 'silent'));
      const ready = () => fetch(`http://127.0.0.1:${health!.port}/ready`);
      await waitFor('the build waits for the held row', async () => {
        const { rows } = await pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = 'blog-worker-shapes' AND wait_event_type = 'Lock'",
        );
        return rows.length > 0;
      });
      const notReady = await ready();
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual(
        expect.objectContaining({
          healthy: false,
          status: 'running',
          building: [expect.stringMatching(/^post v1 \(tv_post\) building, \d+% /)],
        }),
      );
      expect((await fetch(`http://127.0.0.1:${health.port}/health`)).status).toBe(200);
      expect(await countCompleted(pool, jobs)).toBe(0);
    } finally {
      await holder.query('ROLLBACK');
      holder.release();
    }

    await waitFor('ready', async () => (await fetch(`http://127.0.0.1:${health!.port}/ready`)).status === 200, 15_000);
    await waitFor('the job queued meanwhile is done', async () => (await countCompleted(pool, jobs)) === jobs.length, 15_000);
    const [row] = (await shapeRows(pool)).filter((r) => r.table_name === 'tv_post');
    expect(row).toEqual(expect.objectContaining({ state: 'ready', rows_done: 30, seen_at: expect.any(Date) }));
    expect(worker!.status().building).toEqual([]);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  });
});
