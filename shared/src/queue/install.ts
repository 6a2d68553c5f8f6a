import { PgBoss } from 'pg-boss';
import { SYNC_DEAD_LETTER_QUEUE, SYNC_QUEUE, syncQueueOptions } from './queues';

/** The PostgreSQL schema that holds pg-boss's tables (created by pg-boss itself). */
export const QUEUE_SCHEMA = 'pgboss';

/**
 * Creates or upgrades pg-boss's own schema (pg-boss writes it; we never copy its SQL) and the
 * queues this project uses. Idempotent; run by `migrate up` after our own migrations.
 */
export async function installQueueSchema(url: string): Promise<void> {
  const boss = new PgBoss({
    connectionString: url,
    schema: QUEUE_SCHEMA,
    application_name: 'blog-migrate',
    max: 2,
    migrate: true,
    supervise: false,
    schedule: false,
    registerInstance: false,
  });
  boss.on('error', () => undefined); // start() rejects with the same error
  await boss.start();
  try {
    const existing = new Set((await boss.getQueues()).map((q) => q.name));
    if (!existing.has(SYNC_DEAD_LETTER_QUEUE)) await boss.createQueue(SYNC_DEAD_LETTER_QUEUE);
    if (!existing.has(SYNC_QUEUE)) await boss.createQueue(SYNC_QUEUE, syncQueueOptions);
    else await boss.updateQueue(SYNC_QUEUE, syncQueueOptions);
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
}

/** pg-boss's schema version in the database, or null when it is not installed. */
export async function queueSchemaInstalled(client: { query: (sql: string) => Promise<{ rows: unknown[] }> }): Promise<boolean> {
  const { rows } = await client.query(`SELECT to_regclass('${QUEUE_SCHEMA}.version') IS NOT NULL AS installed`);
  return Boolean((rows[0] as { installed?: boolean } | undefined)?.installed);
}
