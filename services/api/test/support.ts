import { testDatabaseUrl, testPool } from '@blog/shared/test/helpers';
import { commandTables, MODEL, SYNC_QUEUE, mergePlans, seed, withTransaction, type Entity, type SyncJobData } from '@blog/shared';
import type pg from 'pg';
import { createApp, type ApiApp, type AppOptions } from '../src/app';
import { configFor, type ApiConfig } from '../src/env';

/** The seed README's operations, verbatim (one copy, in @blog/shared). */
export { SEED_OPERATIONS } from '@blog/shared';

export interface GqlResponse<T = Record<string, unknown>> {
  status: number;
  headers: Headers;
  text: string;
  json: {
    data?: T | null;
    errors?: { message: string; path?: unknown[]; extensions?: { code?: string; field?: string } }[];
    extensions?: { syncToken?: string; sync?: { restQueued?: boolean } };
  };
}

/**
 * This file's pool and an API on its database with the seed's rows: made before the file's tests,
 * closed after them. Use the fields inside tests (they are set by then).
 */
export function seededApi(overrides: Partial<ApiConfig> = {}): { pool: pg.Pool; api: TestApi } {
  const seeded = {} as { pool: pg.Pool; api: TestApi };
  beforeAll(async () => {
    seeded.pool = testPool();
    await seed(seeded.pool);
    seeded.api = await startApi(overrides);
  });
  afterAll(async () => {
    await seeded.api?.close();
    await seeded.pool?.end();
  });
  return seeded;
}

/**
 * This file's pool, with the seed's rows, and the APIs its tests start with `api(overrides)`: the
 * pool is made before the file's tests, and everything is closed after them.
 */
export function seededApis(): { pool: pg.Pool; api(overrides?: Partial<ApiConfig>, options?: StartOptions): Promise<TestApi> } {
  const apis: TestApi[] = [];
  const file = {
    pool: undefined as unknown as pg.Pool,
    async api(overrides: Partial<ApiConfig> = {}, options: StartOptions = {}): Promise<TestApi> {
      const a = await startApi(overrides, options);
      apis.push(a);
      return a;
    },
  };
  beforeAll(async () => {
    file.pool = testPool();
    await seed(file.pool);
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.close()));
    await file.pool?.end();
  });
  return file;
}

/**
 * The API started in-process on a free port against this test file's database. The second argument
 * is createApp's options, or just its onQuery.
 */
/** createApp's options, or just its onQuery. */
type StartOptions = AppOptions | ((text: string) => void);

export async function startApi(overrides: Partial<ApiConfig> = {}, options: StartOptions = {}): Promise<TestApi> {
  const app = await createApp(configFor(testDatabaseUrl(), overrides), typeof options === 'function' ? { onQuery: options } : options);
  return new TestApi(app);
}

export class TestApi {
  constructor(readonly app: ApiApp) {}

  get url(): string {
    return this.app.url;
  }

