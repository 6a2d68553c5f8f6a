import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { dropDbRoles, pruneEvents, seed, SyncEngine } from '@blog/shared';
import { builtFile, testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import pg from 'pg';
import { createApp } from '../src/app';
import { configFor } from '../src/env';
import { ALICE, POST1, SEED_OPERATIONS, TestApi, UUID_RE } from './support';

/**
 * Least privilege: `npm run migrate -- roles` creates the API's and the worker's roles; the API
 * (in-process) and the worker (a real process) run as them, end to end, and the roles are refused
 * what they must not do. Roles are cluster-wide: the names carry this process's id and a random
 * suffix so parallel test files never share one, and afterAll drops them.
 */
const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const API_ROLE = `blog_api_t${suffix}`;
const WORKER_ROLE = `blog_worker_t${suffix}`;
const API_PASSWORD = 'api-password-for-tests';
const WORKER_PASSWORD = 'worker-password-for-tests';

let pool: pg.Pool;
let api: TestApi | undefined;
let worker: ChildProcess | undefined;
let firstRun: { code: number; stdout: string; stderr: string };

const roleUrl = (role: string, password: string) => {
  const url = new URL(testDatabaseUrl());
  url.username = role;
  url.password = password;
  return url.toString();
};

async function migrateRoles(): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [builtFile('shared', 'dist', 'cli', 'migrate.js'), 'roles'], {
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: testDatabaseUrl(),
        LOG_LEVEL: 'error',
        BLOG_API_DB_ROLE: API_ROLE,
        BLOG_WORKER_DB_ROLE: WORKER_ROLE,
        BLOG_API_DB_PASSWORD: API_PASSWORD,
        BLOG_WORKER_DB_PASSWORD: WORKER_PASSWORD,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs one statement as a role; resolves to the PostgreSQL error code, or 'ok'. */
async function as(role: string, password: string, sql: string): Promise<string> {
  const client = new pg.Client({ connectionString: roleUrl(role, password) });
  await client.connect();
  try {
    await client.query(sql);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await client.end();
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The worker as operators run it, connected as the worker role; resolves once it is healthy. */
async function startWorker(): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [builtFile('services', 'worker', 'dist', 'main.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      DATABASE_URL: roleUrl(WORKER_ROLE, WORKER_PASSWORD),
      WORKER_HEALTH_PORT: '0',
      WORKER_NAME: `blog-worker-roles-${suffix}`,
      WORKER_SUPERVISE_INTERVAL_SECONDS: '1',
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start:\n${output}`)), 20_000);
    proc.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const m = /"port":(\d+)[^\n]*health endpoint listening/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code}):\n${output}`));
    });
  });
  proc.stdout!.on('data', (chunk: Buffer) => (errors += /"level":"(error|fatal)"/.test(chunk.toString()) ? chunk.toString() : ''));
  return { proc, port };
}
let errors = '';

beforeAll(async () => {
  pool = testPool();
  await seed(pool);
  firstRun = await migrateRoles();
}, 60_000);

afterAll(async () => {
  await api?.close();
  if (worker && worker.exitCode === null) {
    const exited = new Promise((r) => worker!.once('exit', r));
    worker.kill('SIGTERM');
    await exited;
  }
  await pool?.end();
  await dropDbRoles(testDatabaseUrl(), [API_ROLE, WORKER_ROLE]);
});

