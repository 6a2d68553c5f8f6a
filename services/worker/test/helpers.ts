import { spawn, type ChildProcess } from 'node:child_process';
import { createBoss, planSync, SyncEngine, SyncQueue, waitFor, withTransaction, type ChangeSet, type SyncMode } from '@blog/shared';
import { builtFile, testDatabaseUrl } from '@blog/shared/test/helpers';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { WorkerConfig } from '../src/env';

/** A worker configuration for tests: this file's database, fast polling and supervision. */
export function testWorkerConfig(overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  return {
    databaseUrl: testDatabaseUrl(),
    batchSize: 100,
    concurrency: 1,
    pollIntervalMs: 50,
    shutdownTimeoutMs: 5000,
    superviseIntervalSeconds: 1,
    lagRetentionHours: 48,
    eventRetentionDays: 90,
    healthPort: 0,
    unhealthyAfterMs: 30_000,
    name: 'blog-worker-test',
    ...overrides,
  };
}

export interface Fixture {
  users: string[];
  posts: string[];
  comments: string[];
}

/**
 * Fresh users, posts (round-robin authors) and comments (round-robin posts and authors), inserted
 * set-based and projected, so tests start from zero drift on their own ids.
 */
export async function createFixture(pool: pg.Pool, n: { users: number; posts: number; comments: number }): Promise<Fixture> {
  return withTransaction(pool, async (c) => {
    const users = (
      await c.query<{ id: string }>(
        `INSERT INTO tb_user (email, username, full_name)
         SELECT 'u' || k || '@example.com', 'u_' || k, 'User ' || k
           FROM (SELECT substr(md5(random()::text || g), 1, 16) AS k FROM generate_series(1, $1) g) s
         RETURNING id`,
        [n.users],
      )
    ).rows.map((r) => r.id);
    const posts = (
      await c.query<{ id: string }>(
        `INSERT INTO tb_post (author_id, title, content, published)
         SELECT ($1::uuid[])[1 + g % cardinality($1::uuid[])], 'Post ' || g, 'Content ' || g, g % 2 = 0
           FROM generate_series(1, $2) g
         RETURNING id`,
        [users, n.posts],
      )
    ).rows.map((r) => r.id);
    const comments = (
      await c.query<{ id: string }>(
        `INSERT INTO tb_comment (post_id, author_id, content)
         SELECT ($1::uuid[])[1 + g % cardinality($1::uuid[])], ($2::uuid[])[1 + (g * 7) % cardinality($2::uuid[])], 'Comment ' || g
           FROM generate_series(1, $3) g
         RETURNING id`,
        [posts, users, n.comments],
      )
    ).rows.map((r) => r.id);
    await new SyncEngine(pool).refreshIn(c, { user: users, post: posts, comment: comments });
    return { users, posts, comments };
  });
}

/**
 * Writes as the API does: change tb_* and enqueue the sync in the same transaction (QUEUED or
 * DEFERRED mode), then relays the sync outbox as a running worker would, so the jobs are in pg-boss
 * when a write returns (a test may start its worker after writing). Returns the job ids.
 */
export class Writer {
  readonly boss: PgBoss;
  readonly queue: SyncQueue;

  private constructor(private readonly pool: pg.Pool) {
    this.boss = createBoss({ url: testDatabaseUrl(), applicationName: 'blog-test-writer', max: 4, maintenance: false });
    this.boss.on('error', () => undefined);
    this.queue = new SyncQueue(this.boss, pool);
  }

  static async start(pool: pg.Pool): Promise<Writer> {
    const w = new Writer(pool);
    await w.boss.start();
    return w;
  }

  stop(): Promise<void> {
    return this.boss.stop({ graceful: false, close: true });
  }

  /** Runs `sql` with `params`, then enqueues the dependency map's plan for `changes`, in one transaction. */
  async write(
    sql: string,
    params: unknown[],
    changes: ChangeSet,
    mode: Exclude<SyncMode, 'INLINE'> = 'QUEUED',
    deferSeconds?: number,
  ): Promise<string[]> {
    return this.relayed(
      withTransaction(this.pool, async (c) => {
        await c.query(sql, params);
        const plan = await planSync(c, changes);
        return this.queue.enqueue(c, plan, { mode, ...(deferSeconds !== undefined ? { deferSeconds } : {}) });
      }),
    );
  }

  private async relayed(written: Promise<string[]>): Promise<string[]> {
    const ids = await written;
    await this.queue.relayAll();
    return ids;
  }

  retitle(postId: string, title: string, mode: Exclude<SyncMode, 'INLINE'> = 'QUEUED', deferSeconds?: number): Promise<string[]> {
    return this.write(
      `UPDATE tb_post SET title = $2, updated_at = now() WHERE id = $1`,
      [postId, title],
      { post: [postId] },
      mode,
      deferSeconds,
    );
  }

