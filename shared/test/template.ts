import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { withDatabase } from '../src/db/database';
import { defaultMigrationsDir } from '../src/db/paths';
import { Migrator } from '../src/migrations/runner';
import { installQueueSchema } from '../src/queue/install';

const TEMPLATE_LOCK_KEY = 7_100_523_002;
/** Templates of other migration sets older than this are dropped. */
const STALE_TEMPLATE_MS = 3 * 24 * 3600 * 1000;

/**
 * The migrated template every test database is cloned from. Its name carries a hash of the
 * migrations and of pg-boss's version, so an edit makes a new template; stale ones are dropped.
 */
export async function ensureTemplate(adminUrl: string): Promise<string> {
  const name = `blog_tpl_${fingerprint()}`;
  const admin = new pg.Client({ connectionString: adminUrl, application_name: 'blog-test-setup' });
  await admin.connect();
  try {
    await admin.query('SELECT pg_advisory_lock($1)', [TEMPLATE_LOCK_KEY]);
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) {
      const building = `${name}_build`;
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(building)} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(building)}`);
      await admin.query(
        `COMMENT ON DATABASE ${admin.escapeIdentifier(building)} IS 'blog test template, created ${new Date().toISOString()}'`,
      );
      const url = withDatabase(adminUrl, building);
      await new Migrator(url, { dir: defaultMigrationsDir }).up();
      await installQueueSchema(url);
      // Renaming is atomic: a template that exists under its final name is complete.
      await admin.query(`ALTER DATABASE ${admin.escapeIdentifier(building)} RENAME TO ${admin.escapeIdentifier(name)}`);
    }
    await dropStale(admin, name);
    return name;
  } finally {
    await admin.query('SELECT pg_advisory_unlock($1)', [TEMPLATE_LOCK_KEY]).catch(() => undefined);
    await admin.end();
  }
}

/**
 * Keeps the server tidy: drops test databases whose test process no longer exists, and templates
 * of other migration sets once they are a few days old (another checkout, on another branch, may
 * be using a different template on the same server right now).
 */
async function dropStale(admin: pg.Client, keep: string): Promise<void> {
  const { rows } = await admin.query<{ datname: string; note: string | null }>(
    `SELECT datname, shobj_description(oid, 'pg_database') AS note FROM pg_database
      WHERE datname LIKE 'blog\\_tpl\\_%' OR datname LIKE 'blog\\_test\\_%'`,
  );
  for (const { datname, note } of rows) {
    if (datname === keep) continue;
    const pid = /^blog_test_(\d+)_/.exec(datname)?.[1];
    if (pid && processAlive(Number(pid))) continue;
    if (!pid) {
      const created = Date.parse(/created (\S+)/.exec(note ?? '')?.[1] ?? '');
      if (!(Date.now() - created > STALE_TEMPLATE_MS)) continue;
    }
    // A template another run is cloning right now cannot be dropped; it goes next time.
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(datname)}`).catch(() => undefined);
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function fingerprint(): string {
  const hash = createHash('sha256');
  for (const file of fs.readdirSync(defaultMigrationsDir).sort()) {
    hash.update(file).update(fs.readFileSync(path.join(defaultMigrationsDir, file)));
  }
  hash.update(fs.readFileSync(path.join(__dirname, '..', 'src', 'queue', 'queues.ts')));
  hash.update(String(requirePgBossVersion()));
  return hash.digest('hex').slice(0, 12);
}

function requirePgBossVersion(): string {
  const pkg = path.join(path.dirname(require.resolve('pg-boss')), '..', 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}
