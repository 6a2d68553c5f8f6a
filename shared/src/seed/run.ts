import type pg from 'pg';
import { withTransaction } from '../db/pool';
import { SyncEngine } from '../sync/engine';
import { planSync } from '../sync/dependencies';
import { createUserStats } from '../sync/user-stats';
import { insertSeedRows, type SeedResult } from './seed';

/**
 * Inserts the sample data and syncs what it inserted, in one transaction: the seed's rows and their
 * projections appear together. A second run inserts nothing and therefore syncs nothing.
 */
export async function seed(pool: pg.Pool, sync = new SyncEngine(pool)): Promise<SeedResult> {
  return withTransaction(pool, async (client) => {
    const inserted = await insertSeedRows(client);
    await createUserStats(client, inserted.users);
    await sync.refreshIn(client, await planSync(client, { user: inserted.users, post: inserted.posts, comment: inserted.comments }));
    return inserted;
  });
}

/** True when tb_user has no rows (a new database): `npm start` seeds only then. */
export async function isEmpty(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query<{ empty: boolean }>('SELECT NOT EXISTS (SELECT 1 FROM tb_user) AS empty');
  return rows[0]?.empty ?? true;
}
