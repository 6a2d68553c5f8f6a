import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createBoss, emptyPlan, SYNC_DEAD_LETTER_QUEUE, syncQueueDepth } from '@blog/shared';
import { builtFile, testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import type pg from 'pg';

const run = promisify(execFile);

/** Runs `npm run dead-letter -- ...args` the way npm does (the compiled file). */
async function deadLetter(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [builtFile('services', 'worker', 'dist', 'cli', 'dead-letter.js'), ...args], {
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: testDatabaseUrl() },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('npm run dead-letter', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = testPool();
  });
  afterAll(() => pool.end());

  it('lists dead letters, replays them by id or all, with exit codes 0/1/2', async () => {
    const boss = createBoss({ url: testDatabaseUrl(), applicationName: 'blog-test-dlq', maintenance: false });
    await boss.start();
    const data = (n: number) => ({
      v: 1,
      plan: { ...emptyPlan(), post: [`00000000-0000-4000-8000-00000000000${n}`] },
      mode: 'QUEUED',
      enqueuedAt: Date.now(),
    });
    let ids: string[];
    try {
      ids = [
        (await boss.send(SYNC_DEAD_LETTER_QUEUE, data(1)))!,
        (await boss.send(SYNC_DEAD_LETTER_QUEUE, data(2)))!,
        (await boss.send(SYNC_DEAD_LETTER_QUEUE, data(3)))!,
      ];
    } finally {
      await boss.stop({ graceful: false, close: true });
    }

    const list = await deadLetter('list');
    expect(list.code).toBe(0);
    for (const id of ids) expect(list.stdout).toContain(id);
    expect(list.stdout).toMatch(/3 dead letter\(s\)/);

    const one = await deadLetter('replay', ids[0]!);
    expect(one).toMatchObject({ code: 0 });
    expect(one.stdout).toMatch(/replayed 1 dead letter/);
    expect((await syncQueueDepth(pool)).deadLetters).toBe(2);

    const again = await deadLetter('replay', ids[0]!);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(ids[0]);

    const all = await deadLetter('replay', '--all');
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/replayed 2 dead letter/);
    const depth = await syncQueueDepth(pool);
    expect(depth.deadLetters).toBe(0);
    expect(depth.ready).toBe(3);
    expect((await deadLetter('list')).stdout).toMatch(/no dead letters/);

    expect((await deadLetter()).code).toBe(2);
    expect((await deadLetter('replay')).code).toBe(2);
    expect((await deadLetter('replay', 'not-an-id')).code).toBe(2);
    expect((await deadLetter('frobnicate')).code).toBe(2);
    expect((await deadLetter('help')).code).toBe(0);
  });
});
