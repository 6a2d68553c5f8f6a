import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createEmptyDatabase } from '../../test/helpers';
import { defaultMigrationsDir } from '../db/paths';
import { createPool } from '../db/pool';
import { checksum, MigrationError, readMigrationFiles } from './files';
import { Migrator } from './runner';
import { splitStatements } from './split';

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A private copy of the real migrations folder, plus extra files. */
async function migrationsCopy(extra: Record<string, string> = {}): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-migrations-'));
  for (const f of await fs.readdir(defaultMigrationsDir)) {
    await fs.copyFile(path.join(defaultMigrationsDir, f), path.join(dir, f));
  }
  for (const [name, sql] of Object.entries(extra)) await fs.writeFile(path.join(dir, name), sql);
  return dir;
}

describe('migration runner', () => {
  let db: { url: string; drop: () => Promise<void> };
  const dirs: string[] = [];

  beforeEach(async () => {
    db = await createEmptyDatabase();
  });
  afterEach(async () => {
    await db.drop();
  });
  afterAll(async () => {
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  });

  const tempDir = async (extra: Record<string, string> = {}) => {
    const dir = await migrationsCopy(extra);
    dirs.push(dir);
    return dir;
  };

  it('applies every migration to an empty database and records each with its checksum', async () => {
    const files = await readMigrationFiles(defaultMigrationsDir);
    expect(files.length).toBeGreaterThan(0);
    const applied = await new Migrator(db.url, { dir: defaultMigrationsDir }).up();
    expect(applied.map((m) => m.file)).toEqual(files.map((f) => f.file));

    const rows = await query<{ version: number; checksum: string }>(
      db.url,
      'SELECT version, checksum FROM schema_migrations ORDER BY version',
    );
    expect(rows).toEqual(files.map((f) => ({ version: f.version, checksum: checksum(f.sql) })));
    const tables = await query<{ t: string }>(
      db.url,
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    expect(tables.map((t) => t.t)).toEqual(
      expect.arrayContaining(['tb_user', 'tb_post', 'tb_comment', 'tv_user', 'tv_post', 'tv_comment', 'sync_log']),
    );
    const status = await new Migrator(db.url, { dir: defaultMigrationsDir }).status();
    expect(status.every((s) => s.state === 'applied')).toBe(true);
  });

  it('does nothing when run again', async () => {
    const migrator = new Migrator(db.url, { dir: defaultMigrationsDir });
    await migrator.up();
    const before = await query(db.url, 'SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version');
    expect(await migrator.up()).toEqual([]);
    expect(await query(db.url, 'SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version')).toEqual(before);
    await expect(migrator.check()).resolves.toBeUndefined();
  });

  it('refuses to run when an applied file was edited, naming the file, and applies nothing', async () => {
    const dir = await tempDir();
    await new Migrator(db.url, { dir }).up();
    const first = (await readMigrationFiles(dir))[0]!;
    await fs.appendFile(path.join(dir, first.file), '\n-- an innocent-looking edit\n');
    await fs.writeFile(path.join(dir, '900_later.sql'), 'CREATE TABLE later_table (id int);');

    const migrator = new Migrator(db.url, { dir });
    await expect(migrator.up()).rejects.toThrow(MigrationError);
    await expect(migrator.up()).rejects.toThrow(`migrations/${first.file}`);
    await expect(migrator.check()).rejects.toThrow(first.file);
    expect(await query(db.url, "SELECT to_regclass('later_table') AS t")).toEqual([{ t: null }]);
    expect((await migrator.status()).find((s) => s.version === first.version)?.state).toBe('edited');
  });

  it("checkOn (the readiness probe): on the caller's pool, files read once, the history read every time", async () => {
    const dir = await tempDir();
    const migrator = new Migrator(db.url, { dir });
    await migrator.up();
    const pool = createPool(db.url, { applicationName: 'runner-spec', max: 1 });
    try {
      await expect(migrator.checkOn(pool)).resolves.toBeUndefined();
      // A file added to the folder while the process runs is not this process's: not looked at again...
      await fs.writeFile(path.join(dir, '900_added_later.sql'), 'CREATE TABLE added_later (id int);');
      await expect(migrator.checkOn(pool)).resolves.toBeUndefined();
      // ...(check(), which the CLI runs, reads the folder every time)...
      await expect(migrator.check()).rejects.toThrow('900_added_later.sql');
      // ...but the database's history is read on every probe.
      const last = (await readMigrationFiles(dir)).filter((f) => f.version < 900).at(-1)!;
      await pool.query('DELETE FROM schema_migrations WHERE version = $1', [last.version]);
      await expect(migrator.checkOn(pool)).rejects.toThrow(`1 pending migration(s): ${last.file}`);
    } finally {
      await pool.end();
    }
  });

  it('refuses when an applied migration no longer exists on disk', async () => {
    const dir = await tempDir({ '900_extra.sql': 'CREATE TABLE extra_table (id int);' });
    await new Migrator(db.url, { dir }).up();
    await fs.rm(path.join(dir, '900_extra.sql'));
    await expect(new Migrator(db.url, { dir }).up()).rejects.toThrow(/900 \(extra\).*no longer exist/);
  });

  it('rolls back a failing migration entirely and does not record it', async () => {
    const dir = await tempDir({
      '900_broken.sql': 'CREATE TABLE half_done (id int);\nINSERT INTO half_done VALUES (1);\nSELECT no_such_function();',
    });
    await expect(new Migrator(db.url, { dir }).up()).rejects.toThrow(/900_broken\.sql failed and was rolled back/);
    expect(await query(db.url, "SELECT to_regclass('half_done') AS t")).toEqual([{ t: null }]);
    expect(await query(db.url, 'SELECT version FROM schema_migrations WHERE version = 900')).toEqual([]);
    // The files before it were applied in their own transactions and stay applied.
    const real = (await readMigrationFiles(defaultMigrationsDir)).length;
    expect((await query(db.url, 'SELECT count(*)::int AS n FROM schema_migrations'))[0]).toEqual({ n: real });
  });

  it('applies each file once when two migrators start at the same moment', async () => {
    // The slow file makes the race window wide: without the lock both would apply it.
    const dir = await tempDir({
      '900_slow.sql': 'SELECT pg_sleep(0.5);\nCREATE TABLE raced (id int);\nINSERT INTO raced VALUES (1);',
    });
    const [a, b] = await Promise.all([new Migrator(db.url, { dir }).up(), new Migrator(db.url, { dir }).up()]);
    const total = (await readMigrationFiles(dir)).length;
    expect(a.length + b.length).toBe(total);
    expect(Math.min(a.length, b.length)).toBe(0);
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM raced')).toEqual([{ n: 1 }]);
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM schema_migrations')).toEqual([{ n: total }]);
  });

  it('refuses malformed file names and duplicate versions', async () => {
    const bad = await tempDir({ 'add-things.sql': 'SELECT 1;' });
    await expect(readMigrationFiles(bad)).rejects.toThrow(/add-things\.sql is not of the form NNN_name\.sql/);
    const dup = await tempDir({ '001_again.sql': 'SELECT 1;' });
    await expect(readMigrationFiles(dup)).rejects.toThrow(/Two migrations share version 1/);
  });

  it('runs a -- migrate:no-transaction file statement by statement (two CREATE INDEX CONCURRENTLY)', async () => {
    const dir = await tempDir({
      '900_concurrent_indexes.sql': [
        '-- migrate:no-transaction',
        '-- Two indexes built without blocking writes; a ; in a comment does not end a statement.',
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_test_post_title ON tb_post (title);',
        '/* a block comment; /* nested; */ still a comment; */',
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_test_comment_content ON tb_comment (content) WHERE content <> ';';",
        'DO $body$ BEGIN PERFORM 1; PERFORM 2; END $body$;',
        "COMMENT ON INDEX idx_test_post_title IS E'it''s \\'quoted\\'; really';",
      ].join('\n'),
    });
    const applied = await new Migrator(db.url, { dir }).up();
    expect(applied.map((f) => f.file)).toContain('900_concurrent_indexes.sql');
    const indexes = await query<{ name: string; valid: boolean }>(
      db.url,
      `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE c.relname LIKE 'idx_test_%' ORDER BY 1`,
    );
    expect(indexes).toEqual([
      { name: 'idx_test_comment_content', valid: true },
      { name: 'idx_test_post_title', valid: true },
    ]);
    expect(await query(db.url, "SELECT obj_description('idx_test_post_title'::regclass) AS d")).toEqual([{ d: "it's 'quoted'; really" }]);
    expect(await query(db.url, 'SELECT version FROM schema_migrations WHERE version = 900')).toEqual([{ version: 900 }]);
  });

  it('a failing statement of a no-transaction file: named with its line, earlier ones kept, the file not recorded', async () => {
    const dir = await tempDir({
      '900_half.sql':
        '-- migrate:no-transaction\nCREATE TABLE half_kept (id int);\n\nSELECT no_such_function();\nCREATE TABLE never_made (id int);\n',
    });
    await expect(new Migrator(db.url, { dir }).up()).rejects.toThrow(
      new RegExp(
        /900_half\.sql failed at statement 2 of 3 \(line 4\): function no_such_function\(\) does not exist\. /.source +
          /It runs without a transaction, so the 1 statement\(s\) before it stay applied/.source,
      ),
    );
    expect(await query(db.url, "SELECT to_regclass('half_kept')::text AS a, to_regclass('never_made')::text AS b")).toEqual([
      { a: 'half_kept', b: null },
    ]);
    expect(await query(db.url, 'SELECT version FROM schema_migrations WHERE version = 900')).toEqual([]);
  });

  it('refuses a no-transaction file it cannot split before applying anything', async () => {
    const atomic = await tempDir({
      '900_atomic.sql':
        '-- migrate:no-transaction\nCREATE TABLE before_atomic (id int);\n' +
        'CREATE FUNCTION one() RETURNS int LANGUAGE sql\nBEGIN ATOMIC SELECT 1; END;\n',
    });
    await expect(new Migrator(db.url, { dir: atomic }).up()).rejects.toThrow(
      new RegExp(
        /900_atomic\.sql, line 3: a BEGIN ATOMIC body cannot be split into statements; /.source +
          /put it in a migration without -- migrate:no-transaction/.source,
      ),
    );
    // Nothing was applied, not even the migrations before it.
    expect(await query(db.url, "SELECT to_regclass('schema_migrations')::text AS t")).toEqual([{ t: 'schema_migrations' }]);
    expect(await query(db.url, 'SELECT count(*)::int AS n FROM schema_migrations')).toEqual([{ n: 0 }]);
    const open = await tempDir({ '900_open.sql': "-- migrate:no-transaction\nSELECT 1;\nSELECT 'not closed;\n" });
    await expect(new Migrator(db.url, { dir: open }).up()).rejects.toThrow(
      /900_open\.sql: a quoted string starting on line 3 is not closed/,
    );
  });

  it('splits SQL at the semicolons that end statements only', () => {
    const sql = [
      'SELECT \'a;b\', "we;ird" FROM t; -- trailing; comment',
      "SELECT $$x;y$$, $q$ $$; $q$, a$b, $1, E'\\';', 'c:\\'; SELECT 2;",
      ';;  /* only a comment; */ ;',
      'SELECT 3',
    ].join('\n');
    expect(splitStatements(sql, 'x.sql')).toEqual([
      { text: 'SELECT \'a;b\', "we;ird" FROM t', line: 1 },
      { text: "SELECT $$x;y$$, $q$ $$; $q$, a$b, $1, E'\\';', 'c:\\'", line: 2 },
      { text: 'SELECT 2', line: 2 },
      { text: 'SELECT 3', line: 4 },
    ]);
  });
});
