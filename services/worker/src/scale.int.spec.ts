import { SyncEngine } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';
import { countCompleted, createFixture, testWorkerConfig, waitFor, Writer, writesOfJobs, type Fixture } from '../test/helpers';
import { createWorker, type ProjectionWorker } from './worker';

describe('scale-out', () => {
  let pool: pg.Pool;
  let writer: Writer;
  let workers: ProjectionWorker[] = [];

  beforeAll(async () => {
    pool = testPool(10);
    writer = await Writer.start(pool);
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    workers = [];
  });
  afterAll(async () => {
    await writer.stop();
    await pool.end();
  });

  /** Random writes of every kind over a small fixture, so concurrent batches contend for the same rows. */
  async function randomWrites(f: Fixture, n: number, tag: string): Promise<string[]> {
    const ids: string[] = [];
    const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    for (let i = 0; i < n; i++) {
      const r = i % 3;
      if (r === 0) ids.push(...(await writer.retitle(pick(f.posts), `${tag} ${i}`)));
      else if (r === 1) ids.push(...(await writer.comment(pick(f.posts), pick(f.users), `${tag} ${i}`)));
      else ids.push(...(await writer.rename(pick(f.users), `${tag} ${i}`)));
    }
    return ids;
  }

  it.each([2, 3])('%i workers drain one queue: every job done once, by several workers, zero drift', async (n) => {
    const f = await createFixture(pool, { users: 10, posts: 30, comments: 60 });
    const backlog = await randomWrites(f, 300, `backlog-${n}`);
    const doneBy = new Map<number, string[]>();
    for (let i = 0; i < n; i++) {
      doneBy.set(i, []);
      workers.push(
        createWorker(testWorkerConfig({ batchSize: 10, name: `blog-worker-scale-${i}` }), {
          onBatch: (o) => doneBy.get(i)!.push(...o.completed),
        }),
      );
    }
    await Promise.all(workers.map((w) => w.start()));
    // More writes while the workers drain, from 4 writers at once.
    const live = (await Promise.all([0, 1, 2, 3].map((k) => randomWrites(f, 40, `live-${n}-${k}`)))).flat();
    const all = [...backlog, ...live];
    await waitFor('all jobs completed', async () => (await countCompleted(pool, all)) === all.length, 30_000);

    // Jobs may carry several writes (the relays merge what they find together).
    const doneJobs = [...doneBy.values()].flat();
    expect(new Set(doneJobs).size).toBe(doneJobs.length); // no job was completed twice
    const done = await writesOfJobs(pool, doneJobs);
    expect(done).toHaveLength(all.length); // no write was refreshed by two jobs
    expect(new Set(done)).toEqual(new Set(all));
    for (const ids of doneBy.values()) expect(ids.length).toBeGreaterThan(0); // every worker took part
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  });

  it('one worker with WORKER_CONCURRENCY=3 runs batches side by side, each job once, zero drift', async () => {
    const f = await createFixture(pool, { users: 10, posts: 30, comments: 60 });
    const jobs = await randomWrites(f, 150, 'concurrent');
    const done: string[] = [];
    const worker = createWorker(testWorkerConfig({ batchSize: 5, concurrency: 3, name: 'blog-worker-conc' }), {
      onBatch: (o) => done.push(...o.completed),
    });
    workers.push(worker);
    await worker.start();
    await waitFor('all completed', async () => (await countCompleted(pool, jobs)) === jobs.length, 30_000);
    expect(new Set(done).size).toBe(done.length);
    const writes = await writesOfJobs(pool, done);
    expect(writes).toHaveLength(jobs.length);
    expect(new Set(writes)).toEqual(new Set(jobs));
    const slots = await pool.query<{ slot: string }>(`SELECT DISTINCT slot FROM sync_lag WHERE slot LIKE $1`, [`${worker.instance}/%`]);
    // A batch takes the highest free slot and gives it back when done: a second slot is only ever
    // used while another batch is in flight.
    expect(slots.rows.length).toBeGreaterThan(1);
    expect(slots.rows.every((r) => /\/[0-2]$/.test(r.slot))).toBe(true);
    expect((await new SyncEngine(pool).verify()).total).toBe(0);
  });
});
