import { spawn, type ChildProcess } from 'node:child_process';
import type pg from 'pg';
import { insertComments, insertPosts, insertUsers } from './factory';
import { builtFile, testDatabaseUrl, testPool } from './helpers';
import { SyncEngine } from '../src/sync/engine';
import { createKeptCounts } from '../src/sync/kept-counts';

/** `npm run sync -- rebuild` as a process of its own (the compiled CLI), its output collected. */
function start(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => { stdout: string; stderr: string }; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [builtFile('shared', 'dist', 'cli', 'sync.js'), ...args], {
    env: { ...process.env, DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'error', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => ({ stdout, stderr }), exit };
}

async function run(args: string[], env: Record<string, string> = {}) {
  const p = start(args, env);
  const code = await p.exit;
  return { code, ...p.output() };
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The rebuild CLI's server processes (application_name blog-sync-cli) on this database. */
async function cliBackends(pool: pg.Pool): Promise<{ pid: number; wait_event_type: string | null }[]> {
  const { rows } = await pool.query(
    "SELECT pid, wait_event_type FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'blog-sync-cli'",
  );
  return rows;
}

describe('sync rebuild, killed with SIGKILL halfway', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = testPool(4);
    const users = (await insertUsers(pool, 5)).map((u) => u.id);
    const posts = await insertPosts(pool, users, 40);
    await insertComments(pool, posts, users, 200);
    await createKeptCounts(pool, 'user', users);
    await new SyncEngine(pool).all();
  });
  afterAll(() => pool.end());

  it('is continued by the next rebuild from its last committed chunk, which ends with zero drift', async () => {
    // Every comment document stale: each chunk really writes.
    await pool.query(`UPDATE tv_comment SET data = data || '{"content": "stale"}'`);
    // Hold a comment's projection row in the middle of the id order: the rebuild commits the
    // chunks before it, then waits, and is killed while it waits.
    const ids = (await pool.query<{ id: string }>('SELECT id FROM tv_comment ORDER BY id')).rows.map((r) => r.id);
    const held = ids[Math.floor(ids.length / 2)]!;
    const blocker = await pool.connect();
    const killed = start(['rebuild'], { REBUILD_CHUNK: '10' });
    let committedBefore = 0;
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT 1 FROM tv_comment WHERE id = $1 FOR UPDATE', [held]);
      await waitFor(async () => (await cliBackends(pool)).some((b) => b.wait_event_type === 'Lock'), 'the rebuild waits for the held row');
      const { rows } = await pool.query<{ chunks: number }>("SELECT chunks FROM sync_rebuild WHERE entity_type = 'comment'");
      expect(rows[0]!.chunks).toBeGreaterThanOrEqual(5);

      // Meanwhile a second rebuild refuses to start.
      const second = await run(['rebuild']);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain('Another rebuild is running');

      killed.child.kill('SIGKILL');
      expect(await killed.exit).toBeNull();
    } finally {
      await blocker.query('ROLLBACK');
      blocker.release();
    }
    // The killed process's server process notices when its statement ends (it was waiting for a
    // lock, not reading from its socket); its chunk in hand rolls back.
    await waitFor(async () => (await cliBackends(pool)).length === 0, 'the killed rebuild leaves the server');
    const saved = await pool.query<{ run_id: string; entity_type: string; last_id: string | null; done: boolean; chunks: number }>(
      'SELECT run_id, entity_type, last_id, done, chunks FROM sync_rebuild',
    );
    committedBefore = saved.rows.reduce((n, r) => n + r.chunks, 0);
    const comment = saved.rows.find((r) => r.entity_type === 'comment')!;
    expect(comment.done).toBe(false);
    expect(comment.last_id! < held).toBe(true);
    const stale = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM tv_comment WHERE data->>'content' = 'stale'`);
    // The committed chunks wrote their rows; the rest are still stale.
    expect(stale.rows[0]!.n).toBe(ids.filter((id) => id > comment.last_id!).length);
    expect(killed.output().stdout).toMatch(/^rebuild \S+: started, chunks of 10 ids\n$/);

    const resumed = await run(['rebuild'], { REBUILD_CHUNK: '10' });
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`rebuild ${comment.run_id}: resumed (started `);
    expect(resumed.stdout).toContain(`, ${committedBefore} chunk(s) committed before); continuing with comment after ${comment.last_id}\n`);
    expect(resumed.stdout).toMatch(/full comment\s+200 entities, 200 written, 0 deleted/);
    const thisRun = Number(/: (\d+) chunk\(s\) in [\d.]+ s, after (\d+) committed before/.exec(resumed.stdout)![1]);
    // Not a walk from the start: only what the killed one had not committed.
    const fresh = await run(['rebuild'], { REBUILD_CHUNK: '10' });
    expect(fresh.stdout).toMatch(/^rebuild \S+: started, chunks of 10 ids\n/);
    const all = Number(/: (\d+) chunk\(s\) in/.exec(fresh.stdout)![1]);
    expect(thisRun + committedBefore).toBe(all);
    expect(thisRun).toBeLessThan(all);
    expect(await run(['verify'])).toMatchObject({ code: 0, stdout: expect.stringContaining('no drift') });
  });

  it('prints its progress on stderr when it is no terminal: a line per entity type, and the summary on stdout', async () => {
    const rebuilt = await run(['rebuild', '--restart'], { REBUILD_CHUNK: '50' });
    expect(rebuilt.code).toBe(0);
    for (const t of ['comment', 'post', 'user', 'tag'])
      expect(rebuilt.stderr).toMatch(new RegExp(`rebuild ${t}\\s+done: [\\d,]+/[\\d,]+ rows, [\\d,]+ rows/s`));
    expect(rebuilt.stdout).toMatch(/full comment\s+200 entities, 0 written, 0 deleted, [\d.]+ ms\n/);
    expect(rebuilt.stdout).toMatch(/row\(s\) with kept counts recounted; peak memory \d+ MB\n$/);
    const bad = await run(['rebuild', '--fast']);
    expect(bad.code).toBe(2);
    expect((await run(['rebuild'], { REBUILD_CHUNK: '0' })).stderr).toContain('REBUILD_CHUNK: must be at least 1');
  });
});
