#!/usr/bin/env node
/**
 * `npm run bench`: our API against PostGraphile 5, Apollo with a resolver per field (with and
 * without DataLoader) and a bare node:http + pg server, side by side, in one run, on one dataset.
 *
 * 1. A scratch database (created, migrated, dropped at the end) gets a generated dataset in tb_*,
 *    synced into tv_* with SyncEngine.all().
 * 2. Reads, one system at a time: the system is started against the database through a counting
 *    proxy, each document's answer is checked against the truth computed from tb_*, and the SQL
 *    statements of a few sequential requests are counted. It is then restarted connected to
 *    PostgreSQL directly and put under load with wrk at each connection count, and its answer is
 *    checked again afterwards.
 * 3. Writes (which change the data, so after every read): the same for the write mixes.
 * 4. A markdown table and a JSON file go to bench-results/; the table is printed.
 *
 * Figures are only comparable within one run: the machine is shared and noisy.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { createBoss, createPool, repoRoot, sleep, SyncEngine, SyncQueue } from '@blog/shared';
import { generateDataset } from '@blog/shared/dist/bench/dataset';
import { scratchDatabase } from '@blog/shared/dist/bench/scratch';
import type { BareStatement, BareStatements } from './bare-server';
import {
  canonicalRead,
  checkWrite,
  fillWrite,
  firstDifference,
  readRequest,
  recentPostsDocument,
  userDocument,
  writeRequests,
  type DocId,
  type ReadDocId,
  type SystemId,
  type WriteDocId,
  type WriteRequests,
} from './documents';
import { otherShare, sampleCpu, spentSince, ticksByPid, ticksToUs } from './cpu';
import { Fleet } from './fleet';
import { answerProblem, postGraphql } from './http';
import { describeMachine, machineLine } from './machine';
import { parseOptions, USAGE, UsageError, type Options } from './options';
import { PgCountingProxy, type StatementCounts } from './pg-proxy';
import { cacheLookups, lookupsBetween, type CacheLookups } from './prometheus';
import { expectedRecentPosts, expectedUser, usernames } from './reference';
import {
  cacheRatiosTable,
  cacheWritesTable,
  evaluateTargets,
  markdownReport,
  resultsTable,
  targetsTable,
  type CacheWritesResult,
  type Cell,
  type RunReport,
  type SystemDocResult,
} from './report';
import { interruption, running, SYSTEMS, type Paths, type RunningSystem } from './systems';
import { runWrk, wrkVersion, type Load } from './wrk';

const POOL_MAX = 10;
/** A response slower than this is a timeout (N+1 at 64 connections is slow, not broken). */
const WRK_TIMEOUT_S = 30;
/** Users and posts the write mixes draw from. */
const WRITE_SAMPLE = 500;

const out = (line = '') => process.stdout.write(`${line}\n`);

interface Context {
  options: Options;
  paths: Paths;
  directUrl: string;
  proxiedUrl: string;
  proxy: PgCountingProxy;
  logDir: string;
  userId: string;
  writeUserIds: string[];
  writePostIds: string[];
  usernames: Map<string, string>;
  expected: Record<ReadDocId, unknown>;
  /** Our API's statement for each read document (captured on the wire), for the bare server. */
  oursStatements: Map<ReadDocId, BareStatement>;
  results: SystemDocResult[];
  cacheUnderWrites: CacheWritesResult[];
  notes: string[];
  smokeFleet?: Fleet;
  /** The harness's own connections to the scratch database. */
  pool: pg.Pool;
  /** The SQL each system ran per request, by "system document [operation]" (written to the logs). */
  statementLog: Record<string, { perRequest: number; text: string }[]>;
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (options.help) {
    out(USAGE);
    return 0;
  }
  const wrk = await wrkVersion();
  if (!wrk) {
    process.stderr.write('wrk is not installed: apt-get install -y wrk (https://github.com/wg/wrk)\n');
    return 2;
  }

  const benchDir = path.join(repoRoot, 'infra', 'bench');
  const paths: Paths = {
    repoRoot,
    apiMain: path.resolve(options.apiMain ?? path.join(repoRoot, 'services', 'api', 'dist', 'main.js')),
    benchDist: path.join(benchDir, 'dist'),
    peersDir: path.join(benchDir, 'peers'),
  };
  if (options.systems.some((s) => s === 'postgraphile' || s.startsWith('apollo'))) installPeers(paths.peersDir);

  const startedAt = new Date();
  const resultsDir = path.resolve(options.outDir ?? path.join(repoRoot, 'bench-results'));
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const logDir = path.join(resultsDir, 'logs', stamp);
  mkdirSync(logDir, { recursive: true });

