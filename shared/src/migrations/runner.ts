import fs from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import { connectClient, inTransaction, type Queryable } from '../db/pool';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';
import { MigrationError, readMigrationFiles, type MigrationFile } from './files';
import { splitStatements, type SqlStatement } from './split';

/**
 * Key of the session advisory lock that serialises migrators: two processes starting at once both
 * wait here, and the second finds nothing left to do. (An arbitrary constant; it only has to differ
 * from other advisory locks taken on the same database.)
 */
const MIGRATION_LOCK_KEY = 7_100_523_001;

const CREATE_HISTORY_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    duration_ms integer     NOT NULL
  )`;

export type MigrationState = 'applied' | 'pending' | 'edited' | 'missing';

export interface MigrationStatus {
  version: number;
  name: string;
  file?: string;
  state: MigrationState;
  appliedAt?: Date;
}

export interface MigratorOptions {
  dir: string;
  logger?: Logger;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
  applied_at: Date;
}

export class Migrator {
  private readonly log: Logger;

  constructor(
    private readonly url: string,
    private readonly options: MigratorOptions,
  ) {
    this.log = options.logger ?? silentLogger;
  }

  /** Every known migration, on disk or in the history table, with its state. */
  async status(): Promise<MigrationStatus[]> {
    const files = await readMigrationFiles(this.options.dir);
    return this.withClient(async (client) => compare(files, await readApplied(client)));
  }

  /**
   * Applies pending migrations in order, each in its own transaction, holding the migration lock.
   * Refuses to run at all when an applied file was edited or deleted.
   */
  async up(): Promise<MigrationFile[]> {
    const files = await readMigrationFiles(this.options.dir);
    return this.withClient(async (client) => {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
      try {
        await client.query(CREATE_HISTORY_TABLE);
        const states = compare(files, await readApplied(client));
        assertHistoryIntact(states);
        const pending = files.filter((f) => states.find((s) => s.version === f.version)?.state === 'pending');
        // Files without a transaction are split before anything is applied: one that cannot be split is refused up front.
        const split = new Map(pending.filter((f) => !f.transactional).map((f) => [f, splitStatements(f.sql, f.file)]));
        for (const file of pending) {
          const statements = split.get(file);
          await (statements ? this.applyWithoutTransaction(client, file, statements) : this.apply(client, file));
        }
        return pending;
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
      }
    });
  }

  /** Throws a MigrationError unless every file is applied and unedited. */
  async check(): Promise<void> {
    assertMigrationsCurrent(await this.status());
  }

  /**
   * check() for a readiness probe: on a connection of the caller's pool (no connection of its own
   * per probe), against the migration files as they were when this process first looked. They
   * ship with the process and do not change while it runs; the history table is read every time.
   */
  async checkOn(db: Queryable): Promise<void> {
    assertMigrationsCurrent(await this.statusOn(db));
  }

  /** status() on a connection of the caller's pool, against the files as checkOn() reads them. */
  async statusOn(db: Queryable): Promise<MigrationStatus[]> {
    this.files ??= readMigrationFiles(this.options.dir).catch((err: unknown) => {
      this.files = undefined;
      throw err;
    });
    return compare(await this.files, await readApplied(db));
  }

  /** The files checkOn() compares with, read once. */
  private files: Promise<MigrationFile[]> | undefined;

  /** A file in one transaction, recorded in the same transaction. */
  private async apply(client: pg.Client, file: MigrationFile): Promise<void> {
    const started = performance.now();
    this.log.info({ migration: file.file }, 'applying migration');
    try {
      await inTransaction(client, async () => {
        await client.query(file.sql);
        await record(client, file, started);
      });
    } catch (err) {
      throw new MigrationError(`Migration ${file.file} failed and was rolled back: ${describe(err)}`, { cause: err });
    }
  }

  /**
   * A `-- migrate:no-transaction` file, one statement at a time: sent as one query string,
   * PostgreSQL would run its statements as one implicit transaction, where CREATE INDEX
   * CONCURRENTLY and the like are refused. Recorded once every statement has run.
   */
  private async applyWithoutTransaction(client: pg.Client, file: MigrationFile, statements: SqlStatement[]): Promise<void> {
    const started = performance.now();
    this.log.info({ migration: file.file, statements: statements.length }, 'applying migration without a transaction');
    for (const [index, statement] of statements.entries()) {
      try {
        await client.query(statement.text);
      } catch (err) {
        throw new MigrationError(
          `Migration ${file.file} failed at statement ${index + 1} of ${statements.length} (line ${statement.line}): ${describe(err)}. ` +
            `It runs without a transaction, so the ${index} statement(s) before it stay applied: ` +
            'fix the file so that running it again is safe (IF NOT EXISTS; drop an index left INVALID), then migrate again.',
          { cause: err },
        );
      }
    }
    await record(client, file, started);
  }

  private async withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = await connectClient({ connectionString: this.url, application_name: 'blog-migrate' });
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }
}

function record(client: pg.Client, file: MigrationFile, started: number): Promise<unknown> {
  return client.query('INSERT INTO schema_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)', [
    file.version,
    file.name,
    file.checksum,
    Math.round(performance.now() - started),
  ]);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function readApplied(client: Queryable): Promise<AppliedRow[]> {
  const { rows: exists } = await client.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t");
  if (!exists[0]?.t) return [];
  const { rows } = await client.query<AppliedRow>('SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version');
  return rows;
}

function compare(files: MigrationFile[], applied: AppliedRow[]): MigrationStatus[] {
  const byVersion = new Map(applied.map((a) => [a.version, a]));
  const result: MigrationStatus[] = files.map((f) => {
    const a = byVersion.get(f.version);
    if (!a) return { version: f.version, name: f.name, file: f.file, state: 'pending' };
    return {
      version: f.version,
      name: f.name,
      file: f.file,
      state: a.checksum === f.checksum ? 'applied' : 'edited',
      appliedAt: a.applied_at,
    };
  });
  const onDisk = new Set(files.map((f) => f.version));
  for (const a of applied) {
    if (!onDisk.has(a.version)) {
      result.push({ version: a.version, name: a.name, state: 'missing', appliedAt: a.applied_at });
    }
  }
  return result.sort((x, y) => x.version - y.version);
}

/** Throws a MigrationError unless every migration of `states` is applied and unedited. */
export function assertMigrationsCurrent(states: MigrationStatus[]): void {
  assertHistoryIntact(states);
  const pending = states.filter((s) => s.state === 'pending');
  if (pending.length) {
    throw new MigrationError(`${pending.length} pending migration(s): ${pending.map((p) => p.file).join(', ')}`);
  }
}

function assertHistoryIntact(states: MigrationStatus[]): void {
  const edited = states.filter((s) => s.state === 'edited');
  if (edited.length) {
    throw new MigrationError(
      `Refusing to migrate: ${edited.map((e) => `migrations/${e.file}`).join(', ')} changed after being applied ` +
        '(checksum differs from the one recorded). Applied migrations must not be edited: restore the file ' +
        'and put the change in a new migration.',
    );
  }
  const missing = states.filter((s) => s.state === 'missing');
  if (missing.length) {
    throw new MigrationError(
      `Refusing to migrate: applied migration(s) ${missing.map((m) => `${m.version} (${m.name})`).join(', ')} ` +
        'no longer exist in the migrations folder. Restore them.',
    );
  }
  const pendingBeforeApplied = states.find(
    (s, i) => s.state === 'pending' && states.slice(i + 1).some((later) => later.state === 'applied'),
  );
  if (pendingBeforeApplied) {
    throw new MigrationError(
      `Refusing to migrate: ${pendingBeforeApplied.file} is older than migrations already applied. ` +
        'Renumber it after the newest applied migration.',
    );
  }
}

/** Creates the next numbered, empty migration file and returns its path. */
export async function createMigrationFile(dir: string, name: string): Promise<string> {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!slug) throw new MigrationError(`"${name}" is not a usable migration name (use letters, digits, underscores).`);
  const files = await readMigrationFiles(dir);
  const next = (files.at(-1)?.version ?? 0) + 1;
  const file = path.join(dir, `${String(next).padStart(3, '0')}_${slug}.sql`);
  await fs.writeFile(file, `-- ${String(next).padStart(3, '0')}: ${name}\n-- Runs in one transaction. No triggers: sync is explicit.\n\n`, {
    flag: 'wx',
  });
  return file;
}
