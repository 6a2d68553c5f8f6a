import { parseArgs } from 'node:util';
import { READ_DOCS, type ReadDocId, type SystemId } from './documents';
import { SYSTEM_ORDER } from './systems';

export const USAGE = `npm run bench [-- options]

Compares our API (response cache off, and on) with PostGraphile 5, Apollo with a resolver per field
(with and without DataLoader), a bare node:http + pg server and a node:http server answering one
constant 3 KB text, on one generated dataset, and prints a table. Then reads the cached API while
one client writes at a steady rate (hit ratio, throughput, every read after a write checked).

  --smoke               tiny dataset, 1 connection, 2 s cells; exits 1 if a system answers wrongly
  --scale N             dataset size: N x (1,000 users, 10,000 posts, 100,000 comments); default 1
  --duration S          seconds measured per cell (default 10; smoke 2)
  --warmup S            seconds of load before each measured cell (default 2; smoke 0)
  --repeat N            rounds of every cell, systems taking turns; the best round counts (default 1)
  --one-at-a-time       under load, run each system alone (default: all started, idle but the one
                        measured, taking turns cell by cell, so noise from elsewhere hits all alike)
  --connections LIST    connection counts, e.g. 1,16,64 (default; smoke 1)
  --systems LIST        among ${SYSTEM_ORDER.join(',')} (default all)
  --documents LIST      read documents among ${READ_DOCS.join(',')} (default all)
  --no-writes           skip the write mixes
  --write-rate N        writes per second beside the cached API's reads (default 50)
  --no-cache-writes     skip the response cache under writes
  --api-main PATH       our API's entry point (default services/api/dist/main.js; env BENCH_API_MAIN)
  --api-label TEXT      how to name that API build in the report (env BENCH_API_LABEL)
  --out DIR             results folder (default bench-results/ at the repository root)
  --help

Environment: DATABASE_URL (a server to create the scratch database on, as an admin connection);
else PostgreSQL on 127.0.0.1:5432 as postgres if it answers; else the embedded PostgreSQL.`;

export interface Options {
  smoke: boolean;
  scale: number;
  durationS: number;
  warmupS: number;
  repeat: number;
  oneAtATime: boolean;
  connections: number[];
  systems: SystemId[];
  readDocs: ReadDocId[];
  /** Read documents put under load (smoke: GetRecentPosts limit 5 only; all are validated and counted). */
  loadReadDocs: ReadDocId[];
  writes: boolean;
  /** The cached API read while one client writes `writeRate` per second (INLINE). */
  cacheWrites: boolean;
  writeRate: number;
  /** Sequential requests whose statements are counted, per document. */
  countRequests: number;
  apiMain?: string;
  apiLabel?: string;
  outDir?: string;
  help: boolean;
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function list<T extends string>(value: string | undefined, allowed: readonly T[], name: string): T[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of items)
    if (!allowed.includes(item as T)) throw new UsageError(`--${name}: unknown "${item}" (one of ${allowed.join(', ')})`);
  if (!items.length) throw new UsageError(`--${name} is empty`);
  return items as T[];
}

function positive(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min} (got "${value}")`);
  return n;
}

export function parseOptions(argv: string[], env: Record<string, string | undefined> = process.env): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      options: {
        smoke: { type: 'boolean', default: false },
        scale: { type: 'string' },
        duration: { type: 'string' },
        warmup: { type: 'string' },
        repeat: { type: 'string' },
        'one-at-a-time': { type: 'boolean', default: false },
        connections: { type: 'string' },
        systems: { type: 'string' },
        documents: { type: 'string' },
        'no-writes': { type: 'boolean', default: false },
        'no-cache-writes': { type: 'boolean', default: false },
        'write-rate': { type: 'string' },
        'api-main': { type: 'string' },
        'api-label': { type: 'string' },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const v = parsed.values;
  const smoke = v.smoke ?? false;
  const connections = v.connections
    ? v.connections.split(',').map((s) => {
        const n = Number(s);
        if (!Number.isInteger(n) || n < 1 || n > 1000) throw new UsageError(`--connections: "${s}" is not a number from 1 to 1000`);
        return n;
      })
    : smoke
      ? [1]
      : [1, 16, 64];
  const readDocs = list(v.documents, READ_DOCS, 'documents') ?? [...READ_DOCS];
  return {
    smoke,
    scale: positive(v.scale, 'scale', 0.001) ?? (smoke ? 0.05 : 1),
    durationS: positive(v.duration, 'duration', 1) ?? (smoke ? 2 : 10),
    warmupS: positive(v.warmup, 'warmup', 0) ?? (smoke ? 0 : 2),
    repeat: Math.round(positive(v.repeat, 'repeat', 1) ?? 1),
    oneAtATime: v['one-at-a-time'] ?? false,
    connections,
    systems: list(v.systems, SYSTEM_ORDER, 'systems') ?? [...SYSTEM_ORDER],
    readDocs,
    loadReadDocs: smoke && !v.documents ? ['recent5'] : readDocs,
    writes: !(v['no-writes'] ?? false),
    cacheWrites: !(v['no-cache-writes'] ?? false),
    writeRate: positive(v['write-rate'], 'write-rate', 1) ?? 50,
    countRequests: smoke ? 4 : 20,
    apiMain: v['api-main'] ?? env.BENCH_API_MAIN,
    apiLabel: v['api-label'] ?? env.BENCH_API_LABEL,
    outDir: v.out,
    help: v.help ?? false,
  };
}
