import type pg from 'pg';

/**
 * Projection lag: from a write's commit to the commit of the projection refresh that covered it.
 * Recorded by the worker as histograms in `sync_lag` (migrations/002_sync_lag.sql explains why
 * histograms), read by the API's /metrics through `lagPercentiles24h`.
 */

/** Bins per histogram (the migration checks the arrays have exactly this many). */
export const LAG_BIN_COUNT = 160;
/** Bins per doubling: each bin is 2^(1/8), about 9%, wider than the one before. */
const BINS_PER_DOUBLING = 8;

/**
 * The bin of a lag in ms: bin 0 holds [0, 1) ms, bin i (1..158) holds [2^((i-1)/8), 2^(i/8)) ms,
 * and the last bin everything from 2^(158/8) ms (about 14.7 minutes) up.
 */
export function lagBin(ms: number): number {
  if (!(ms >= 1)) return 0; // also catches NaN and negative lags (clock skew between hosts)
  const bin = Math.floor(Math.log2(ms) * BINS_PER_DOUBLING) + 1;
  return Math.min(bin, LAG_BIN_COUNT - 1);
}

/** The upper edge of a bin in ms: every lag counted in it is below this. */
export function lagBinUpperMs(bin: number): number {
  return 2 ** (bin / BINS_PER_DOUBLING);
}

export type LagMode = 'QUEUED' | 'DEFERRED';

export interface LagHistogram {
  samples: number;
  sumMs: number;
  maxMs: number;
  bins: number[];
}

/** A histogram of lags in ms. */
export function lagHistogram(lagsMs: readonly number[]): LagHistogram {
  const bins = new Array<number>(LAG_BIN_COUNT).fill(0);
  let sumMs = 0;
  let maxMs = 0;
  for (const raw of lagsMs) {
    const ms = Math.max(0, raw);
    bins[lagBin(ms)]! += 1;
    sumMs += ms;
    if (ms > maxMs) maxMs = ms;
  }
  return { samples: lagsMs.length, sumMs, maxMs, bins };
}

const RECORD_LAG = `
  INSERT INTO sync_lag AS l (minute, mode, slot, samples, sum_ms, max_ms, bins)
  VALUES (date_trunc('minute', now()), $1, $2, $3, $4, $5, $6::bigint[])
  ON CONFLICT (minute, mode, slot) DO UPDATE SET
    samples = l.samples + EXCLUDED.samples,
    sum_ms  = l.sum_ms + EXCLUDED.sum_ms,
    max_ms  = greatest(l.max_ms, EXCLUDED.max_ms),
    bins    = ARRAY(SELECT a + b
                      FROM unnest(l.bins, EXCLUDED.bins) WITH ORDINALITY AS u(a, b, i)
                     ORDER BY i)`;

/**
 * Adds lags to the current minute's row of this mode and slot. Run it in the batch's transaction,
 * as its last statement before COMMIT, so a batch that rolls back counts nothing.
 */
export async function recordLag(
  client: Pick<pg.ClientBase, 'query'>,
  slot: string,
  lagsByMode: Partial<Record<LagMode, readonly number[]>>,
): Promise<void> {
  for (const mode of ['QUEUED', 'DEFERRED'] as const) {
    const lags = lagsByMode[mode];
    if (!lags?.length) continue;
    const h = lagHistogram(lags);
    await client.query(RECORD_LAG, [mode, slot, h.samples, h.sumMs, h.maxMs, h.bins]);
  }
}

/**
 * Snake case, as the rest of the API's /metrics JSON (the seed's sync_metrics_24h: avg_duration_ms),
 * where this appears as projection_lag_24h.
 */
export interface LagPercentiles {
  samples: number;
  avg_ms: number;
  max_ms: number;
  /** Upper edges of the bins the percentile ranks fall in (never below the true value, at most 9% above), capped at max_ms. */
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
}

export type LagReport = Record<LagMode, LagPercentiles | null>;

// Sums the histograms of the window per mode and finds, for each percentile, the first bin whose
// cumulative count reaches its rank. One statement; reads at most 1,440 rows per worker slot a day.
const PERCENTILES = `
  WITH w AS (
    SELECT mode, samples, sum_ms, max_ms, bins FROM sync_lag WHERE minute >= $1
  ), totals AS (
    SELECT mode, sum(samples)::float8 AS samples, sum(sum_ms) AS sum_ms, max(max_ms) AS max_ms
      FROM w GROUP BY mode
  ), bins AS (
    SELECT w.mode, u.i - 1 AS bin, sum(u.c) AS c
      FROM w, unnest(w.bins) WITH ORDINALITY AS u(c, i)
     GROUP BY w.mode, u.i
  ), cumulative AS (
    SELECT mode, bin, sum(c) OVER (PARTITION BY mode ORDER BY bin) AS cum FROM bins
  )
  SELECT t.mode, t.samples, t.sum_ms, t.max_ms,
         (SELECT min(bin) FROM cumulative c WHERE c.mode = t.mode AND c.cum >= ceil(0.50 * t.samples))::int AS p50,
         (SELECT min(bin) FROM cumulative c WHERE c.mode = t.mode AND c.cum >= ceil(0.95 * t.samples))::int AS p95,
         (SELECT min(bin) FROM cumulative c WHERE c.mode = t.mode AND c.cum >= ceil(0.99 * t.samples))::int AS p99
    FROM totals t`;

/** Lag percentiles of the jobs completed since `since`, per sync mode (null for a mode with none). */
export async function lagPercentilesSince(db: Pick<pg.Pool, 'query'>, since: Date): Promise<LagReport> {
  const { rows } = await db.query<{
    mode: LagMode;
    samples: number;
    sum_ms: number;
    max_ms: number;
    p50: number;
    p95: number;
    p99: number;
  }>(PERCENTILES, [since]);
  const report: LagReport = { QUEUED: null, DEFERRED: null };
  for (const r of rows) {
    const edge = (bin: number) => round(Math.min(lagBinUpperMs(bin), r.max_ms));
    report[r.mode] = {
      samples: r.samples,
      avg_ms: round(r.sum_ms / r.samples),
      max_ms: round(r.max_ms),
      p50_ms: edge(r.p50),
      p95_ms: edge(r.p95),
      p99_ms: edge(r.p99),
    };
  }
  return report;
}

/** Lag percentiles over the last 24 hours (for the API's /metrics). */
export function lagPercentiles24h(db: Pick<pg.Pool, 'query'>): Promise<LagReport> {
  return lagPercentilesSince(db, new Date(Date.now() - 24 * 3600 * 1000));
}

/** Deletes lag rows older than `maxAgeSeconds`, in one statement. Returns the rows deleted. */
export async function deleteOldLag(db: Pick<pg.Pool, 'query'>, maxAgeSeconds: number): Promise<number> {
  const { rowCount } = await db.query(`DELETE FROM sync_lag WHERE minute < now() - make_interval(secs => $1)`, [maxAgeSeconds]);
  return rowCount ?? 0;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