  /** POSTs a GraphQL request as JSON. */
  async gql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    extra: Record<string, unknown> = {},
  ): Promise<GqlResponse<T>> {
    return this.post({ query, ...(variables ? { variables } : {}), ...extra });
  }

  async post<T = Record<string, unknown>>(body: unknown, headers: Record<string, string> = {}): Promise<GqlResponse<T>> {
    return this.raw(typeof body === 'string' ? body : JSON.stringify(body), headers);
  }

  async raw<T = Record<string, unknown>>(body: string, headers: Record<string, string> = {}): Promise<GqlResponse<T>> {
    const res = await fetch(`${this.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    const text = await res.text();
    let json: GqlResponse<T>['json'] = {};
    try {
      json = JSON.parse(text) as GqlResponse<T>['json'];
    } catch {
      // not JSON: the test looks at text
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** Data of a request that must succeed (loosely typed: the tests' assertions check the shapes). */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async data<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<T> {
    const res = await this.gql<T>(query, variables);
    if (res.status !== 200 || res.json.errors) throw new Error(`request failed (${res.status}): ${res.text}`);
    return res.json.data as T;
  }

  /**
   * What the worker does, done here: relays the sync outbox to pg-boss, fetches the sync jobs that are available now, refreshes the
   * union of their plans in one transaction, completes them. Returns how many jobs ran.
   */
  async drainQueue(): Promise<number> {
    await this.app.queue.relay();
    const jobs = await this.app.boss.fetch<SyncJobData>(SYNC_QUEUE, { batchSize: 1000 });
    if (!jobs?.length) return 0;
    await withTransaction(this.app.pool, async (client) => {
      await this.app.sync.refreshIn(client, mergePlans(jobs.filter((j) => !j.data.expand).map((j) => j.data.plan)));
      await this.app.queue.expand(
        client,
        jobs.filter((j) => j.data.expand).map((j) => j.data),
      );
    });
    // As a worker does: the API processes learn what was refreshed through the change feed.
    this.app.feed.committed(mergePlans(jobs.filter((j) => !j.data.expand).map((j) => j.data.plan)));
    await this.app.boss.complete(
      SYNC_QUEUE,
      jobs.map((j) => j.id),
    );
    return jobs.length;
  }

  close(): Promise<void> {
    return this.app.close();
  }
}

/**
 * Rows on the command side, jobs in the sync outbox and in pg-boss, events in the event log, and the sync's writes (tv_*
 * rows written, sync_log rows of syncs and of sync failures): what a rejected command must leave
 * unchanged.
 */
export async function writeCounts(pool: pg.Pool): Promise<Record<string, number>> {
  const updatedAt = (e: Entity) => Object.values(e.fields).some((f) => f.kind === 'column' && f.column === 'updated_at');
  const parts = [
    ...commandTables().map((t) => `(SELECT count(*) FROM ${t})::int AS ${t}`),
    ...MODEL.filter(updatedAt).map((e) => `(SELECT max(updated_at) FROM ${e.table})::text AS ${e.table}_updated`),
    ...MODEL.map((e) => `(SELECT max(synced_at) FROM ${e.view})::text AS ${e.view}_synced`),
    '(SELECT count(*) FROM pgboss.job)::int AS jobs',
    '(SELECT count(*) FROM sync_outbox)::int AS outbox',
    '(SELECT count(*) FROM event_log)::int AS events',
    '(SELECT count(*) FROM sync_log WHERE success)::int AS syncs',
    '(SELECT count(*) FROM sync_log WHERE NOT success)::int AS sync_failures',
  ];
  const { rows } = await pool.query<Record<string, number>>(`SELECT ${parts.join(', ')}`);
  return rows[0]!;
}

/**
 * Which read path sent a statement: the fast path's builds the whole `data` object
 * (json_build_object), Apollo's a JSON array of the root fields' values; both have PostgreSQL
 * measure the answer before sending it (blog_read_answer, reads/read-engine.ts).
 */
export function readPathOf(text: string): 'fast' | 'apollo' | undefined {
  if (text.startsWith('SELECT blog_read_answer(json_build_object(')) return 'fast';
  if (text.startsWith("SELECT blog_read_answer('[' || ")) return 'apollo';
  return undefined;
}

export const ALICE = '00000000-0000-0000-0000-000000000001';
export const BOB = '00000000-0000-0000-0000-000000000002';
export const CHARLIE = '00000000-0000-0000-0000-000000000003';
export const POST1 = '00000000-0000-0000-0001-000000000001';
export const POST2 = '00000000-0000-0000-0001-000000000002';
export const POST3 = '00000000-0000-0000-0001-000000000003';
/** A mutation's whole response: its data, and the sync token every mutation answer carries. */
export const mutationAnswer = (data: Record<string, unknown>, sync?: { restQueued: true }) => ({
  data,
  extensions: { ...(sync ? { sync } : {}), syncToken: expect.stringMatching(/^st1\./) },
});

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