  comment(postId: string, authorId: string, content: string): Promise<string[]> {
    return this.relayed(
      withTransaction(this.pool, async (c) => {
        const { rows } = await c.query<{ id: string }>(
          `INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, $3) RETURNING id`,
          [postId, authorId, content],
        );
        const plan = await planSync(c, { comment: [rows[0]!.id] });
        return this.queue.enqueue(c, plan, { mode: 'QUEUED' });
      }),
    );
  }

  rename(userId: string, fullName: string): Promise<string[]> {
    return this.write(`UPDATE tb_user SET full_name = $2, updated_at = now() WHERE id = $1`, [userId, fullName], { user: [userId] });
  }
}

export interface JobRow {
  id: string;
  state: string;
  retry_count: number;
  priority: number;
  completed_on: Date | null;
  start_after: Date;
}

/** The pg-boss rows of these jobs on the sync queue. */
export async function jobRows(pool: pg.Pool, ids: readonly string[]): Promise<JobRow[]> {
  const { rows } = await pool.query<JobRow>(
    `SELECT id, state::text AS state, retry_count, priority, completed_on, start_after
       FROM pgboss.job WHERE name = 'projection-sync' AND id = ANY($1::uuid[])`,
    [ids],
  );
  return rows;
}

/**
 * The writes of these ids whose job completed: the job of the write's own id, or, when it has none,
 * a job the relay merged the write into (SyncJobData.writes). A merged job that was split is
 * completed too, but its writes were refreshed by none of it: each has a job of its own id.
 */
export async function countCompleted(pool: pg.Pool, ids: readonly string[]): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM unnest($1::uuid[]) AS w(id)
      WHERE coalesce((SELECT j.state = 'completed' FROM pgboss.job j WHERE j.name = 'projection-sync' AND j.id = w.id),
                     EXISTS (SELECT 1 FROM pgboss.job j
                              WHERE j.name = 'projection-sync' AND j.state = 'completed'
                                AND j.data->'writes' @> jsonb_build_array(jsonb_build_object('id', w.id::text))))`,
    [ids],
  );
  return rows[0]!.n;
}

/** The writes these jobs carry: each merged job's (SyncJobData.writes), the others' own ids. */
export async function writesOfJobs(pool: pg.Pool, jobIds: readonly string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>(
    `SELECT coalesce(w->>'id', j.id::text) AS id
       FROM pgboss.job j LEFT JOIN LATERAL jsonb_array_elements(j.data->'writes') w ON true
      WHERE j.name = 'projection-sync' AND j.id = ANY($1::uuid[])`,
    [jobIds],
  );
  return rows.map((r) => r.id);
}

// One waitFor and one sleep for the whole project.
export { sleep, waitFor } from '@blog/shared';

/** A worker running as a real process (node services/worker/dist/main.js). */
export class WorkerProcess {
  readonly output: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private healthPort?: number;

  private constructor(
    readonly child: ChildProcess,
    readonly name: string,
  ) {
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        this.output.push(line);
        const port = /"port":(\d+).*health endpoint listening/.exec(line)?.[1];
        if (port) this.healthPort = Number(port);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  static spawn(name: string, env: Record<string, string> = {}): WorkerProcess {
    const child = spawn(process.execPath, [builtFile('services', 'worker', 'dist', 'main.js')], {
      env: {
        PATH: process.env.PATH ?? '',
        DATABASE_URL: testDatabaseUrl(),
        WORKER_NAME: name,
        WORKER_HEALTH_PORT: '0',
        WORKER_POLL_INTERVAL_MS: '50',
        WORKER_SUPERVISE_INTERVAL_SECONDS: '1',
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new WorkerProcess(child, name);
  }

  /** Resolves once the worker logged that it started draining. */
  async started(timeoutMs = 15_000): Promise<void> {
    await waitFor(`${this.name} to start`, async () => this.output.some((l) => l.includes('projection worker started')), timeoutMs, 50);
  }

  async health(): Promise<{ status: number; body: Record<string, unknown> }> {
    if (!this.healthPort) throw new Error('health port unknown yet');
    const res = await fetch(`http://127.0.0.1:${this.healthPort}/health`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** Kills the process if it still runs and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

/** Backends of `applicationName` on this file's database that wait for a lock. */
export async function backendsWaitingOnLock(pool: pg.Pool, applicationName: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity
      WHERE datname = current_database() AND application_name = $1 AND wait_event_type = 'Lock'`,
    [applicationName],
  );
  return rows[0]?.n ?? 0;
}
