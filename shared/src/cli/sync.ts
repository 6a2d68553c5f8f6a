#!/usr/bin/env node
import { z } from 'zod';
import { intVar, parseEnv } from '../config/env';
import { openDatabase, readDatabaseConfig } from '../db/database';
import { createPool } from '../db/pool';
import { createLogger } from '../log/logger';
import { SyncEngine, type SyncReport, type VerifyReport } from '../sync/engine';
import type pg from 'pg';
import { entityOf, isEntityType, MODEL, type EntityType } from '../model';
import { ChangePublisher } from '../sync/feed';
import { buildShapes, describePending, dropOldShapes, pendingShapes, shapeRows } from '../sync/shapes';
import { describeEntity } from '../sync/describe';
import { DEFAULT_REBUILD_CHUNK, estimateRows, RebuildBusyError, type RebuildResult, type RebuildStart } from '../sync/rebuild';
import { ENTITY_TYPES } from '../sync/types';
import { VERIFY_PROBLEMS } from '../sync/verify';
import { progressPrinter } from './progress';
import { EXIT, runCli, UsageError } from './run';

const USAGE = `Usage: npm run sync -- <command>

Commands:
  verify [--repair]   compare every tv_* row with a fresh computation from tb_*, in chunks of
                      REBUILD_CHUNK ids (each chunk one statement); report missing, stale and
                      orphaned rows (exit 1 when any). --repair re-syncs exactly those, chunk by
                      chunk (recounting the stale users' kept counts from their rows first).
  rebuild [--restart] recompute every projection from tb_*, online: for each entity type, its ids in
                      id order in chunks of REBUILD_CHUNK ids (default ${DEFAULT_REBUILD_CHUNK}), each chunk
                      a short transaction of its own that recounts the chunk's users' kept counts,
                      then claims and writes its rows as any sync does. No table is locked: reads,
                      writes and workers go on, and a write waits at most for the chunk holding its
                      rows. Progress is saved with each chunk: a rebuild that was killed continues
                      from its last committed chunk when run again; --restart starts afresh.
                      Ctrl-C stops after the chunk in hand.
  shapes [--build | --drop-old]
                      list the versions of every entity's documents and their tables (state,
                      build progress, when a process of each last ran). A release that raises a
                      declaration's version gets its table from \`npm run migrate\`, built by its
                      workers in the background (they take sync jobs once it is done) while the
                      previous release serves. --build builds now, in the foreground, with a
                      progress bar (resumable; Ctrl-C stops after the chunk in hand). --drop-old
                      drops the tables of versions this release does not declare whose processes
                      have not run for 2 minutes.
  sql <entity>        print every statement derived from the entity's declaration (shared/src/model):
                      documents, dependency map, claim, write, rebuild, verify; no database needed.
                      Entities: ${ENTITY_TYPES.join(', ')}

Connects to DATABASE_URL; without it, to the embedded PostgreSQL.`;

const SHOW_IDS = 10;

const syncEnvSchema = z.object({
  // Ids per chunk of the rebuild and of verify (rebuild.ts says how the default was chosen).
  REBUILD_CHUNK: intVar(DEFAULT_REBUILD_CHUNK, 1, 1_000_000),
});

