#!/usr/bin/env node
import { openDatabase, readDatabaseConfig } from '../db/database';
import { createPool } from '../db/pool';
import { createLogger } from '../log/logger';
import { SyncEngine, type SyncReport, type VerifyReport } from '../sync/engine';
import { isEntityType } from '../model';
import { describeEntity } from '../sync/describe';
import { ENTITY_TYPES } from '../sync/types';
import { EXIT, runCli, UsageError } from './run';

const USAGE = `Usage: npm run sync -- <command>

Commands:
  verify [--repair]   compare every tv_* row with a fresh computation from tb_*; report missing,
                      stale and orphaned rows (exit 1 when any). --repair re-syncs exactly those
                      (recounting the stale users' kept counts from their rows first).
  rebuild             full mode: recount the users' kept counts, then recompute every projection,
                      in one transaction (readers keep seeing the old rows until it commits)
  sql <entity>        print every statement derived from the entity's declaration (shared/src/model):
                      documents, dependency map, claim, write, rebuild, verify; no database needed.
                      Entities: ${ENTITY_TYPES.join(', ')}

Connects to DATABASE_URL; without it, to the embedded PostgreSQL.`;

const SHOW_IDS = 10;

runCli(async (argv) => {
  const [command, ...flags] = argv;
  if (command === 'sql') {
    const [entity, ...rest] = flags;
    if (!entity || rest.length) throw new UsageError(`sql takes one entity: ${ENTITY_TYPES.join(', ')}\n\n${USAGE}`);
    if (!isEntityType(entity)) throw new UsageError(`No entity "${entity}": declared are ${ENTITY_TYPES.join(', ')}.`);
    process.stdout.write(describeEntity(entity));
    return EXIT.ok;
  }
  if (command !== 'verify' && command !== 'rebuild') {
    if (command === 'help' || command === '--help') {
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    }
    throw new UsageError(command ? `Unknown command "${command}".\n\n${USAGE}` : USAGE);
  }
  const unknown = flags.filter((f) => !(command === 'verify' && f === '--repair'));
  if (unknown.length) throw new UsageError(`Unknown option(s) for ${command}: ${unknown.join(' ')}\n\n${USAGE}`);

  const logger = createLogger('blog-sync', process.env.LOG_LEVEL ?? 'warn');
  const db = await openDatabase(readDatabaseConfig(), logger);
  const pool = createPool(db.url, { applicationName: 'blog-sync-cli', max: 2 });
  try {
    const sync = new SyncEngine(pool, { logger });
    if (command === 'rebuild') {
      printReport(await sync.all());
      return EXIT.ok;
    }
    const report = await sync.verify();
    printVerify(report);
    if (!report.total) return EXIT.ok;
    if (!flags.includes('--repair')) return EXIT.failure;
    printReport(await sync.repair(report));
    const after = await sync.verify();
    process.stdout.write(after.total ? `after repair: ${after.total} problem(s) remain\n` : 'after repair: no drift\n');
    return after.total ? EXIT.failure : EXIT.ok;
  } finally {
    await pool.end();
    await db.close();
  }
});

function printVerify(report: VerifyReport): void {
  for (const t of ENTITY_TYPES) {
    const p = report.problems[t];
    const parts = (['missing', 'stale', 'orphaned'] as const).map((k) => `${p[k].length} ${k}`);
    process.stdout.write(`${t.padEnd(8)} ${parts.join(', ')}\n`);
    for (const k of ['missing', 'stale', 'orphaned'] as const) {
      if (!p[k].length) continue;
      const shown = p[k].slice(0, SHOW_IDS).join(' ');
      process.stdout.write(`  ${k}: ${shown}${p[k].length > SHOW_IDS ? ` ... (+${p[k].length - SHOW_IDS})` : ''}\n`);
    }
  }
  process.stdout.write(report.total ? `drift: ${report.total} row(s)\n` : 'no drift\n');
}

function printReport(report: SyncReport): void {
  for (const r of report.results) {
    process.stdout.write(
      `${report.operation} ${r.entityType.padEnd(8)} ${r.count} entities, ${r.updated} written, ${r.deleted} deleted, ${r.durationMs.toFixed(1)} ms\n`,
    );
  }
}
