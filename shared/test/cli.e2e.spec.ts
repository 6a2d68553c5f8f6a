import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { builtFile, testDatabaseUrl, testPool } from './helpers';
import { defaultMigrationsDir } from '../src/db/paths';
import { ENTITY_TYPES, entityOf, MODEL } from '../src/model';
import { announceShapes } from '../src/sync/shapes';

const run = promisify(execFile);

/** Runs a compiled CLI as a user would, against this file's database; never throws. */
async function cli(
  name: 'migrate' | 'seed' | 'sync',
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [builtFile('shared', 'dist', 'cli', `${name}.js`), ...args], {
      env: { ...process.env, DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'error', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('command-line tools', () => {
  let pool: pg.Pool;
  let tmp: string;
  beforeAll(async () => {
    pool = testPool(2);
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-cli-'));
  });
  afterAll(async () => {
    await pool.end();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('migrate status / up / check report an up-to-date database', async () => {
    const status = await cli('migrate', ['status']);
    expect(status).toMatchObject({ code: 0 });
    expect(status.stdout).toMatch(/001\s+applied\s+001_initial_schema\.sql/);
    expect(status.stdout).toContain('database is up to date');
    expect(await cli('migrate', ['up'])).toMatchObject({ code: 0, stdout: 'database is up to date\n' });
    expect(await cli('migrate', ['check'])).toMatchObject({ code: 0 });
  });

  it('sync shapes: says when no process has recorded its versions yet, then lists what they recorded', async () => {
    const before = await cli('sync', ['shapes']);
    expect(before).toMatchObject({ code: 0 });
    expect(before.stdout).toBe(
      `no version recorded yet (no API or worker has run on this database); this release reads ${MODEL.map((e) => e.view).join(', ')}\n`,
    );
    await announceShapes(pool); // what an API or worker does when it starts
    const after = await cli('sync', ['shapes']);
    expect(after).toMatchObject({ code: 0 });
    for (const e of MODEL)
      expect(after.stdout).toMatch(new RegExp(`^${e.name}\\s+v${e.version}\\s+${e.view}\\s+ready\\s+all\\s+.*\\(this release\\)$`, 'm'));
  });

  it('migrate refuses an edited migration with exit code 1, naming the file', async () => {
    const dir = path.join(tmp, 'edited');
    await fs.cp(defaultMigrationsDir, dir, { recursive: true });
    await fs.appendFile(path.join(dir, '001_initial_schema.sql'), '\n-- edited\n');
    const up = await cli('migrate', ['up'], { MIGRATIONS_DIR: dir });
    expect(up.code).toBe(1);
    expect(up.stderr).toContain('migrations/001_initial_schema.sql changed after being applied');
    const check = await cli('migrate', ['check'], { MIGRATIONS_DIR: dir });
    expect(check.code).toBe(1);
    expect((await cli('migrate', ['status'], { MIGRATIONS_DIR: dir })).stdout).toMatch(/001\s+edited/);
  });

  it('migrate create adds the next numbered file', async () => {
    const dir = path.join(tmp, 'create');
    await fs.cp(defaultMigrationsDir, dir, { recursive: true });
    // After the highest number, whether or not the numbers below it are all taken.
    const highest = Math.max(...(await fs.readdir(dir)).map((f) => Number(f.slice(0, 3))));
    const created = await cli('migrate', ['create', 'Add tags'], { MIGRATIONS_DIR: dir });
    expect(created.code).toBe(0);
    const files = await fs.readdir(dir);
    const next = String(highest + 1).padStart(3, '0');
    expect(files).toContain(`${next}_add_tags.sql`);
  });

  it('usage and configuration errors exit 2 with a message naming the problem', async () => {
    const unknown = await cli('migrate', ['sideways']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown command "sideways"');
    expect((await cli('migrate', [])).code).toBe(2);
    const badUrl = await cli('migrate', ['status'], { DATABASE_URL: 'mysql://root@localhost/blog' });
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain('DATABASE_URL: must be a postgres:// or postgresql:// URL');
    const badPort = await cli('sync', ['verify'], { DATABASE_URL: '', EMBEDDED_PG_PORT: 'eighty' });
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain('EMBEDDED_PG_PORT');
    expect((await cli('sync', ['verify', '--fix'])).code).toBe(2);
    expect((await cli('seed', ['extra'])).code).toBe(2);
  });

  it('a database that cannot be reached exits 1 with the reason', async () => {
    const down = await cli('migrate', ['status'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nowhere' });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/ECONNREFUSED/);
  });

  it('seed, then sync verify finds no drift; a change behind the sync is reported and repaired', async () => {
    expect(await cli('seed', [])).toMatchObject({ code: 0, stdout: 'seeded 3 users, 3 posts, 4 comments\n' });
    expect(await cli('seed', [])).toMatchObject({ code: 0, stdout: 'seed data already present; nothing to do\n' });
    const clean = await cli('sync', ['verify']);
    expect(clean).toMatchObject({ code: 0 });
    // Its progress on stderr (no terminal: a line per entity type), as the rebuild's.
    for (const t of ['comment', 'post', 'user', 'tag'])
      expect(clean.stderr).toMatch(new RegExp(`verify ${t}\\s+done: [\\d,]+/[\\d,]+ rows`));

    // A write that skipped its sync (as a buggy command would), and an orphaned projection.
    await pool.query("UPDATE tb_user SET full_name = 'Robert Smith', updated_at = now() WHERE username = 'bob'");
    await pool.query(
      'INSERT INTO tv_comment (id, data, post_id, author_id, created_at) ' +
        "VALUES ('00000000-0000-0000-00ff-000000000001', '{}', gen_random_uuid(), gen_random_uuid(), now())",
    );
    const drift = await cli('sync', ['verify']);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(/user\s+0 missing, 1 stale, 0 orphaned/);
    // Bob's name is in his user row, and embedded in the post he wrote and in his comment.
    expect(drift.stdout).toMatch(/post\s+0 missing, 1 stale, 0 orphaned/);
    expect(drift.stdout).toMatch(/comment\s+0 missing, 1 stale, 1 orphaned/);
    expect(drift.stdout).toContain('00000000-0000-0000-00ff-000000000001');

    const repaired = await cli('sync', ['verify', '--repair']);
    expect(repaired.stdout).toContain('after repair: no drift');
    expect(repaired.code).toBe(0);
    const { rows } = await pool.query("SELECT data->'author'->>'fullName' AS name FROM tv_post WHERE data->'author'->>'username' = 'bob'");
    expect(rows).toEqual([{ name: 'Robert Smith' }]);
  });

  it('sync verify finds a kept count that differs from the rows; --repair recounts it', async () => {
    expect(await cli('sync', ['verify'])).toMatchObject({ code: 0 });
    await pool.query(
      "UPDATE tb_user_stats SET comment_count = comment_count + 5 WHERE user_id = (SELECT id FROM tb_user WHERE username = 'alice')",
    );
    const drift = await cli('sync', ['verify']);
    expect(drift.code).toBe(1);
    expect(drift.stdout).toMatch(/user\s+0 missing, 1 stale, 0 orphaned/);
    const repaired = await cli('sync', ['verify', '--repair']);
    expect(repaired.stdout).toContain('after repair: no drift');
    expect(repaired.code).toBe(0);
    const { rows } = await pool.query(
      "SELECT s.comment_count FROM tb_user u JOIN tb_user_stats s ON s.user_id = u.id WHERE u.username = 'alice'",
    );
    expect(rows).toEqual([{ comment_count: 1 }]);
  });

  it('sync sql <entity> prints every derived statement, each one PostgreSQL accepts as it is printed', async () => {
    for (const entity of ENTITY_TYPES) {
      const { code, stdout } = await cli('sync', ['sql', entity], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
      expect(code).toBe(0);
      const { table, view } = entityOf(entity);
      expect(stdout).toContain(`-- ${entity}: ${table} -> ${view}`);
      // Each section is `-- title` then one statement ending in ';' (the rebuild: LOCK, then the rebuild).
      const statements = stdout
        .split(/\n-- [^\n]*\n/)
        .slice(1)
        .flatMap((section) => section.split(/;\n(?=[A-Z])/))
        .map((sql) => sql.trim().replace(/;$/, ''))
        .filter((sql) => /^(SELECT|WITH|INSERT|LOCK)/.test(sql));
      expect(statements.length).toBeGreaterThanOrEqual(11);
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        for (const [i, sql] of statements.entries()) {
          // PREPARE parses, analyses and plans it against the migrated schema; LOCK cannot be prepared.
          if (sql.startsWith('LOCK')) await client.query(sql);
          else await client.query(`PREPARE derived_${i} AS ${sql}`);
        }
      } finally {
        await client.query('ROLLBACK');
        await client.query('DEALLOCATE ALL');
        client.release();
      }
    }
    const unknown = await cli('sync', ['sql', 'nothing']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('No entity "nothing"');
  });

  it('sync rebuild recomputes every projection', async () => {
    await pool.query('DELETE FROM tv_post');
    const rebuilt = await cli('sync', ['rebuild']);
    expect(rebuilt.code).toBe(0);
    expect(rebuilt.stdout).toMatch(/full post\s+3 entities, 3 written, 0 deleted/);
    expect(await cli('sync', ['verify'])).toMatchObject({ code: 0 });
  });
});