test('`migrate roles` creates both LOGIN roles with no special attributes, and is idempotent', async () => {
  expect(firstRun).toMatchObject({ code: 0, stdout: `roles ready: ${API_ROLE} (LOGIN), ${WORKER_ROLE} (LOGIN)\n` });
  const again = await migrateRoles();
  expect(again.code).toBe(0);
  const { rows } = await pool.query(
    `SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
       FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
    [[API_ROLE, WORKER_ROLE]],
  );
  const plain = {
    rolcanlogin: true,
    rolsuper: false,
    rolcreatedb: false,
    rolcreaterole: false,
    rolreplication: false,
    rolbypassrls: false,
  };
  expect(rows).toEqual([
    { rolname: API_ROLE, ...plain },
    { rolname: WORKER_ROLE, ...plain },
  ]);
});

test('the API as its role and the worker as its role: the seed operations and a QUEUED write, end to end', async () => {
  api = new TestApi(await createApp(configFor(roleUrl(API_ROLE, API_PASSWORD), { defaultSyncMode: 'QUEUED' })));
  expect((await fetch(`${api.url}/ready`)).status).toBe(200);
  expect((await fetch(`${api.url}/metrics`)).status).toBe(200);
  expect((await fetch(`${api.url}/metrics/prometheus`)).status).toBe(200);
  // Its pool and pg-boss's connections are the role's.
  const { rows: who } = await pool.query<{ usename: string }>(
    `SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'blog-api%'`,
  );
  expect(who.map((r) => r.usename)).toEqual([API_ROLE]);

  // Reads (compiled path) and the seed's mutations, verbatim.
  expect((await api.data<{ posts: unknown[] }>(SEED_OPERATIONS.GetRecentPosts)).posts).toHaveLength(3);
  expect(await api.data(SEED_OPERATIONS.GetUser)).toEqual({ user: expect.objectContaining({ username: 'alice' }) });
  const created = await api.data<{ createPost: { id: string } }>(SEED_OPERATIONS.CreatePost);
  expect(created.createPost.id).toMatch(UUID_RE);
  const comment = await api.data<{ createComment: { id: string } }>(SEED_OPERATIONS.AddComment);
  expect(await api.data(SEED_OPERATIONS.SyncMetrics)).toEqual({ syncMetrics: expect.objectContaining({ failures24h: 0 }) });
  // INLINE (the API writes tv_* and sync_log itself), an update, and a delete with its comments.
  const inline = await api.data<{ createPost: { id: string; commentCount: number } }>(
    `mutation { createPost(title: "inline", content: "c", authorId: "${ALICE}", sync: INLINE) { id commentCount } }`,
  );
  expect(inline.createPost.commentCount).toBe(0);
  await api.data(`mutation { updatePost(id: "${POST1}", title: "Renamed by blog_api") { id } }`);
  await api.data(`mutation { deleteComment(id: "${comment.createComment.id}") { id } }`);
  await api.data(`mutation { deletePost(id: "${inline.createPost.id}", sync: INLINE) { id } }`);
  // Each appended its event, which the role reads back.
  const { events } = await api.data<{ events: { command: string }[] }>(`{ events(entityId: "${POST1}") { command } }`);
  expect(events.map((e) => e.command)).toEqual(['deleteComment', 'updatePost', 'createComment']);
  // Their jobs, recorded in the sync outbox (which the worker relays to pg-boss as its role).
  const { rows: queued } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_outbox`);
  expect(queued[0]!.n).toBeGreaterThanOrEqual(4);

  // The worker, as its role, drains the queue: the projections catch up, nothing drifts.
  const started = await startWorker();
  worker = started.proc;
  await waitFor('the queued writes synced', async () => {
    const { rows } = await pool.query<{ title: string | null; n: number }>(
      `SELECT (SELECT data->>'title' FROM tv_post WHERE id = $1) AS title,
              (SELECT count(*)::int FROM pgboss.job WHERE name = 'projection-sync' AND state <> 'completed')
                + (SELECT count(*)::int FROM sync_outbox) AS n`,
      [POST1],
    );
    return rows[0]!.title === 'Renamed by blog_api' && rows[0]!.n === 0;
  });
  const { rows: synced } = await pool.query(`SELECT id FROM tv_post WHERE id = $1`, [created.createPost.id]);
  expect(synced).toHaveLength(1);
  expect((await new SyncEngine(pool).verify()).total).toBe(0);
  const health = await fetch(`http://127.0.0.1:${started.port}/health`);
  expect(health.status).toBe(200);
  // The relay (as the worker's role) merged the writes it found together into one job, recorded
  // which job carries each write in sync_relayed, and settling the job removed those rows.
  expect(((await health.json()) as { jobsCompleted: number }).jobsCompleted).toBeGreaterThanOrEqual(1);
  const { rows: merged } = await pool.query<{ writes: number }>(
    `SELECT jsonb_array_length(data->'writes') AS writes FROM pgboss.job WHERE name = 'projection-sync' AND data ? 'writes'`,
  );
  expect(merged.reduce((n, r) => n + r.writes, 0)).toBeGreaterThanOrEqual(4);
  expect((await pool.query('SELECT 1 FROM sync_relayed')).rowCount).toBe(0);
  // The worker logged no error (e.g. a permission denied in its maintenance).
  await new Promise((r) => setTimeout(r, 1500)); // at least one supervise pass (1 s)
  expect(errors).toBe('');
}, 60_000);

const DENIED = '42501'; // insufficient_privilege
const cases: [string, string][] = [
  ['DROP TABLE tb_post', DENIED],
  ['TRUNCATE tb_post', DENIED],
  ['TRUNCATE tv_post', DENIED],
  ['CREATE TABLE evil (id int)', DENIED],
  ['CREATE TABLE pgboss.evil (id int)', DENIED],
  ['DROP TABLE pgboss.job', DENIED],
  ['TRUNCATE pgboss.job', DENIED],
  ['ALTER TABLE tb_user ADD COLUMN evil int', DENIED],
  ['CREATE INDEX evil ON tb_post (title)', DENIED],
  ['DELETE FROM schema_migrations', DENIED],
  ['DELETE FROM sync_log', DENIED],
  // Events are immutable.
  ["UPDATE event_log SET command = 'x'", DENIED],
  ['UPDATE event_log_entity SET event_id = 0', DENIED],
];

test.each([...cases, ['DELETE FROM event_log', DENIED], ['DELETE FROM event_log_entity', DENIED]])(
  'the API role is refused: %s',
  async (sql, code) => {
    expect(await as(API_ROLE, API_PASSWORD, sql)).toBe(code);
  },
);

test.each([
  ...cases,
  [`INSERT INTO tb_user (email, username, full_name) VALUES ('w@example.com', 'worker_user', 'W')`, DENIED],
  [`UPDATE tb_post SET title = 'x'`, DENIED],
  ['DELETE FROM tb_comment', DENIED],
  ['SELECT * FROM schema_migrations', DENIED],
  [
    'INSERT INTO event_log (command, entity_type, entity_ids, actor_admin, args) ' +
      "VALUES ('x', 'post', ARRAY[gen_random_uuid()], true, '{}')",
    DENIED,
  ],
])('the worker role is refused: %s', async (sql, code) => {
  expect(await as(WORKER_ROLE, WORKER_PASSWORD, sql)).toBe(code);
});

test('the worker role prunes the event log (EVENT_RETENTION_DAYS)', async () => {
  const client = new pg.Client({ connectionString: roleUrl(WORKER_ROLE, WORKER_PASSWORD) });
  await client.connect();
  try {
    // The events of this file's commands are recent: a retention of one day deletes none of them.
    expect(await pruneEvents(client, 1)).toBe(0);
  } finally {
    await client.end();
  }
});

test('nothing was changed by the refused statements', async () => {
  const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_class WHERE relname = 'evil'`);
  expect(rows[0]!.n).toBe(0);
  const users = await pool.query(`SELECT 1 FROM tb_user WHERE username = 'worker_user'`);
  expect(users.rowCount).toBe(0);
});