runCli(async (argv) => {
  const [command, ...flags] = argv;
  if (command === 'sql') {
    const [entity, ...rest] = flags;
    if (!entity || rest.length) throw new UsageError(`sql takes one entity: ${ENTITY_TYPES.join(', ')}\n\n${USAGE}`);
    if (!isEntityType(entity)) throw new UsageError(`No entity "${entity}": declared are ${ENTITY_TYPES.join(', ')}.`);
    process.stdout.write(describeEntity(entity));
    return EXIT.ok;
  }
  if (command !== 'verify' && command !== 'rebuild' && command !== 'shapes') {
    if (command === 'help' || command === '--help') {
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    }
    throw new UsageError(command ? `Unknown command "${command}".\n\n${USAGE}` : USAGE);
  }
  const allowed = { verify: ['--repair'], rebuild: ['--restart'], shapes: ['--build', '--drop-old'] }[command];
  const unknown = flags.filter((f) => !allowed.includes(f));
  if (unknown.length) throw new UsageError(`Unknown option(s) for ${command}: ${unknown.join(' ')}\n\n${USAGE}`);
  if (command === 'shapes' && flags.length > 1) throw new UsageError(`shapes takes one of --build, --drop-old\n\n${USAGE}`);
  const { REBUILD_CHUNK: chunk } = parseEnv(syncEnvSchema);

  const logger = createLogger('blog-sync', process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase(readDatabaseConfig(), logger);
  const pool = createPool(db.url, { applicationName: 'blog-sync-cli', max: 2 });
  const feed = new ChangePublisher(db.url, { applicationName: 'blog-sync-cli-feed', logger });
  try {
    if (command === 'shapes') return await shapes(pool, chunk, flags[0]);
    // What a rebuild or a repair changes goes to the API processes through the change feed (their
    // response caches drop it).
    const sync = new SyncEngine(pool, { logger, onCommitted: (changes) => feed.publish(changes) });
    if (command === 'rebuild') return await rebuild(sync, chunk, flags.includes('--restart'));
    const onProgress = await verifyProgress(pool);
    if (!flags.includes('--repair')) {
      const report = await sync.verify({ chunk, onProgress });
      printVerify(report);
      return report.total ? EXIT.failure : EXIT.ok;
    }
    const { found, repaired } = await sync.verifyAndRepair({ chunk, onProgress });
    printVerify(found);
    if (!found.total) return EXIT.ok;
    printReport(repaired);
    const after = await sync.verify({ chunk });
    process.stdout.write(after.total ? `after repair: ${after.total} problem(s) remain\n` : 'after repair: no drift\n');
    return after.total ? EXIT.failure : EXIT.ok;
  } finally {
    await feed.close();
    await pool.end();
    await db.close();
  }
});

/** verify's progress on stderr, as the rebuild shows its own: per entity type, rows compared of the estimated total. */
async function verifyProgress(
  pool: Parameters<typeof estimateRows>[0],
): Promise<(t: EntityType, compared: number, event: 'start' | 'chunk' | 'done') => void> {
  const totals = new Map<EntityType, number>();
  for (const t of ENTITY_TYPES) totals.set(t, await estimateRows(pool, entityOf(t).table));
  const print = progressPrinter(process.stderr, undefined, 'verify');
  let started = 0;
  let chunks = 0;
  return (entityType, compared, event) => {
    if (event === 'start') {
      started = performance.now();
      chunks = 0;
    } else chunks += 1;
    const total = Math.max(totals.get(entityType) ?? 0, compared);
    print({ runId: '', entityType, event, total, done: compared, doneBefore: 0, chunks, elapsedMs: performance.now() - started });
  };
}

/** `sync rebuild`: the online rebuild, its progress on stderr, its report on stdout. */
async function rebuild(sync: SyncEngine, chunk: number, restart: boolean): Promise<number> {
  // Ctrl-C (or SIGTERM) stops after the chunk in hand, which commits; a second one stops at once
  // (the chunk rolls back). Either way the next rebuild continues from the last committed chunk.
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop.signal.aborted) process.exit(signal === 'SIGINT' ? 130 : 143);
    process.stderr.write(`\n${signal}: stopping after the chunk in hand (again to stop now)\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let result: RebuildResult;
  try {
    result = await sync.rebuild({
      chunk,
      restart,
      signal: stop.signal,
      onStart: printStart(chunk),
      onProgress: progressPrinter(process.stderr),
    });
  } catch (err) {
    if (err instanceof RebuildBusyError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT.failure;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  printReport(result.report);
  const mb = (process.resourceUsage().maxRSS / 1024).toFixed(0);
  const before = result.chunksBefore ? `, after ${result.chunksBefore} committed before` : '';
  process.stdout.write(
    `rebuild ${result.runId}: ${result.chunks} chunk(s) in ${(result.durationMs / 1000).toFixed(1)} s${before}; ` +
      `${result.recounted} row(s) with kept counts recounted; peak memory ${mb} MB\n`,
  );
  if (result.stopped) {
    process.stdout.write('rebuild stopped before the end: run `npm run sync -- rebuild` again to continue\n');
    return EXIT.failure;
  }
  return EXIT.ok;
}

/** `sync shapes`: the versions of the documents; builds or drops with a flag. */
async function shapes(pool: pg.Pool, chunk: number, flag: string | undefined): Promise<number> {
  if (flag === '--drop-old') {
    const { dropped, kept } = await dropOldShapes(pool);
    for (const t of dropped) process.stdout.write(`dropped ${t}\n`);
    for (const t of kept) process.stdout.write(`kept ${t}: a process of its release ran less than 2 minutes ago\n`);
    if (!dropped.length && !kept.length) process.stdout.write('no table of another version to drop\n');
  }
  if (flag === '--build') {
    const stop = new AbortController();
    const onSignal = () => {
      process.stderr.write('\nstopping after the chunk in hand\n');
      stop.abort();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const print = progressPrinter(process.stderr, undefined, 'build');
    try {
      const r = await buildShapes(pool, {
        chunk,
        signal: stop.signal,
        onProgress: (p) =>
          print({
            runId: '',
            entityType: p.entityType as EntityType,
            event: p.event,
            total: p.total,
            done: p.done,
            doneBefore: 0,
            chunks: 0,
            elapsedMs: p.elapsedMs,
          }),
      });
      for (const t of r.built) process.stdout.write(`built ${t}\n`);
      for (const t of r.busy) process.stdout.write(`${t}: another process is building it\n`);
      if (r.stopped) process.stdout.write('stopped before the end: run it again to continue\n');
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
  const rows = await shapeRows(pool);
  const pending = await pendingShapes(pool);
  const declared = new Map(MODEL.map((e) => [e.name, e.version]));
  if (!rows.length) {
    // The registry fills as API and worker processes start (each records its release's versions).
    process.stdout.write(
      `no version recorded yet (no API or worker has run on this database); this release reads ${MODEL.map((e) => e.view).join(', ')}\n`,
    );
  } else process.stdout.write('entity   version  table            state     rows built        last run by a process\n');
  for (const r of rows) {
    const ours = declared.get(r.entity_type as EntityType) === r.version ? ' (this release)' : '';
    const built =
      r.state === 'ready' ? 'all' : `${Number(r.rows_done).toLocaleString('en-US')} of ~${Number(r.rows_total).toLocaleString('en-US')}`;
    process.stdout.write(
      `${r.entity_type.padEnd(8)} ${`v${r.version}`.padEnd(8)} ${r.table_name.padEnd(16)} ${r.state.padEnd(9)} ` +
        `${built.padEnd(17)} ${r.seen_at?.toISOString() ?? 'never'}${ours}\n`,
    );
  }
  for (const p of pending) process.stdout.write(`waiting: ${describePending(p)}\n`);
  return pending.length ? EXIT.failure : EXIT.ok;
}

function printStart(chunk: number): (start: RebuildStart) => void {
  return ({ runId, startedAt, resumed, chunksBefore, from }) => {
    const where = from ? `${from.entityType}${from.after ? ` after ${from.after}` : ''}` : 'nothing left';
    process.stdout.write(
      resumed
        ? `rebuild ${runId}: resumed (started ${startedAt.toISOString()}, ${chunksBefore} chunk(s) committed before); ` +
            `continuing with ${where}\n`
        : `rebuild ${runId}: started, chunks of ${chunk} ids\n`,
    );
  };
}

function printVerify(report: VerifyReport): void {
  for (const t of ENTITY_TYPES) {
    const p = report.problems[t];
    const n = report.counts[t];
    const parts = VERIFY_PROBLEMS.map((k) => `${n[k]} ${k}`);
    process.stdout.write(`${t.padEnd(8)} ${parts.join(', ')}\n`);
    for (const k of VERIFY_PROBLEMS) {
      if (!n[k]) continue;
      const shown = p[k].slice(0, SHOW_IDS).join(' ');
      process.stdout.write(`  ${k}: ${shown}${n[k] > SHOW_IDS ? ` ... (+${n[k] - SHOW_IDS})` : ''}\n`);
    }
  }
  process.stdout.write(report.total ? `drift: ${report.total} row(s)\n` : 'no drift\n');
}

function printReport(report: SyncReport): void {
  for (const r of report.results) {
    process.stdout.write(
      `${report.operation} ${r.entityType.padEnd(8)} ${r.count} entities, ` +
        `${r.updated} written, ${r.deleted} deleted, ${r.durationMs.toFixed(1)} ms\n`,
    );
  }
}
