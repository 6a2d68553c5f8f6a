#!/usr/bin/env node
import { openDatabase, readDatabaseConfig } from '../db/database';
import { createPool } from '../db/pool';
import { createLogger } from '../log/logger';
import { seed } from '../seed/run';
import { EXIT, runCli, UsageError } from './run';

runCli(async (argv) => {
  if (argv.length) throw new UsageError('Usage: npm run seed  (inserts the sample users, posts and comments; safe to repeat)');
  const logger = createLogger('blog-seed', process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase(readDatabaseConfig(), logger);
  const pool = createPool(db.url, { applicationName: 'blog-seed', max: 2 });
  try {
    const r = await seed(pool);
    const total = r.users.length + r.posts.length + r.comments.length;
    process.stdout.write(
      total
        ? `seeded ${r.users.length} users, ${r.posts.length} posts, ${r.comments.length} comments\n`
        : 'seed data already present; nothing to do\n',
    );
    return EXIT.ok;
  } finally {
    await pool.end();
    await db.close();
  }
});