  await useLocalServerWhenNoUrl();
  const scale = options.scale;
  const size = {
    users: Math.max(10, Math.round(1000 * scale)),
    posts: Math.max(60, Math.round(10_000 * scale)),
    comments: Math.max(100, Math.round(100_000 * scale)),
    postBytes: 1000,
  };
  const db = await scratchDatabase('blog_bench_graphql');
  const proxy = new PgCountingProxy(new URL(db.url).hostname, Number(new URL(db.url).port || 5432));
  const interrupted = new Promise<number>((resolve) => {
    const stop = () => {
      interruption.requested = true;
      resolve(130);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const pool = createPool(db.url, { applicationName: 'bench-harness', max: 4 });
  let ctxStatements: Context['statementLog'] = {};
  try {
    const run = (async () => {
      let t = performance.now();
      await generateDataset(pool, size);
      out(`dataset: ${size.users} users, ${size.posts} posts, ${size.comments} comments in ${seconds(t)} s`);
      t = performance.now();
      await new SyncEngine(pool).all();
      // The peers read tb_* newest first: give them the index any such application would have
      // (ours reads tv_post, which has its own). Without it they would sort every post per request.
      await pool.query('CREATE INDEX IF NOT EXISTS bench_tb_post_created_idx ON tb_post (created_at DESC, id DESC)');
      await pool.query('VACUUM ANALYZE');
      out(`synced tv_* (SyncEngine.all) and analyzed in ${seconds(t)} s`);

      await proxy.listen();
      const proxied = new URL(db.url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      const ctx: Context = {
        options,
        paths,
        directUrl: db.url,
        proxiedUrl: proxied.toString(),
        proxy,
        logDir,
        ...(await pickIds(pool)),
        expected: {
          recent5: await expectedRecentPosts(pool, 5),
          recent50: await expectedRecentPosts(pool, 50),
          user: null,
        },
        oursStatements: new Map(),
        results: [],
        cacheUnderWrites: [],
        notes: [],
        statementLog: {},
        pool,
      };
      ctxStatements = ctx.statementLog;
      // A smoke run keeps one set of systems, connected through the counting proxy, for every
      // phase: it checks that everything works, in seconds; its figures are not for comparing.
      if (options.smoke) ctx.smokeFleet = new Fleet(paths, ctx.proxiedUrl, POOL_MAX, logDir, 'smoke');
      ctx.expected.user = await expectedUser(pool, ctx.userId);

      try {
        await readPhase(ctx);
        if (options.cacheWrites) await cacheWritesPhase(ctx);
        if (options.writes) await writePhase(ctx);
      } finally {
        await ctx.smokeFleet?.stop();
      }

      const finishedAt = new Date();
      const report: RunReport = {
        startedAt: startedAt.toISOString(),
        finishedAt: finishedAt.toISOString(),
        smoke: options.smoke,
        machine: await describeMachine(pool, wrk),
        dataset: size,
        settings: {
          durationS: options.durationS,
          warmupS: options.warmupS,
          repeat: options.repeat,
          connections: options.connections,
          countRequests: options.countRequests,
          poolMax: POOL_MAX,
        },
        api: options.apiLabel ?? `${path.relative(repoRoot, paths.apiMain)} (${gitDescribe()})`,
        notes: [
          ...(options.smoke
            ? [
                'SMOKE RUN: a tiny dataset, 2-second cells, and every system stays connected through the counting proxy ' +
                  'for the whole run: it checks that the benchmark works, its figures are not for comparing.',
              ]
            : []),
          ...(options.smoke
            ? []
            : [
                options.oneAtATime
                  ? 'Under load each system ran alone (--one-at-a-time), started and stopped in turn.'
                  : 'Under load all systems were running, idle except the one measured, ' +
                    'and took turns cell by cell (document and connection count), ' +
                    'so that a burst of other work on the shared machine lands on all systems of a cell alike ' +
                    "rather than on one system's whole series; --one-at-a-time runs each alone.",
              ]),
          ...(options.repeat > 1 ? [`Each cell is the best of ${options.repeat} rounds in which the systems took turns.`] : []),
          ...standardNotes(ctx),
          ...ctx.notes,
        ],
        results: ctx.results,
        cacheUnderWrites: ctx.cacheUnderWrites,
        targets: evaluateTargets(ctx.results, options.connections),
      };
      return report;
    })();
    const report = await Promise.race([run, interrupted]);
    if (typeof report === 'number') {
      out('interrupted: stopping the systems and dropping the scratch database');
      return report;
    }
    const md = markdownReport(report);
    writeFileSync(path.join(logDir, 'statements.json'), `${JSON.stringify(ctxStatements, null, 2)}\n`);
    const base = `graphql-${options.smoke ? 'smoke-' : ''}`;
    writeFileSync(path.join(resultsDir, `${base}${stamp}.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, `${base}${stamp}.md`), md);
    writeFileSync(path.join(resultsDir, `${base}latest.json`), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(path.join(resultsDir, `${base}latest.md`), md);
    out();
    out(`Machine: ${machineLine(report.machine)}`);
    out();
    out(resultsTable(report.results, options.connections));
    out();
    const ratios = cacheRatiosTable(report.results, options.connections);
    if (ratios) out(`The response cache against the other rows (req/s of ours, response cache, divided by theirs):\n\n${ratios}\n`);
    const underWrites = cacheWritesTable(report.cacheUnderWrites);
    if (underWrites) out(`The response cache under writes:\n\n${underWrites}\n`);
    out(targetsTable(report.targets));
    out();
    for (const n of report.notes) out(`- ${n}`);
    out();
    out(
      `results: ${path.relative(process.cwd(), path.join(resultsDir, `${base}latest.md`))} (and .json); ` +
        `system logs in ${path.relative(process.cwd(), logDir)}`,
    );
    const failures = report.results.filter(
      (r) => (r.error && !r.absent) || r.cells.some((c) => Object.values(c.errors).some((n) => n > 0)),
    );
    for (const f of failures) {
      process.stderr.write(`FAILED: ${SYSTEMS[f.system].label}, ${f.doc}: ${f.error ?? 'requests failed under load'}\n`);
    }
    const cacheFailures = report.cacheUnderWrites.filter(
      (r) => r.error || r.wrong.length || r.failedWrites || (r.cell && Object.values(r.cell.errors).some((n) => n > 0)),
    );
    for (const f of cacheFailures) {
      const why =
        f.error ?? (f.wrong.length ? `${f.wrong.length} reads after a write were wrong, the first: ${f.wrong[0]}` : 'requests failed');
      process.stderr.write(`FAILED: ${SYSTEMS['ours-cached'].label} under writes, ${f.doc}: ${why}\n`);
    }
    return failures.length || cacheFailures.length ? 1 : 0;
  } finally {
    await Promise.all([...running].map((s) => s.stop()));
    await proxy.close();
    await pool.end();
    await db.drop();
  }
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1);
}

/** DATABASE_URL, else PostgreSQL on 127.0.0.1:5432 as postgres if it answers (else the embedded one). */
async function useLocalServerWhenNoUrl(): Promise<void> {
  if (process.env.DATABASE_URL) return;
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  const client = new pg.Client({ connectionString: local, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    process.env.DATABASE_URL = local;
  } catch {
    // the scratch database goes to the embedded server
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Installs the peers (infra/bench/peers, a separate npm project) when their node_modules do not
 * match their lockfile. `npm install` rather than `npm ci`: the registry reachable here lacks some
 * other platforms' optional binaries, which `npm ci` refuses; the lockfile still pins every version.
 */
function installPeers(peersDir: string): void {
  const lock = JSON.parse(readFileSync(path.join(peersDir, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; dependencies?: Record<string, string> }>;
  };
  const deps = Object.keys(lock.packages['']?.dependencies ?? {});
  const installed = deps.every((dep) => {
    const file = path.join(peersDir, 'node_modules', dep, 'package.json');
    if (!existsSync(file)) return false;
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version === lock.packages[`node_modules/${dep}`]?.version;
  });
  if (installed) return;
  out('installing the peers (infra/bench/peers: PostGraphile 5, Apollo Server, DataLoader)...');
  const npmCli = process.env.npm_execpath;
  const [cmd, args] = npmCli && npmCli.endsWith('.js') ? [process.execPath, [npmCli]] : ['npm', []];
  const result = spawnSync(cmd, [...args, 'install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: peersDir, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`npm install in ${peersDir} failed (exit ${result.status})`);
}

function gitDescribe(): string {
  try {
    return `commit ${execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim()}`;
  } catch {
    return 'unknown commit';
  }
}

async function pickIds(pool: pg.Pool): Promise<Pick<Context, 'userId' | 'writeUserIds' | 'writePostIds' | 'usernames'>> {
  // GetUser: the second generated user (the first one's posts are all unpublished).
  const user = await pool.query<{ id: string }>('SELECT id FROM tb_user ORDER BY created_at, id OFFSET 1 LIMIT 1');
  const users = await pool.query<{ id: string }>('SELECT id FROM tb_user ORDER BY md5(id::text) LIMIT $1', [WRITE_SAMPLE]);
  const posts = await pool.query<{ id: string }>('SELECT id FROM tb_post ORDER BY md5(id::text) LIMIT $1', [WRITE_SAMPLE]);
  const writeUserIds = users.rows.map((r) => r.id);
  return {
    userId: user.rows[0]!.id,
    writeUserIds,
    writePostIds: posts.rows.map((r) => r.id),
    usernames: await usernames(pool, writeUserIds),
  };
}

// -----------------------------------------------------------------------------------------------
// Reads
// -----------------------------------------------------------------------------------------------

function result(ctx: Context, system: SystemId, doc: DocId): SystemDocResult {
  let r = ctx.results.find((x) => x.system === system && x.doc === doc);
  if (!r) {
    r = { system, doc, cells: [] };
    ctx.results.push(r);
  }
  return r;
}

/**
 * Reads: every system's answers are checked and its statements counted through the proxy; then
 * all systems run connected directly and take turns under load, cell by cell.
 */
async function readPhase(ctx: Context): Promise<void> {
  const { options } = ctx;
  const ids = options.systems.filter((id) => SYSTEMS[id].reads);
  for (const id of ids) for (const doc of options.readDocs) result(ctx, id, doc);

  out('\n== reads: answers and SQL statements, through the counting proxy');
  const check = ctx.smokeFleet ?? fleet(ctx, ctx.proxiedUrl, 'reads-check');
  const isBare = (id: SystemId) => id === 'bare';
  await startTimed(
    check,
    ids.filter((id) => !isBare(id)),
  );
  let bareFiles: Partial<Record<SystemId, string>> | undefined;
  for (const id of ids) {
    if (isBare(id) && !bareFiles) {
      // The ceiling runs our API's statements, captured just before: the bare servers start last.
      bareFiles = writeBareStatements(ctx);
      await check.start(ids.filter(isBare), { bareStatements: bareFiles });
    }
    const system = await check.get(id);
    for (const doc of options.readDocs) {
      const r = result(ctx, id, doc);
      if (typeof system === 'string') {
        r.error = system;
        out(`   ${id} ${doc}: ${system}`);
        continue;
      }
      await checkAndCountRead(ctx, system, r as SystemDocResult & { doc: ReadDocId });
    }
  }
  if (!ctx.smokeFleet) await check.stop();

  const docs = options.loadReadDocs.filter((d) => options.readDocs.includes(d));
  const loadIds = ids.filter((id) => docs.some((doc) => !result(ctx, id, doc).error));
  if (!loadIds.length) return;
  out(`\n== reads: load, ${loadMode(ctx)}`);
  for (const group of groups(ctx, loadIds)) {
    const load = ctx.smokeFleet ?? fleet(ctx, ctx.directUrl, 'reads-load');
    await startTimed(load, group, { bareStatements: bareFiles });
    for (const doc of docs) {
      for (const c of options.connections) {
        await measureInTurns(
          ctx,
          load,
          group.map((id) => ({ r: result(ctx, id, doc), load: { kind: 'read', request: readRequest(id, doc, ctx.userId) } as Load })),
          c,
        );
      }
    }
    // Still the right answer after the load?
    for (const id of group) {
      const system = await load.get(id);
      for (const doc of docs) {
        const r = result(ctx, id, doc);
        if (r.error || typeof system === 'string' || !SYSTEMS[id].checked) continue;
        const after = await checkRead(system, doc, ctx);
        if (after) r.error = `answer wrong after the load: ${after.error}`;
      }
    }
    if (!ctx.smokeFleet) await load.stop();
  }
}

/**
 * Who runs at the same time under load: by default every system (started together, idle while
 * another is measured, taking turns cell by cell); with --one-at-a-time, each system alone.
 */
function groups(ctx: Context, ids: SystemId[]): SystemId[][] {
  return ctx.options.oneAtATime && !ctx.smokeFleet ? ids.map((id) => [id]) : [ids];
}

function loadMode(ctx: Context): string {
  if (ctx.smokeFleet) return 'through the counting proxy (smoke), systems taking turns';
  return ctx.options.oneAtATime ? 'connected directly, one system at a time' : 'connected directly, systems taking turns';
}

async function checkAndCountRead(ctx: Context, system: RunningSystem, r: SystemDocResult & { doc: ReadDocId }): Promise<void> {
  const { options } = ctx;
  const request = readRequest(r.system, r.doc, ctx.userId);
  if (!SYSTEMS[r.system].checked) {
    // The constant server (constant-server.ts): one fixed text whatever is asked, so there is no
    // data to compare; it has no database connection either (no SQL). It must answer, that is all.
    const answer = await postGraphql(system.url, request).catch((err: Error) => ({ status: 0, text: err.message, body: undefined }));
    const problem = answerProblem(answer);
    if (problem) {
      r.error = problem;
      out(`   ${r.system} ${r.doc}: WRONG: ${problem}`);
      return;
    }
    r.answerBytes = Buffer.byteLength(answer.text);
    r.statementsPerRequest = 0;
    r.note = 'not checked against the data: a constant answer';
    out(
      `   ${r.system} ${r.doc}: NOT CHECKED against the data ` +
        `(one constant answer of ${fmtNum(r.answerBytes)} bytes, whatever is asked); no SQL`,
    );
    return;
  }
  const problem = await checkRead(system, r.doc, ctx);
  if (problem) {
    Object.assign(r, problem);
    out(`   ${r.system} ${r.doc}: ${problem.absent ? 'not available' : 'WRONG'}: ${problem.error}`);
    return;
  }
  // Warm the connections (prepared statements, per-connection set-up) before counting.
  for (let i = 0; i < 3; i++) await postGraphql(system.url, request);
  if (r.system === 'ours-cached') {
    const problem = await checkCachedRead(ctx, system, r.doc);
    if (problem) {
      r.error = problem;
      out(`   ${r.system} ${r.doc}: WRONG: ${problem}`);
      return;
    }
  }
  ctx.proxy.reset({ capture: true });
  for (let i = 0; i < options.countRequests; i++) await postGraphql(system.url, request);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const counts = ctx.proxy.snapshot();
  logStatements(ctx, `${r.system} ${r.doc}`, options.countRequests);
  r.statementsPerRequest = requestStatements(counts) / options.countRequests;
  r.roundTripsPerRequest = counts.roundTrips / options.countRequests;
  r.countDetail = counts;
  if (r.system === 'ours') rememberOursStatement(ctx, r.doc, options.countRequests);
  const cacheNote = r.system === 'ours-cached' ? ' (answers from the response cache)' : '';
  out(
    `   ${r.system} ${r.doc}: answer correct${r.system === 'ours-cached' ? ', and again from the cache' : ''}; ` +
      `${fmtNum(r.statementsPerRequest)} SQL statements per request${cacheNote}`,
  );
}

/**
 * The first check of the cached API was a miss (its answer came from SQL): this one must be a hit
 * (its counters say so) and still equal the data. The cache serves nothing until the API's change
 * feed listens, which may take a moment after start-up: it is given a few seconds.
 */
async function checkCachedRead(ctx: Context, system: RunningSystem, doc: ReadDocId): Promise<string | undefined> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const before = await cacheLookups(system.url);
    const problem = await checkRead(system, doc, ctx);
    if (problem) return `cached answer: ${problem.error}`;
    const lookups = lookupsBetween(before, await cacheLookups(system.url));
    if (lookups.hit === 1) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return 'the response cache never answered (its counters show no hit in 10 s)';
}

/**
 * Connections of our API's change feed listener (shared/src/sync/feed.ts): it sends itself a probe
 * (SELECT pg_notify) every second, whatever the requests. Not request work: not counted.
 */
const FEED_LISTENER = 'blog-api-listen';

/** Statements completed for the requests: all, less the feed listeners' probes. */
function requestStatements(counts: StatementCounts): number {
  return counts.statements - (counts.byApplication[FEED_LISTENER] ?? 0);
}

async function checkRead(system: RunningSystem, doc: ReadDocId, ctx: Context): Promise<{ error: string; absent?: boolean } | undefined> {
  let answer;
  try {
    answer = await postGraphql(system.url, readRequest(system.spec.id, doc, ctx.userId));
  } catch (err) {
    return { error: `request failed: ${(err as Error).message}` };
  }
  const problem = answerProblem(answer);
  if (problem) return { error: problem, absent: answer.status === 404 };
  const r = ctx.results.find((x) => x.system === system.spec.id && x.doc === doc);
  if (r) r.answerBytes = Buffer.byteLength(answer.text);
  let canonical;
  try {
    canonical = canonicalRead(doc, answer.body!.data);
  } catch (err) {
    return { error: `wrong shape: ${(err as Error).message}` };
  }
  const diff = firstDifference(canonical, ctx.expected[doc]);
  return diff ? { error: `wrong data: ${diff}` } : undefined;
}

/** Records the distinct statements just captured, with how many times each ran per request. */
function logStatements(ctx: Context, key: string, requests: number): void {
  const byText = new Map<string, number>();
  for (const s of ctx.proxy.capturedStatements()) if (s.application !== FEED_LISTENER) byText.set(s.text, (byText.get(s.text) ?? 0) + 1);
  ctx.statementLog[key] = [...byText].map(([text, n]) => ({ perRequest: n / requests, text }));
}

/** Keeps the one statement our API ran per request for `doc`, when it was one and replayable. */
function rememberOursStatement(ctx: Context, doc: ReadDocId, requests: number): void {
  // The API's own pool (pg-boss, if it ran anything meanwhile, uses blog-api-queue).
  const captured = ctx.proxy.capturedStatements().filter((s) => s.application === 'blog-api');
  const texts = new Set(captured.map((s) => s.text));
  const first = captured[0];
  if (captured.length === requests && texts.size === 1 && first?.params) {
    ctx.oursStatements.set(doc, { sql: first.text, params: first.params, shape: 'data', source: 'our API (captured)' });
  }
}

/**
 * The bare server's statements: for each read document, the SQL our API ran for it (captured on
 * the wire earlier in this run). Without it the bare server has nothing to run: the stored
 * documents alone do not answer a read (comments and kept counts are merged in by the statement).
 */
function writeBareStatements(ctx: Context): Partial<Record<SystemId, string>> {
  const statements: BareStatements = {};
  for (const doc of ctx.options.readDocs) {
    const query = doc === 'user' ? userDocument(ctx.userId) : recentPostsDocument(doc === 'recent5' ? 5 : 50);
    const captured = ctx.oursStatements.get(doc);
    if (!captured) throw new Error(`our API's statement for ${doc} was not captured in this run: the bare server has nothing to run`);
    statements[query] = captured;
  }
  ctx.notes.push(
    'The bare server ran, for each document, exactly the SQL statement our API ran for it ' +
      '(captured on the wire in this run), with the same parameters.',
  );
  const files = { bare: path.join(ctx.logDir, 'bare-statements.json') };
  writeFileSync(files.bare, `${JSON.stringify(statements, null, 2)}\n`);
  return files;
}

// -----------------------------------------------------------------------------------------------
// The response cache under writes
// -----------------------------------------------------------------------------------------------

/** Connections reading the cached API while one client writes (the issue's figure). */
const CACHE_WRITES_CONNECTIONS = 16;
const CACHE_WRITES_DOCS: readonly ReadDocId[] = ['recent5', 'user'];

interface WriterState {
  stop: boolean;
  writes: number;
  failed: number;
  /** performance.now() of each acknowledged write. */
  writtenAt: number[];
  /** performance.now() of each check read sent. */
  checkedAt: number[];
  checks: number;
  wrong: string[];
  failures: string[];
}

/**
 * The cached API (`ours-cached`) read by wrk at 16 connections, document by document (the seed's
 * GetRecentPosts and GetUser), while one client writes through the same API at a steady rate
 * (--write-rate, 50 a second), INLINE. Every write changes what both documents read (by the cache's
 * rule, any change of a post, a comment or a user's counts drops them), and some change their
 * answers too: updatePost renames one of the five newest posts (GetRecentPosts' titles), and every
 * other write is a comment by GetUser's user (its commentCount). Comments go to posts other than the
 * five newest, so that those keep their first page of comments whole (the reference lists every
 * comment).
 *
 * After every fifth write, once every write sent has been answered, the writer reads the document
 * through the cached API and compares it with the answer computed from tb_* at that moment: it is
 * the only one writing and sends nothing meanwhile, so nothing changes in between, and an INLINE
 * write has dropped what it changed from this process's cache before it answered. The hit ratio
 * comes from the API's Prometheus counters, read just before and just after wrk's measured run.
 */
async function cacheWritesPhase(ctx: Context): Promise<void> {
  const { options } = ctx;
  if (!options.systems.includes('ours-cached')) return;
  const docs = CACHE_WRITES_DOCS.filter((d) => options.readDocs.includes(d) && !result(ctx, 'ours-cached', d).error);
  if (!docs.length) return;
  const connections = ctx.smokeFleet ? options.connections[0]! : CACHE_WRITES_CONNECTIONS;
  out(
    `\n== the response cache under writes: ${SYSTEMS['ours-cached'].label} read at ${connections} connections ` +
      `while one client writes ${options.writeRate}/s (INLINE)`,
  );
  const f = ctx.smokeFleet ?? fleet(ctx, ctx.directUrl, 'cache-writes');
  await startTimed(f, ['ours-cached']);
  const system = await f.get('ours-cached');
  try {
    const newest = (await ctx.pool.query<{ id: string }>('SELECT id FROM tb_post ORDER BY created_at DESC, id DESC LIMIT 5')).rows.map(
      (r) => r.id,
    );
    const others = ctx.writePostIds.filter((id) => !newest.includes(id));
    for (const doc of docs) {
      const row: CacheWritesResult = {
        doc,
        connections,
        writeRate: options.writeRate,
        writesPerSecond: 0,
        writes: 0,
        failedWrites: 0,
        hits: 0,
        misses: 0,
        checkReadsInRun: 0,
        checks: 0,
        wrong: [],
        rpsWithoutWrites: result(ctx, 'ours-cached', doc).cells.find((c) => c.connections === connections)?.rps,
      };
      ctx.cacheUnderWrites.push(row);
      if (typeof system === 'string') {
        row.error = system;
        continue;
      }
      await cacheUnderWrites(ctx, system, row, { newest, others });
      const c = row.cell;
      out(
        c
          ? `   ours-cached ${doc} x${connections} under ${row.writesPerSecond.toFixed(1)} writes/s: ${Math.round(c.rps)} req/s ` +
              `(no writes: ${row.rpsWithoutWrites === undefined ? '—' : Math.round(row.rpsWithoutWrites)}), ` +
              `p50 ${c.p50Ms.toFixed(2)} ms, p99 ${c.p99Ms.toFixed(2)} ms; cache hits ${row.hits}, misses ${row.misses} ` +
              `(${((row.hits / Math.max(1, row.hits + row.misses)) * 100).toFixed(1)}%); ${row.checks} reads after a write checked, ` +
              `${row.wrong.length ? `${row.wrong.length} WRONG: ${row.wrong[0]}` : 'all correct'}` +
              `${row.failedWrites ? `; ${row.failedWrites} writes FAILED: ${row.error ?? ''}` : ''}${failedText(c)}`
          : `   ours-cached ${doc}: ${row.error ?? 'not measured'}`,
      );
    }
    const inRuns = ctx.cacheUnderWrites.reduce((n, r) => n + r.checkReadsInRun, 0);
    ctx.notes.push(
      `The response cache under writes: ${SYSTEMS['ours-cached'].label} read by wrk at ${connections} connections, ` +
        'one document at a time, while one client wrote through the same API ' +
        `at ${options.writeRate}/s (INLINE, up to ${WRITES_IN_FLIGHT} at a time; ` +
        "updatePost of one of the five newest posts and createComment, every other one by GetUser's user). " +
        `After every ${CHECK_EVERY}th write, once all writes sent were answered, ` +
        'a read of the document was compared with the answer computed from tb_* at that moment. ' +
        "Every write drops both documents from the cache (they read posts, comments and users' counts). " +
        "Hits and misses are the API's counters (blog_response_cache_lookups_total) over the measured run; " +
        `they include the writer's ${inRuns} check reads in those runs, nearly all misses (each follows a write). ` +
        '"req/s, no writes" is the same cell of the read phase.',
    );
    // What the writes changed is the truth from now on.
    ctx.expected.recent5 = await expectedRecentPosts(ctx.pool, 5);
    ctx.expected.recent50 = await expectedRecentPosts(ctx.pool, 50);
    ctx.expected.user = await expectedUser(ctx.pool, ctx.userId);
  } finally {
    if (!ctx.smokeFleet) await f.stop();
  }
}

async function cacheUnderWrites(
  ctx: Context,
  system: RunningSystem,
  row: CacheWritesResult,
  posts: { newest: string[]; others: string[] },
): Promise<void> {
  const state: WriterState = { stop: false, writes: 0, failed: 0, writtenAt: [], checkedAt: [], checks: 0, wrong: [], failures: [] };
  const writing = writeSteadily(ctx, system, row.doc as ReadDocId, posts, state);
  let before: CacheLookups | undefined;
  const window = { from: 0, to: 0 };
  try {
    row.cell = await measure(
      ctx,
      system,
      { kind: 'read', request: readRequest('ours-cached', row.doc as ReadDocId, ctx.userId) },
      row.connections,
      {
        before: async () => {
          before = await cacheLookups(system.url);
          window.from = performance.now();
        },
        after: async () => {
          window.to = performance.now();
          const lookups = lookupsBetween(before!, await cacheLookups(system.url));
          row.hits = lookups.hit;
          row.misses = lookups.miss;
        },
      },
    );
  } catch (err) {
    row.error = (err as Error).message;
  } finally {
    state.stop = true;
    await writing;
  }
  const inWindow = (t: number) => t >= window.from && t <= window.to;
  row.writes = state.writes;
  row.failedWrites = state.failed;
  if (state.failures.length) row.error = state.failures[0];
  row.writesPerSecond = window.to > window.from ? state.writtenAt.filter(inWindow).length / ((window.to - window.from) / 1000) : 0;
  row.checkReadsInRun = state.checkedAt.filter(inWindow).length;
  row.checks = state.checks;
  row.wrong = state.wrong;
}

/** Writes in flight at most: a write due beyond it waits for one to be answered. */
const WRITES_IN_FLIGHT = 8;
/** A checked read after every this many writes. */
const CHECK_EVERY = 5;

/**
 * One write every 1/rate s, sent without waiting for the previous answers (a write that falls
 * behind is sent as soon as it can: the rate holds on average). After every CHECK_EVERY writes,
 * the writer waits until every write it sent has been answered, reads the document through the
 * cached API, and compares it with the answer computed from tb_* (see cacheWritesPhase); then the
 * writes go on, catching up what fell due meanwhile.
 */
async function writeSteadily(
  ctx: Context,
  system: RunningSystem,
  doc: ReadDocId,
  posts: { newest: string[]; others: string[] },
  state: WriterState,
): Promise<void> {
  const period = 1000 / ctx.options.writeRate;
  const started = performance.now();
  const pick = <T>(list: readonly T[]) => list[Math.floor(Math.random() * list.length)]!;
  const inFlight = new Set<Promise<void>>();
  const write = async (i: number) => {
    const request =
      i % 2 === 0
        ? {
            operationName: 'Rename',
            query: 'mutation Rename($id: ID!, $title: String!) { updatePost(id: $id, title: $title, sync: INLINE) { id title } }',
            variables: { id: pick(posts.newest), title: `Renamed under reads ${i}` },
          }
        : {
            operationName: 'Comment',
            query:
              'mutation Comment($postId: ID!, $authorId: ID!) { ' +
              'createComment(postId: $postId, authorId: $authorId, content: "Written beside cached reads.", sync: INLINE) { id } }',
            variables: { postId: pick(posts.others), authorId: i % 4 === 1 ? ctx.userId : pick(ctx.writeUserIds) },
          };
    const answer = await postGraphql(system.url, request).catch((err: Error) => ({ status: 0, text: err.message, body: undefined }));
    const problem = answerProblem(answer);
    if (problem) {
      state.failed += 1;
      if (state.failures.length < 5) state.failures.push(`${request.operationName}: ${problem}`);
      return;
    }
    state.writes += 1;
    state.writtenAt.push(performance.now());
  };
  for (let i = 0; !state.stop; i++) {
    const wait = started + i * period - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (state.stop) break;
    const sending = write(i).finally(() => inFlight.delete(sending));
    inFlight.add(sending);
    if (inFlight.size >= WRITES_IN_FLIGHT) await Promise.race(inFlight);
    if (i % CHECK_EVERY === CHECK_EVERY - 1) {
      // Nothing in flight: what tb_* holds now is what every read from here on must show.
      await Promise.all(inFlight);
      await checkAfterWrites(ctx, system, doc, state, i);
    }
  }
  await Promise.all(inFlight);
}

async function checkAfterWrites(ctx: Context, system: RunningSystem, doc: ReadDocId, state: WriterState, i: number): Promise<void> {
  state.checkedAt.push(performance.now());
  const read = await postGraphql(system.url, readRequest('ours-cached', doc, ctx.userId)).catch((err: Error) => ({
    status: 0,
    text: err.message,
    body: undefined,
  }));
  const expected =
    doc === 'user' ? await expectedUser(ctx.pool, ctx.userId) : await expectedRecentPosts(ctx.pool, doc === 'recent5' ? 5 : 50);
  state.checks += 1;
  let diff = answerProblem(read);
  if (!diff) {
    try {
      diff = firstDifference(canonicalRead(doc, read.body!.data), expected);
    } catch (err) {
      diff = `wrong shape: ${(err as Error).message}`;
    }
  }
  if (diff) state.wrong.push(state.wrong.length < 20 ? `after write ${i}: ${diff}` : '(more)');
}

// -----------------------------------------------------------------------------------------------
// Writes
// -----------------------------------------------------------------------------------------------

interface WriteVariant {
  system: SystemId;
  doc: WriteDocId;
  requests: WriteRequests;
}

async function writePhase(ctx: Context): Promise<void> {
  const { options } = ctx;
  const ids = options.systems.filter((id) => SYSTEMS[id].writes.length);
  if (!ids.length) return;
  const variants: WriteVariant[] = ids.flatMap((id) =>
    SYSTEMS[id].writes.map((mode) => ({
      system: id,
      doc: (mode === 'INLINE' ? 'writes-inline' : mode === 'QUEUED' ? 'writes-queued' : 'writes') as WriteDocId,
      requests: writeRequests(id, mode === 'none' ? undefined : mode),
    })),
  );
  for (const v of variants) result(ctx, v.system, v.doc);

  out('\n== writes: answers and SQL statements, through the counting proxy');
  const check = ctx.smokeFleet ?? fleet(ctx, ctx.proxiedUrl, 'writes-check');
  await startTimed(check, ids);
  for (const v of variants) {
    const r = result(ctx, v.system, v.doc);
    const system = await check.get(v.system);
    if (typeof system === 'string') {
      r.error = system;
      out(`   ${v.system} ${v.doc}: ${system}`);
      continue;
    }
    await checkAndCountWrite(ctx, system, v, r);
  }
  if (!ctx.smokeFleet) await check.stop();

  const valid = variants.filter((v) => !result(ctx, v.system, v.doc).error);
  if (!valid.length) return;
  out(`\n== writes: load, ${loadMode(ctx)}`);
  const stopRelay = await startRelay(ctx.directUrl);
  try {
    await writeLoad(ctx, valid);
  } finally {
    await stopRelay();
  }
}

/**
 * What the workers do with QUEUED writes' jobs before refreshing anything: moves the sync outbox to
 * pg-boss (SyncQueue.relay) whenever it has rows, so the cost of a QUEUED write's enqueue is measured
 * whole although no worker runs during the benchmark. Returns its stop.
 */
async function startRelay(url: string): Promise<() => Promise<void>> {
  const pool = createPool(url, { applicationName: 'bench-relay', max: 1 });
  const boss = createBoss({ url, applicationName: 'bench-relay', maintenance: false, max: 1 });
  await boss.start();
  const queue = new SyncQueue(boss, pool);
  let stopping = false;
  const loop = (async () => {
    while (!stopping) {
      await queue.relayAll(() => stopping);
      await sleep(50);
    }
  })();
  return async () => {
    stopping = true;
    await loop;
    await boss.stop({ graceful: false, close: true });
    await pool.end();
  };
}

async function writeLoad(ctx: Context, valid: WriteVariant[]): Promise<void> {
  const { options } = ctx;
  for (const group of groups(ctx, [...new Set(valid.map((v) => v.system))])) {
    const load = ctx.smokeFleet ?? fleet(ctx, ctx.directUrl, 'writes-load');
    await startTimed(load, group);
    for (const c of options.connections) {
      await measureInTurns(
        ctx,
        load,
        valid
          .filter((v) => group.includes(v.system))
          .map((v) => ({
            r: result(ctx, v.system, v.doc),
            load: { kind: 'write', requests: v.requests, userIds: ctx.writeUserIds, postIds: ctx.writePostIds } as Load,
          })),
        c,
      );
    }
    if (!ctx.smokeFleet) await load.stop();
  }
}

async function checkAndCountWrite(ctx: Context, system: RunningSystem, v: WriteVariant, r: SystemDocResult): Promise<void> {
  const authorId = ctx.writeUserIds[0]!;
  const postId = ctx.writePostIds[0]!;
  const author = ctx.usernames.get(authorId)!;
  const ops = [
    { name: 'CreatePost', key: 'createPost' as const, request: fillWrite(v.requests.createPost, { authorId }) },
    { name: 'AddComment', key: 'createComment' as const, request: fillWrite(v.requests.addComment, { authorId, postId }) },
  ];
  for (const op of ops) {
    const answer = await postGraphql(system.url, op.request).catch((err: Error) => ({ status: 0, text: err.message, body: undefined }));
    const problem = answerProblem(answer) ?? checkWrite(op.key, answer.body!.data, author);
    if (problem) {
      Object.assign(r, { error: `${op.name}: ${problem}`, absent: answer.status === 404 });
      out(`   ${v.system} ${v.doc}: ${answer.status === 404 ? 'not available' : 'WRONG'}: ${op.name}: ${problem}`);
      return;
    }
  }
  const perOp: Record<string, number> = {};
  let total = 0;
  let roundTrips = 0;
  const n = Math.max(2, Math.round(ctx.options.countRequests / 2));
  for (const op of ops) {
    ctx.proxy.reset({ capture: true });
    for (let i = 0; i < n; i++) await postGraphql(system.url, op.request);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const counts = ctx.proxy.snapshot();
    logStatements(ctx, `${v.system} ${v.doc} ${op.name}`, n);
    perOp[op.name] = requestStatements(counts) / n;
    total += requestStatements(counts);
    roundTrips += counts.roundTrips;
  }
  r.statementsPerRequest = total / (2 * n);
  r.roundTripsPerRequest = roundTrips / (2 * n);
  r.statementsByOperation = perOp;
  out(
    `   ${v.system} ${v.doc}: answers correct; SQL statements per request: ${Object.entries(perOp)
      .map(([k, x]) => `${k} ${fmtNum(x)}`)
      .join(', ')}`,
  );
}

// -----------------------------------------------------------------------------------------------

function fleet(ctx: Context, databaseUrl: string, name: string): Fleet {
  return new Fleet(ctx.paths, databaseUrl, POOL_MAX, ctx.logDir, name);
}

async function startTimed(f: Fleet, ids: SystemId[], options: { bareStatements?: Partial<Record<SystemId, string>> } = {}): Promise<void> {
  const t = performance.now();
  await f.start(ids, options);
  out(`   started ${ids.join(', ')} in ${seconds(t)} s`);
}

/**
 * One cell for each of these (system, document) pairs at `connections`: the systems take turns,
 * `repeat` rounds, and each keeps its best round (on a shared machine, disturbances only lower
 * figures).
 */
async function measureInTurns(ctx: Context, f: Fleet, entries: { r: SystemDocResult; load: Load }[], connections: number): Promise<void> {
  const best = new Map<SystemDocResult, Cell>();
  for (let round = 0; round < ctx.options.repeat; round++) {
    for (const { r, load } of entries) {
      if (r.error || interruption.requested) continue;
      const system = await f.get(r.system);
      if (typeof system === 'string') {
        r.error = system;
        continue;
      }
      try {
        const cell = await measure(ctx, system, load, connections);
        const prev = best.get(r);
        if (!prev || cell.rps > prev.rps) best.set(r, cell);
        (r.rounds ??= []).push({ connections, round, rps: cell.rps });
      } catch (err) {
        r.error = (err as Error).message;
      }
    }
  }
  for (const { r } of entries) {
    const cell = best.get(r);
    if (!cell) continue;
    r.cells.push(cell);
    const other = cell.otherCpu === undefined ? '' : `; other work on the machine: ${Math.round(cell.otherCpu * 100)}% of the CPU`;
    out(
      cell.requests === 0
        ? `   ${r.system} ${r.doc} x${connections}: no request completed in ${cell.durationS.toFixed(1)} s${other}`
        : `   ${r.system} ${r.doc} x${connections}: ${Math.round(cell.rps)} req/s, ` +
            `p50 ${cell.p50Ms.toFixed(2)} ms, p99 ${cell.p99Ms.toFixed(2)} ms${failedText(cell)}${other}`,
    );
  }
}

/**
 * A warm-up and a measured run of wrk; `around` is called just before and just after the measured
 * run (to read counters over exactly that run).
 */
async function measure(
  ctx: Context,
  system: RunningSystem,
  load: Load,
  connections: number,
  around?: { before: () => Promise<void>; after: () => Promise<void> },
): Promise<Cell> {
  const { options } = ctx;
  const url = `${system.url}/graphql`;
  if (options.warmupS > 0) await runWrk({ url, connections, durationS: options.warmupS, timeoutS: WRK_TIMEOUT_S, load });
  // The system's PostgreSQL backends (its pool has grown during the warm-up): their CPU is the benchmark's own.
  const { rows } = await ctx.pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  const server = system.pid ? [system.pid] : [];
  const backends = rows.map((r) => r.pid);
  const pids = [...server, ...backends];
  await around?.before();
  const start = ticksByPid(pids);
  const before = sampleCpu();
  const result = await runWrk({ url, connections, durationS: options.durationS, timeoutS: WRK_TIMEOUT_S, load });
  // Backends that connected during the run count whole (all their CPU time is within it).
  const connected = await ctx.pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  const joined = connected.rows.map((r) => r.pid).filter((pid) => !backends.includes(pid));
  const [serverTicks, databaseTicks] = [spentSince(start, server), spentSince(start, [...backends, ...joined])];
  const otherCpu = otherShare(before, sampleCpu(), serverTicks + databaseTicks);
  const cpuPerRequest =
    server.length && result.requests > 0
      ? { server: ticksToUs(serverTicks) / result.requests, database: ticksToUs(databaseTicks) / result.requests }
      : undefined;
  await around?.after();
  return { connections, ...result, ...(otherCpu === undefined ? {} : { otherCpu }), ...(cpuPerRequest ? { cpuPerRequest } : {}) };
}

function failedText(cell: { errors: Record<string, number> }): string {
  const failed = Object.entries(cell.errors).filter(([, n]) => n > 0);
  return failed.length ? ` FAILED REQUESTS: ${failed.map(([k, n]) => `${k} ${n}`).join(', ')}` : '';
}

function fmtNum(n: number | undefined): string {
  return n === undefined ? '?' : Number.isInteger(n) ? String(n) : n.toFixed(2);
}

function standardNotes(ctx: Context): string[] {
  return [
    'req/s, p50 and p99 come from wrk (1 thread, keep-alive connections, the same POST body each time for reads); ' +
      '"ours ÷ this" divides our req/s by that system\'s on the same document and connection count ' +
      '(for the write mix: ours INLINE and ours QUEUED).',
    '"CPU µs / request": CPU time (user + system, from /proc) per request during the measured run, of the system\'s process ' +
      "and of the PostgreSQL backends of the benchmark's database (for ours' QUEUED write mix these include the relay's; " +
      "the relay's Node side runs in the harness and is not counted). On this machine both compete for the same cores.",
    '"other work": the share of the machine\'s CPU (all cores) used during the measured run ' +
      'by anything but the system under test, its PostgreSQL backends, ' +
      'the harness and wrk (from /proc): other tenants of a shared machine. A high figure means that cell was disturbed.',
    'SQL statements / request: every statement PostgreSQL completed (CommandComplete messages, BEGIN and COMMIT included) while ' +
      `${ctx.options.countRequests} requests ran one after another, ` +
      'counted by a proxy reading the PostgreSQL protocol between the system and the server ' +
      "(not counted: the probe our API's change feed listener sends itself every second); " +
      'load is measured with each system connected directly.',
    'Every answer is checked before the load (and reads again after it) against the same data computed from tb_* by the harness: ' +
      'same posts in the same order, same comments, counts and authors; ' +
      "the cached API's twice before the load (its first answer comes from SQL, the second from the cache, as its counters confirm). " +
      "NOT CHECKED: the constant 3 KB server's answers. It answers one fixed text whatever is asked, so there is no data to compare: " +
      'it is the limit of a cached answer, not a system that reads data.',
    'ours (services/api, response cache off) runs with RESPONSE_CACHE=off: every read runs its SQL statement ' +
      '(the row the targets against the peers and the ceiling are about). ' +
      'ours, response cache is the same build with RESPONSE_CACHE=on (the default): wrk sends one body again and again, ' +
      'so after the first read every read is a cache hit. ' +
      'constant 3 KB (node:http) reads each request body and answers a constant JSON text of 3,072 bytes, ' +
      'no GraphQL, no lookup, no database: what a cached answer cannot beat.',
    'PostGraphile 5 (Amber preset, tables as they are, list fields enabled, ordering allowed on every column) ' +
      'and the two Apollo servers read and write tb_*; ' +
      'the harness adds one index for them, tb_post (created_at DESC, id DESC), ' +
      'so that their newest-first list is an index scan like ours.',
    'The write mix alternates CreatePost and AddComment for random users and posts of the dataset. ' +
      'Ours writes each create in one statement: its tb_* rows and event, then its tv_* row (INLINE) ' +
      'or its sync job in the sync outbox (QUEUED), which a relay in the harness moves to pg-boss during the load ' +
      'as the workers do (no worker refreshes during the benchmark: the sync is left to the worker); ' +
      'the peers only write tb_* (they have no projections).',
  ];
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
