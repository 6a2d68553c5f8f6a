import type pg from 'pg';
import { QUEUE_SCHEMA } from '../queue/install';
import { connectClient, inTransaction } from './pool';
import { commandTables, MODEL } from '../model';

/**
 * Least-privilege database roles for the API and the worker (`npm run migrate -- roles`).
 *
 * Each role gets exactly the privileges its service's statements need on the migrated schema, and
 * nothing else: no ownership (so no DROP, ALTER or TRUNCATE of any table), no CREATE on any schema,
 * no superuser, CREATEDB, CREATEROLE or REPLICATION. Idempotent: a re-run first revokes what the
 * roles hold on the tables of public and pgboss, then grants this list again (so it is also how
 * the grants follow a migration that adds a table).
 *
 * With a password the role is LOGIN (the service connects as it); without one it is a NOLOGIN group
 * role, and an operator grants it to login roles of their own (`GRANT blog_api TO app_login`).
 * Roles are cluster-wide; the grants are per database (the one connected to).
 */
export interface DbRole {
  name: string;
  /** LOGIN with this password; undefined: NOLOGIN (a group role). */
  password?: string;
}

export interface DbRolesOptions {
  api: DbRole;
  worker: DbRole;
}

export const DEFAULT_API_ROLE = 'blog_api';
export const DEFAULT_WORKER_ROLE = 'blog_worker';

/** The command side's tables and the projections, from the entities' declarations. */
const TB = commandTables().join(', ');
const TV = MODEL.map((e) => e.view).join(', ');
const DML = 'SELECT, INSERT, UPDATE, DELETE';

/**
 * The grants, per service, as statement templates (%1$I is the role). docs/security.md's table lists the
 * same. pg-boss: DML on its tables (not DDL): send, fetch, complete, fail, the instance registry
 * and the worker's maintenance all go through them, and per-queue partitions are tables of their own.
 */
const COMMON = [
  'GRANT CONNECT ON DATABASE %2$I TO %1$I',
  'GRANT USAGE ON SCHEMA public TO %1$I',
  `GRANT USAGE ON SCHEMA ${QUEUE_SCHEMA} TO %1$I`,
  `GRANT ${DML} ON ALL TABLES IN SCHEMA ${QUEUE_SCHEMA} TO %1$I`,
  `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ${QUEUE_SCHEMA} TO %1$I`,
  `GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ${QUEUE_SCHEMA} TO %1$I`,
  // Job partitions of queues created later (by the migrating role) get the same DML.
  `ALTER DEFAULT PRIVILEGES IN SCHEMA ${QUEUE_SCHEMA} GRANT ${DML} ON TABLES TO %1$I`,
];

export const ROLE_GRANTS = {
  api: [
    ...COMMON,
    // commands write tb_*; INLINE syncs write tv_*; reads and previews read both
    `GRANT ${DML} ON ${TB} TO %1$I`,
    `GRANT ${DML} ON ${TV} TO %1$I`,
    // INLINE syncs log their batches; /metrics and syncMetrics read the log and the lag histograms
    'GRANT SELECT, INSERT ON sync_log TO %1$I',
    'GRANT SELECT ON sync_lag TO %1$I',
    // /ready checks that every migration is applied
    'GRANT SELECT ON schema_migrations TO %1$I',
    // /ready checks that its projection tables are built; the API says it runs (shapes.ts)
    'GRANT SELECT, INSERT, UPDATE ON sync_shape TO %1$I',
    // commands append to the event log and `events` reads it; nothing may change or remove an
    // event (identity values are drawn without a grant on the sequence)
    'GRANT SELECT, INSERT ON event_log, event_log_entity TO %1$I',
    // QUEUED and DEFERRED commands record their sync jobs in the outbox; sync tokens look there
    'GRANT SELECT, INSERT ON sync_outbox TO %1$I',
    // sync tokens look up which merged job carries a write
    'GRANT SELECT ON sync_relayed TO %1$I',
  ],
  worker: [
    ...COMMON,
    // batch syncs read tb_* and write tv_*, log to sync_log, add to and prune sync_lag
    `GRANT SELECT ON ${TB} TO %1$I`,
    `GRANT ${DML} ON ${TV} TO %1$I`,
    'GRANT SELECT, INSERT ON sync_log TO %1$I',
    `GRANT ${DML} ON sync_lag TO %1$I`,
    // builds and follows the versions of the documents' shapes (shapes.ts): its progress, its
    // watermark, and the start of the oldest open transaction (pg_stat_activity shows it for other
    // roles' sessions only to members of pg_read_all_stats, a read-only monitoring role)
    'GRANT SELECT, INSERT, UPDATE ON sync_shape TO %1$I',
    'GRANT pg_read_all_stats TO %1$I',
    // deletes events older than EVENT_RETENTION_DAYS
    'GRANT SELECT, DELETE ON event_log, event_log_entity TO %1$I',
    // relays the outbox to pg-boss (its rows locked FOR UPDATE SKIP LOCKED, which takes the UPDATE
    // privilege; no statement updates them); the fan-outs it expands are recorded there too
    'GRANT SELECT, INSERT, UPDATE, DELETE ON sync_outbox TO %1$I',
    // the relay records which merged job carries each write; settling the job removes its rows
    'GRANT SELECT, INSERT, DELETE ON sync_relayed TO %1$I',
  ],
} as const;

