#!/usr/bin/env node
/**
 * Benchmark of the sync engine: entity syncs per second for batch sizes 1, 100 and 1,000, against
 * the same work done one entity at a time, on 1,000 users / 10,000 posts / 50,000 comments.
 * Prints figures (not a test). Ratios within one run are what to compare: the machine is shared.
 *
 *   npm run bench:sync            (BENCH_SCALE=0.1 for a quick run)
 */
import { writeFileSync } from 'node:fs';
import { createPool } from '../db/pool';
import { SyncEngine } from '../sync/engine';
import { entityOf, MODEL } from '../model';
import { ENTITY_TYPES, type EntityType } from '../sync/types';
import { generateDataset } from './dataset';
import { scratchDatabase } from './scratch';

const scale = Number(process.env.BENCH_SCALE ?? 1);
const SIZE = { users: Math.round(1000 * scale), posts: Math.round(10_000 * scale), comments: Math.round(50_000 * scale), postBytes: 1000 };
/** Entities re-synced per measurement (the same ids for every batch size). */
const SAMPLE = Math.max(100, Math.round(2000 * scale));
const BATCH_SIZES = [1, 100, 1000];

/** A timestamp column of the entity's document (its last), moved by 1 ms so that every document changes. */
const touched = (entity: EntityType): string => {
  const stamps = Object.values(entityOf(entity).fields).flatMap((f) => (f.kind === 'column' && f.timestamp ? [f.column] : []));
  if (!stamps.length) throw new Error(`bench:sync needs a timestamp field in ${entity}'s document`);
  return stamps[stamps.length - 1]!;
};

async function main() {
  const db = await scratchDatabase('blog_bench_sync');
  const pool = createPool(db.url, { applicationName: 'blog-bench-sync', max: 4 });
  const sync = new SyncEngine(pool);
  const out: { entity: EntityType; batch: number | 'one-by-one'; entities: number; seconds: number; perSecond: number }[] = [];
  try {
    let t = performance.now();
    await generateDataset(pool, SIZE);
    process.stdout.write(
      `dataset: ${SIZE.users} users, ${SIZE.posts} posts, ${SIZE.comments} comments ` +
        `generated in ${((performance.now() - t) / 1000).toFixed(1)} s\n`,
    );
    t = performance.now();
    const full = await sync.all();
    process.stdout.write(
      `full rebuild: ${full.results.map((r) => `${r.count} ${r.entityType}s`).join(', ')} ` +
        `in ${((performance.now() - t) / 1000).toFixed(2)} s\n\n`,
    );

    for (const entity of ENTITY_TYPES) {
      const { table } = entityOf(entity);
      const { rows } = await pool.query<{ id: string }>(`SELECT id FROM ${table} ORDER BY md5(id::text) LIMIT $1`, [SAMPLE]);
      const ids = rows.map((r) => r.id);
      if (!ids.length) {
        process.stdout.write(`${entity}: no rows in the data set (generateDataset makes none), not measured\n`);
        continue;
      }
      for (const batch of BATCH_SIZES) {
        // Every document really changes before each run, so every run writes every row.
        const column = touched(entity);
        await pool.query(`UPDATE ${table} SET ${column} = ${column} + interval '1 millisecond' WHERE id = ANY($1::uuid[])`, [ids]);
        await pool.query(`VACUUM ANALYZE ${MODEL.map((e) => e.view).join(', ')}`);
        const started = performance.now();
        for (let i = 0; i < ids.length; i += batch) {
          await sync.refresh({ [entity]: ids.slice(i, i + batch) });
        }
        const seconds = (performance.now() - started) / 1000;
        out.push({ entity, batch: batch === 1 ? 'one-by-one' : batch, entities: ids.length, seconds, perSecond: ids.length / seconds });
      }
    }
  } finally {
    await pool.end();
    await db.drop();
  }

  const rows = out.map((r) => {
    const base = out.find((o) => o.entity === r.entity && o.batch === 'one-by-one')!;
    return { ...r, speedup: r.perSecond / base.perSecond };
  });
  process.stdout.write('| entity  | batch size | entities | seconds | entity syncs/s | vs one-by-one |\n');
  process.stdout.write('|---------|-----------:|---------:|--------:|---------------:|--------------:|\n');
  for (const r of rows) {
    process.stdout.write(
      `| ${r.entity.padEnd(7)} | ${String(r.batch === 'one-by-one' ? '1 (one-by-one)' : r.batch).padStart(10)} | ` +
        `${String(r.entities).padStart(8)} | ${r.seconds.toFixed(2).padStart(7)} | ` +
        `${Math.round(r.perSecond).toString().padStart(14)} | ${r.speedup.toFixed(1).padStart(12)}x |\n`,
    );
  }
  if (process.env.BENCH_JSON) writeFileSync(process.env.BENCH_JSON, JSON.stringify({ size: SIZE, sample: SAMPLE, rows }, null, 2));
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
