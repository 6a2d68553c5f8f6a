#!/usr/bin/env node
import { openDatabase, readDatabaseConfig } from '../db/database';
import { defaultMigrationsDir } from '../db/paths';
import { createDbRoles, DEFAULT_API_ROLE, DEFAULT_WORKER_ROLE } from '../db/roles';
import { createLogger } from '../log/logger';
import { createMigrationFile, Migrator } from '../migrations/runner';
import { installQueueSchema } from '../queue/install';
import { createPool } from '../db/pool';
import { prepareShapes } from '../sync/shapes';
import { EXIT, runCli, UsageError } from './run';

const USAGE = `Usage: npm run migrate -- <command>

Commands:
  up              apply pending migrations, each in its own transaction, then install or upgrade
                  pg-boss's schema and queues, then create the table of each version of the
                  documents' shapes this release declares and the database lacks (the workers
                  build it; see \`npm run sync -- shapes\`)
  status          list every migration: applied (when), pending, edited or missing
  check           exit 0 when the database is up to date, 1 otherwise (for deploy scripts)
  create <name>   add the next numbered, empty migration file to migrations/
  roles           create or update the least-privilege roles of the API and the worker and their
                  grants (after \`up\`; idempotent). Names: BLOG_API_DB_ROLE (default blog_api),
                  BLOG_WORKER_DB_ROLE (default blog_worker). Passwords: BLOG_API_DB_PASSWORD,
                  BLOG_WORKER_DB_PASSWORD (LOGIN roles); a role without one is NOLOGIN (a group role)

Connects to DATABASE_URL; without it, to the embedded PostgreSQL (started and stopped for the command).
MIGRATIONS_DIR overrides the folder (default: migrations/ at the repository root).`;

runCli(async (argv) => {
  const [command, ...rest] = argv;
  const dir = process.env.MIGRATIONS_DIR || defaultMigrationsDir;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return command ? EXIT.ok : EXIT.usage;
  }
  if (command === 'create') {
    const name = rest.join(' ').trim();
    if (!name) throw new UsageError(`create needs a name: npm run migrate -- create add_tags\n\n${USAGE}`);
    process.stdout.write(`created ${await createMigrationFile(dir, name)}\n`);
    return EXIT.ok;
  }
  if (!['up', 'status', 'check', 'roles'].includes(command)) throw new UsageError(`Unknown command "${command}".\n\n${USAGE}`);

  const logger = createLogger('blog-migrate', process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase(readDatabaseConfig(), logger);
  try {
    const migrator = new Migrator(db.url, { dir, logger });
    if (command === 'up') {
      const applied = await migrator.up();
      await installQueueSchema(db.url);
      const pool = createPool(db.url, { applicationName: 'blog-migrate', max: 1 });
      const created = await prepareShapes(pool).finally(() => pool.end());
      process.stdout.write(applied.length ? `applied ${applied.map((m) => m.file).join(', ')}\n` : 'database is up to date\n');
      for (const t of created) {
        process.stdout.write(
          `created ${t.table} (${t.entityType} v${t.version}) beside ${t.from}: ` +
            'the workers build it; `npm run sync -- shapes` shows its progress\n',
        );
      }
      return EXIT.ok;
    }
    if (command === 'roles') {
      const api = process.env.BLOG_API_DB_ROLE || DEFAULT_API_ROLE;
      const worker = process.env.BLOG_WORKER_DB_ROLE || DEFAULT_WORKER_ROLE;
      await migrator.check().catch((err: unknown) => {
        throw new UsageError(`Migrate first (npm run migrate -- up): ${(err as Error).message}`);
      });
      await createDbRoles(db.url, {
        api: { name: api, ...(process.env.BLOG_API_DB_PASSWORD ? { password: process.env.BLOG_API_DB_PASSWORD } : {}) },
        worker: { name: worker, ...(process.env.BLOG_WORKER_DB_PASSWORD ? { password: process.env.BLOG_WORKER_DB_PASSWORD } : {}) },
      });
      const kind = (password: string | undefined) => (password ? 'LOGIN' : 'NOLOGIN');
      process.stdout.write(
        `roles ready: ${api} (${kind(process.env.BLOG_API_DB_PASSWORD)}), ${worker} (${kind(process.env.BLOG_WORKER_DB_PASSWORD)})\n`,
      );
      return EXIT.ok;
    }
    if (command === 'status') {
      const states = await migrator.status();
      for (const s of states) {
        const when = s.appliedAt ? s.appliedAt.toISOString() : '';
        process.stdout.write(`${String(s.version).padStart(3, '0')}  ${s.state.padEnd(8)} ${(s.file ?? s.name).padEnd(40)} ${when}\n`);
      }
      const bad = states.filter((s) => s.state !== 'applied').length;
      process.stdout.write(bad ? `${bad} migration(s) need attention\n` : 'database is up to date\n');
      return EXIT.ok;
    }
    await migrator.check();
    process.stdout.write('database is up to date\n');
    return EXIT.ok;
  } finally {
    await db.close();
  }
});
