import { createPool } from './pool';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';
import { Migrator } from '../migrations/runner';
import { installQueueSchema } from '../queue/install';
import { isEmpty, seed } from '../seed/run';
import { defaultMigrationsDir } from './paths';
import { prepareShapes } from '../sync/shapes';

/**
 * Brings a database to the state the services need: our migrations, pg-boss's schema and queues,
 * the tables of the documents' versions this release declares (shapes.ts, prepareShapes), and (when
 * `seedWhenEmpty` and tb_user has no rows) the sample data.
 */
export async function prepareDatabase(
  url: string,
  options: { seedWhenEmpty: boolean; migrationsDir?: string; logger?: Logger },
): Promise<{ migrated: string[]; seeded: boolean }> {
  const logger = options.logger ?? silentLogger;
  const applied = await new Migrator(url, { dir: options.migrationsDir ?? defaultMigrationsDir, logger }).up();
  await installQueueSchema(url);
  const pool = createPool(url, { applicationName: 'blog-migrate', max: 2 });
  let seeded = false;
  try {
    for (const t of await prepareShapes(pool)) logger.info(t, `created ${t.table} beside ${t.from}: the workers build it`);
    if (options.seedWhenEmpty && (await isEmpty(pool))) {
      await seed(pool);
      seeded = true;
      logger.info('empty database: sample data seeded');
    }
  } finally {
    await pool.end();
  }
  return { migrated: applied.map((m) => m.file), seeded };
}
