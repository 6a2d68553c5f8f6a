/**
 * What the fault suite (test/faults.e2e.spec.ts) and the soak (bench/soak.mts) share: the API and
 * the worker as real child processes, a steady mixed read/write load that records every answer,
 * and the checks afterwards (every acknowledged write is in tb_* and projected, the queue drained,
 * `sync verify` finds no drift).
 *
 * jest loads this file through ts-jest, the soak through Node's type stripping (so: no enums, no
 * parameter properties; @blog/shared as below, loaded either way).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as sharedModule from '@blog/shared';
import type pg from 'pg';

/** The repository's root: the nearest directory up from the working directory with turbo.json. */
export const REPO_ROOT = findRepoRoot(process.cwd());

function findRepoRoot(from: string): string {
  // Not from this file's location: jest loads it as CommonJS, the soak as an ES module.
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'turbo.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no turbo.json above ${from}: run from inside the repository`);
  }
}

export function built(...segments: string[]): string {
  const file = path.join(REPO_ROOT, ...segments);
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first.`);
  return file;
}

export const API_MAIN = () => built('services', 'api', 'dist', 'main.js');
export const WORKER_MAIN = () => built('services', 'worker', 'dist', 'main.js');
export const SYNC_CLI = () => built('shared', 'dist', 'cli', 'sync.js');

// ---- processes -------------------------------------------------------------------------------

export interface Service {
  name: string;
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Resolves when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Output kept per process (the tail: a 10-minute soak must not grow without bound). */
const OUTPUT_KEEP = 256 * 1024;

export function spawnService(name: string, file: string, env: Record<string, string>): Service {
  const child = spawn(process.execPath, [file], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (d: Buffer) => {
    out += d.toString();
    if (out.length > OUTPUT_KEEP * 2) out = out.slice(-OUTPUT_KEEP);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { name, child, pid: child.pid!, output: () => out, exited };
}

// One waitFor and one sleep for the whole project (@blog/shared). Node's ESM loader hands this
// CommonJS package over as `default`; ts-jest's CommonJS require as the module itself.
const shared = (sharedModule as { default?: typeof sharedModule }).default ?? sharedModule;
export const { waitFor, sleep } = shared;

/** Starts the API (PORT 0) and waits for its "API ready at" line; returns it with its URL. */
export async function startApiProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<Service & { url: string }> {
  // LOG_LEVEL info at least: the "API ready at" line is logged at info.
  // The load comes from one address, far above the default per-client mutation rate limit.
  const api = spawnService('api', API_MAIN(), {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'info',
    RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
    ...env,
  });
  const match = await waitFor(
    'the API to start',
    async () => {
      if (api.child.exitCode !== null) throw new Error(`the API exited (${api.child.exitCode}):\n${api.output()}`);
      return api.output().match(/API ready at (http:\/\/\S+)\/graphql/);
    },
    timeoutMs,
    50,
  ).catch((err: unknown) => {
    api.child.kill('SIGKILL');
    throw err;
  });
  return { ...api, url: match[1]! };
}

/** Starts a worker (health port 0) and waits until it drains ("projection worker started"). */
export async function startWorkerProcess(env: Record<string, string>, timeoutMs = 60_000): Promise<Service> {
  const worker = spawnService('worker', WORKER_MAIN(), { WORKER_HEALTH_PORT: '0', ...env });
  await waitFor(
    'the worker to start',
    () => {
      if (worker.child.exitCode !== null) throw new Error(`the worker exited (${worker.child.exitCode}):\n${worker.output()}`);
      return worker.output().includes('projection worker started');
    },
    timeoutMs,
    50,
  ).catch((err: unknown) => {
    worker.child.kill('SIGKILL');
    throw err;
  });
  return worker;
}

/** Sends `signal`, waits for the exit; SIGKILLs after `timeoutMs`. */
export async function stopService(service: Service, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000) {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return service.exited;
  service.child.kill(signal);
  const timer = setTimeout(() => service.child.kill('SIGKILL'), timeoutMs);
  try {
    return await service.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Resident set size of a process in MiB (VmRSS in /proc/<pid>/status), undefined once it is gone. */
export function rssMiB(pid: number): number | undefined {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}

// ---- the load --------------------------------------------------------------------------------

export type SyncModeName = 'QUEUED' | 'INLINE';
export type WriteKind = 'createPost' | 'createComment' | 'updatePost';

export interface LoadOptions {
  /** http://host:port of the API. */
  url: string;
  readsPerSecond: number;
  writesPerSecond: number;
  /** Users who write (the seed's). */
  authors: string[];
  /** Posts that exist before the load (the seed's): targets until the load has created its own. */
  posts: string[];
  /** Sync modes the writes cycle through. */
  modes: SyncModeName[];
  /** Requests in flight at most; a tick that would exceed it skips (counted in `skipped`). */
  maxInFlight?: number;
  /** Per request. */
  timeoutMs?: number;
}

interface UpdateAttempt {
  title: string;
  /** true: acknowledged; false: refused (the write may still have committed if the answer was lost). */
  acked: boolean | undefined;
}

export interface Answer {
  at: number;
  kind: 'read' | WriteKind;
  status: number;
  /** extensions.code of the first error, or NETWORK / TIMEOUT / HTTP_<status>; undefined when ok. */
  code: string | undefined;
}

const READS = [
  {
    query:
      'query GetRecentPosts { posts(limit: 5) { id title author { username fullName } commentCount ' +
      'comments { content author { username } } } }',
  },
  { query: 'query GetUser($id: ID!) { user(id: $id) { username fullName publishedPostCount commentCount } }', user: true },
  { query: 'query GetPost($id: ID!) { post(id: $id) { id title content commentCount author { username } } }', post: true },
  { query: 'query SyncMetrics { syncMetrics(entityType: "post") { totalSyncs24h avgDurationMs successRate failures24h } }' },
] as const;

const WRITE_KINDS: WriteKind[] = ['createPost', 'createComment', 'updatePost'];

/**
 * A steady load at fixed rates (a 50 ms tick sends what the rates owe since the start). Every
 * answer is recorded; acknowledged writes are kept so the checks can find them afterwards.
 */
export class Load {
  readonly answers: Answer[] = [];
  readonly errors = new Map<string, number>();
  readonly sent = { reads: 0, writes: 0 };
  readonly ok = { reads: 0, writes: 0 };
  skipped = 0;
  readonly createdPosts: string[] = [];
  readonly createdComments: string[] = [];
  /** Per post, its updates in the order they were sent. */
  readonly updates = new Map<string, UpdateAttempt[]>();
  private readonly busy = new Set<string>();
  private readonly opts: Required<LoadOptions>;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private inFlight = new Set<Promise<void>>();
  private seq = 0;
  private readsDue = 0;
  private writesDue = 0;
  /** Keep every answer (tests) or only count them (the soak). */
  private readonly keepAnswers: boolean;

  constructor(options: LoadOptions, keepAnswers = true) {
    this.opts = { maxInFlight: 64, timeoutMs: 15_000, ...options };
    this.keepAnswers = keepAnswers;
  }

  get url(): string {
    return this.opts.url;
  }

  /** Points the load at another API process (after a restart of the API). */
  set url(url: string) {
    this.opts.url = url;
  }

  start(): void {
    this.startedAt = Date.now();
    this.timer = setInterval(() => this.tick(), 50);
  }

  /** Stops sending and waits for the requests in flight. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  /** Acknowledged writes (a success answer with the entity's id). */
  get acknowledged(): number {
    return this.ok.writes;
  }

  errorCount(): number {
    let n = 0;
    for (const v of this.errors.values()) n += v;
    return n;
  }

  private tick(): void {
    const elapsed = (Date.now() - this.startedAt) / 1000;
    const reads = Math.floor(elapsed * this.opts.readsPerSecond) - this.readsDue;
    const writes = Math.floor(elapsed * this.opts.writesPerSecond) - this.writesDue;
    this.readsDue += reads;
    this.writesDue += writes;
    for (let i = 0; i < writes; i++) this.launch(() => this.write());
    for (let i = 0; i < reads; i++) this.launch(() => this.read());
  }

  private launch(fn: () => Promise<void>): void {
    if (this.inFlight.size >= this.opts.maxInFlight) {
      this.skipped += 1;
      return;
    }
    const p = fn().finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private pick<T>(list: readonly T[], recent = list.length): T {
    const from = Math.max(0, list.length - recent);
    return list[from + Math.floor(Math.random() * (list.length - from))]!;
  }

  private postTarget(): string {
    return this.createdPosts.length >= 10 ? this.pick(this.createdPosts, 200) : this.pick(this.opts.posts);
  }

  private async read(): Promise<void> {
    const r = READS[this.seq++ % READS.length]!;
    const variables = 'user' in r ? { id: this.pick(this.opts.authors) } : 'post' in r ? { id: this.postTarget() } : undefined;
    this.sent.reads += 1;
    const res = await this.request(r.query, variables);
    if (this.record('read', res)) this.ok.reads += 1;
  }

  private async write(): Promise<void> {
    const n = this.seq++;
    const kind = WRITE_KINDS[n % WRITE_KINDS.length]!;
    const mode = this.opts.modes[Math.floor(n / WRITE_KINDS.length) % this.opts.modes.length]!;
    const author = this.pick(this.opts.authors);
    const tag = `${process.pid}-${n}`;
    this.sent.writes += 1;
    if (kind === 'createPost') {
      const res = await this.request(
        'mutation($a: ID!, $t: String!) { ' +
          `createPost(title: $t, content: "Written under load.", authorId: $a, published: true, sync: ${mode}) { id } }`,
        { a: author, t: `load ${tag}` },
      );
      const id = this.record(kind, res)?.createPost?.id;
      if (id) {
        this.createdPosts.push(id);
        this.ok.writes += 1;
      }
      return;
    }
    if (kind === 'createComment') {
      const res = await this.request(
        `mutation($p: ID!, $a: ID!) { createComment(postId: $p, authorId: $a, content: "Comment under load.", sync: ${mode}) { id } }`,
        { p: this.postTarget(), a: author },
      );
      const id = this.record(kind, res)?.createComment?.id;
      if (id) {
        this.createdComments.push(id);
        this.ok.writes += 1;
      }
      return;
    }
    // updatePost: one update in flight per post, so "the last acknowledged title" is well defined.
    const post = this.createdPosts.length ? this.pick(this.createdPosts, 200) : undefined;
    if (!post || this.busy.has(post)) {
      this.sent.writes -= 1;
      return;
    }
    this.busy.add(post);
    const attempt: UpdateAttempt = { title: `updated ${tag}`, acked: undefined };
    const list = this.updates.get(post) ?? [];
    list.push(attempt);
    this.updates.set(post, list);
    try {
      const res = await this.request(`mutation($id: ID!, $t: String!) { updatePost(id: $id, title: $t, sync: ${mode}) { id title } }`, {
        id: post,
        t: attempt.title,
      });
      attempt.acked = this.record(kind, res)?.updatePost?.title === attempt.title;
      if (attempt.acked) this.ok.writes += 1;
    } finally {
      this.busy.delete(post);
    }
  }

  private async request(query: string, variables?: Record<string, unknown>): Promise<{ status: number; body: unknown; failure?: string }> {
    try {
      const res = await fetch(`${this.opts.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query, ...(variables ? { variables } : {}) }),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
      });
      const text = await res.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = undefined;
      }
      return { status: res.status, body };
    } catch (err) {
      return { status: 0, body: undefined, failure: (err as Error).name === 'TimeoutError' ? 'TIMEOUT' : 'NETWORK' };
    }
  }

  /** Records an answer; returns its data when it succeeded. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private record(kind: Answer['kind'], res: { status: number; body: unknown; failure?: string }): Record<string, any> | undefined {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const body = res.body as { data?: Record<string, any> | null; errors?: { extensions?: { code?: string } }[] } | undefined;
    let code: string | undefined;
    if (res.failure) code = res.failure;
    else if (body?.errors?.length) code = body.errors[0]!.extensions?.code ?? `HTTP_${res.status}`;
    else if (res.status !== 200 || !body?.data) code = `HTTP_${res.status}`;
    if (code) this.errors.set(`${code} (HTTP ${res.status})`, (this.errors.get(`${code} (HTTP ${res.status})`) ?? 0) + 1);
    if (this.keepAnswers) this.answers.push({ at: Date.now(), kind, status: res.status, code });
    return code ? undefined : (body!.data ?? undefined);
  }
}

/** Polls GET /ready and records every status with its time. */
export class ReadyProbe {
  readonly statuses: { at: number; status: number }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly url: () => string;
  private readonly intervalMs: number;
  constructor(url: () => string, intervalMs = 200) {
    this.url = url;
    this.intervalMs = intervalMs;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = fetch(`${this.url()}/ready`, { signal: AbortSignal.timeout(5000) })
        .then(
          async (res) => {
            await res.arrayBuffer();
            this.statuses.push({ at: Date.now(), status: res.status });
          },
          () => {
            this.statuses.push({ at: Date.now(), status: 0 });
          },
        )
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** The latest status, or undefined before the first answer. */
  last(): number | undefined {
    return this.statuses.at(-1)?.status;
  }
}

// ---- the checks ------------------------------------------------------------------------------

export interface WriteCheck {
  acknowledged: number;
  found: number;
  /** Acknowledged writes missing from tb_* (or an update whose title is not there). */
  lost: string[];
  /** Acknowledged writes in tb_* but missing from (or stale in) tv_*. */
  unprojected: string[];
}

/**
 * Every acknowledged write of the load, looked for in tb_* and tv_*. An update is found when the
 * post's title is that of its last acknowledged update or of a later one whose answer was an error
 * (a connection lost during COMMIT can commit a write whose answer is an error: that is not a lost
 * write, the client was never told it succeeded).
 */
export async function checkWrites(db: Pick<pg.Pool, 'query'>, load: Load): Promise<WriteCheck> {
  const lost: string[] = [];
  const unprojected: string[] = [];
  let found = 0;
  for (const [table, ids] of [
    ['post', load.createdPosts],
    ['comment', load.createdComments],
  ] as const) {
    const { rows } = await db.query<{ id: string; projected: boolean }>(
      `SELECT t.id, (v.id IS NOT NULL) AS projected
         FROM tb_${table} t LEFT JOIN tv_${table} v ON v.id = t.id
        WHERE t.id = ANY($1::uuid[])`,
      [ids],
    );
    const present = new Map(rows.map((r) => [r.id, r.projected]));
    for (const id of ids) {
      if (!present.has(id)) lost.push(`${table} ${id}`);
      else {
        found += 1;
        if (!present.get(id)) unprojected.push(`${table} ${id}`);
      }
    }
  }
  const posts = [...load.updates.keys()];
  const { rows } = await db.query<{ id: string; title: string; projected: string | null }>(
    `SELECT t.id, t.title, v.data->>'title' AS projected FROM tb_post t LEFT JOIN tv_post v ON v.id = t.id WHERE t.id = ANY($1::uuid[])`,
    [posts],
  );
  const titles = new Map(rows.map((r) => [r.id, r]));
  for (const [post, attempts] of load.updates) {
    const lastAcked = attempts.findLastIndex((a) => a.acked);
    if (lastAcked < 0) continue;
    const allowed = new Set(
      attempts
        .slice(lastAcked)
        .filter((a, i) => i === 0 || !a.acked)
        .map((a) => a.title),
    );
    const row = titles.get(post);
    if (!row || !allowed.has(row.title)) lost.push(`update of post ${post} (title ${row?.title ?? 'none'})`);
    else {
      // Every acknowledged update of this post is accounted for: the last one is there, the earlier
      // ones were overwritten by later acknowledged ones.
      found += attempts.filter((a) => a.acked).length;
      if (row.projected !== row.title) unprojected.push(`update of post ${post}`);
    }
  }
  return { acknowledged: load.acknowledged, found, lost, unprojected };
}

export interface QueueState {
  /** Sync jobs not finished: in the sync outbox (not yet relayed), created, retry, active. */
  pending: number;
  /** Jobs in the dead letter queue (failed every retry). */
  deadLetters: number;
  /** Sync jobs that ended failed. */
  failed: number;
}

export async function queueState(db: Pick<pg.Pool, 'query'>): Promise<QueueState> {
  const { rows } = await db.query<QueueState>(
    `SELECT count(*) FILTER (WHERE name = 'projection-sync' AND state IN ('created', 'retry', 'active'))::int
              + (SELECT count(*) FROM sync_outbox)::int AS pending,
            count(*) FILTER (WHERE name = 'projection-sync-dead')::int AS "deadLetters",
            count(*) FILTER (WHERE name = 'projection-sync' AND state = 'failed')::int AS failed
       FROM pgboss.job`,
  );
  return rows[0]!;
}

export interface VerifyResult {
  exitCode: number;
  /** Rows missing, stale or orphaned in tv_* (from the CLI's "drift: N row(s)" / "no drift"). */
  drift: number;
  output: string;
}

/** `npm run sync -- verify`, as an operator runs it (the built CLI), against `databaseUrl`. */
export function runVerify(databaseUrl: string): Promise<VerifyResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [SYNC_CLI(), 'verify'],
      { env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        const exitCode = err ? ((err as { code?: unknown }).code as number) : 0;
        if (/no drift/.test(stdout)) return resolve({ exitCode, drift: 0, output });
        const m = stdout.match(/drift: (\d+) row/);
        if (m) return resolve({ exitCode, drift: Number(m[1]), output });
        reject(new Error(`sync verify gave no verdict (exit ${String(exitCode)}):\n${output}`));
      },
    );
  });
}

/** Error answers by code, most frequent first, as "CODE (HTTP n): count" lines. */
export function formatErrors(errors: Map<string, number>): string[] {
  return [...errors.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}: ${v}`);
}
