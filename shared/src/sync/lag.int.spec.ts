import { testPool } from '../../test/helpers';
import { deleteOldLag, lagBin, lagBinUpperMs, lagHistogram, lagPercentilesSince, LAG_BIN_COUNT, recordLag } from './lag';

describe('lag histograms', () => {
  const pool = testPool();
  afterAll(() => pool.end());

  it('puts every lag in the bin whose bounds hold it (bins 9% wide)', () => {
    expect(lagBin(0)).toBe(0);
    expect(lagBin(-5)).toBe(0);
    expect(lagBin(0.99)).toBe(0);
    for (const ms of [1, 1.5, 7, 100, 249, 1000, 60_000]) {
      const bin = lagBin(ms);
      expect(ms).toBeLessThan(lagBinUpperMs(bin));
      expect(ms).toBeGreaterThanOrEqual(bin === 0 ? 0 : lagBinUpperMs(bin - 1));
      expect(lagBinUpperMs(bin) / Math.max(1, lagBinUpperMs(bin - 1))).toBeLessThan(1.1);
    }
    expect(lagBin(1e9)).toBe(LAG_BIN_COUNT - 1);
    const h = lagHistogram([1, 2, 3]);
    expect(h.samples).toBe(3);
    expect(h.bins.reduce((a, b) => a + b, 0)).toBe(3);
    expect(h.maxMs).toBe(3);
  });

  it('adds batches up per minute, mode and slot, and reads percentiles within 9%', async () => {
    const since = new Date(Date.now() - 60_000);
    const lags = Array.from({ length: 1000 }, (_, i) => i + 1); // 1..1000 ms
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      // Two batches on one slot and one on another: rows merge on conflict, histograms add.
      await recordLag(c, 'w1/0', { QUEUED: lags.slice(0, 400) });
      await recordLag(c, 'w1/0', { QUEUED: lags.slice(400, 700), DEFERRED: [30_000, 31_000] });
      await recordLag(c, 'w2/0', { QUEUED: lags.slice(700) });
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_lag`);
    expect(rows[0]!.n).toBe(3);
    const r = await lagPercentilesSince(pool, since);
    expect(r.QUEUED!.samples).toBe(1000);
    expect(r.QUEUED!.max_ms).toBe(1000);
    expect(r.QUEUED!.avg_ms).toBeCloseTo(500.5, 1);
    for (const [p, exact] of [
      [r.QUEUED!.p50_ms, 500],
      [r.QUEUED!.p95_ms, 950],
      [r.QUEUED!.p99_ms, 990],
    ] as const) {
      expect(p).toBeGreaterThanOrEqual(exact);
      expect(p).toBeLessThanOrEqual(exact * 1.1);
    }
    expect(r.DEFERRED!.samples).toBe(2);
    expect(r.DEFERRED!.p99_ms).toBe(31_000);
  });

  it('deletes samples older than the retention age', async () => {
    await pool.query(
      `INSERT INTO sync_lag (minute, mode, slot, samples, sum_ms, max_ms, bins)
       VALUES (date_trunc('minute', now() - interval '3 days'), 'QUEUED', 'old', 1, 5, 5, array_fill(0::bigint, ARRAY[160]))`,
    );
    expect(await deleteOldLag(pool, 48 * 3600)).toBe(1);
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM sync_lag WHERE slot = 'old'`);
    expect(rows[0]!.n).toBe(0);
    expect((await lagPercentilesSince(pool, new Date(0))).QUEUED!.samples).toBe(1000);
  });
});