/** Before granting: what the role holds on tables is revoked, so the result is exactly the list. */
const RESET = [
  'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %1$I',
  `REVOKE ALL ON ALL TABLES IN SCHEMA ${QUEUE_SCHEMA} FROM %1$I`,
  'REVOKE CREATE ON SCHEMA public FROM %1$I',
  `REVOKE CREATE ON SCHEMA ${QUEUE_SCHEMA} FROM %1$I`,
];

const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Creates or updates both roles and their grants, in one transaction. */
export async function createDbRoles(url: string, options: DbRolesOptions): Promise<void> {
  for (const role of [options.api, options.worker]) {
    if (!ROLE_NAME.test(role.name)) throw new Error(`Invalid role name "${role.name}": use lower-case letters, digits and _ (at most 63).`);
  }
  if (options.api.name === options.worker.name) throw new Error('The API and the worker need two different roles.');
  const client = await connectClient({ connectionString: url, application_name: 'blog-migrate-roles' });
  try {
    await inTransaction(client, async () => {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      const db = rows[0]!.db;
      // PostgreSQL < 15 lets every role create in public; 15+ does not. Make it so everywhere.
      await client.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
      for (const [service, role] of [
        ['api', options.api],
        ['worker', options.worker],
      ] as const) {
        const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role.name]);
        const verb = exists.rowCount ? 'ALTER' : 'CREATE';
        const attributes = 'NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT';
        if (role.password) await run(client, `${verb} ROLE %1$I WITH LOGIN PASSWORD %3$L ${attributes}`, role.name, db, role.password);
        else await run(client, `${verb} ROLE %1$I WITH NOLOGIN ${attributes}`, role.name, db);
        for (const template of [...RESET, ...ROLE_GRANTS[service]]) await run(client, template, role.name, db);
        // The tables of other versions of the documents (an earlier release may still run on them).
        const { rows: others } = await client.query<{ table_name: string }>(
          'SELECT table_name FROM sync_shape WHERE to_regclass(table_name) IS NOT NULL AND NOT table_name = ANY($1::text[])',
          [MODEL.map((e) => e.view)],
        );
        for (const t of others) await run(client, `GRANT ${DML} ON %4$I TO %1$I`, role.name, db, t.table_name);
      }
    });
  } finally {
    await client.end();
  }
}

/**
 * Drops roles made by createDbRoles from the cluster (tests; or an operator undoing them): their
 * privileges in this database go first (DROP OWNED), then the roles. Roles with privileges in
 * other databases must be cleaned there too (DROP OWNED in each).
 */
export async function dropDbRoles(url: string, names: string[]): Promise<void> {
  const client = await connectClient({ connectionString: url, application_name: 'blog-migrate-roles' });
  try {
    for (const name of names) {
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
      if (!exists.rowCount) continue;
      await run(client, 'DROP OWNED BY %1$I', name, '');
      await run(client, 'DROP ROLE %1$I', name, '');
    }
  } finally {
    await client.end();
  }
}

/**
 * DDL takes no bind parameters: the statement is built by PostgreSQL's format() from a constant
 * template of this module and parameters (%I quotes identifiers, %L literals), then run.
 */
async function run(client: pg.Client, template: string, role: string, db: string, literal = ''): Promise<void> {
  const { rows } = await client.query<{ sql: string }>('SELECT format($1, $2::text, $3::text, $4::text) AS sql', [
    template,
    role,
    db,
    literal,
  ]);
  await client.query(rows[0]!.sql);
}
