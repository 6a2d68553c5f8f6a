import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { testPool } from '../../test/helpers';
import { repoRoot } from '../db/paths';
import { DEFAULT_METRICS_PREFIX, METRICS } from './metrics';

/**
 * The Grafana "Sync" dashboard may only query what exists: every Prometheus expression names
 * metrics this project exports, and every SQL panel runs against the real schema.
 */
interface Panel {
  title: string;
  targets: { expr?: string; rawSql?: string; datasource: { type: string; uid: string } }[];
}

const dashboard = JSON.parse(fs.readFileSync(path.join(repoRoot, 'infra', 'grafana', 'dashboards', 'sync.json'), 'utf8')) as {
  panels: Panel[];
  uid: string;
  title: string;
};
const datasources = fs.readFileSync(path.join(repoRoot, 'infra', 'grafana', 'provisioning', 'datasources', 'datasources.yml'), 'utf8');

const targets = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, ...t })));
const exported = new Set<string>(Object.values(METRICS));

/** blog_x_bucket / _count / _sum are series of the histogram blog_x. */
const baseName = (series: string) => series.replace(/_(bucket|count|sum)$/, '');

describe('the Sync dashboard', () => {
  let pool: pg.Pool;
  beforeAll(() => {
    pool = testPool(1);
  });
  afterAll(() => pool.end());

  it('has the panels operators need', () => {
    expect(dashboard.title).toBe('Sync');
    const titles = dashboard.panels.map((p) => p.title).join(' | ');
    for (const topic of ['Syncs per second', 'duration p50 / p95', 'success rate', 'Queue depth', 'lag', 'Dead letters', 'API latency']) {
      expect(titles.toLowerCase()).toContain(topic.toLowerCase());
    }
  });

  it.each(targets.filter((t) => t.expr).map((t) => [t.panel, t.expr!] as const))('%s: queries only exported metrics', (_panel, expr) => {
    const series = [...new Set(expr.match(/\bblog_[a-z_]+\b/g) ?? [])];
    expect(series.length).toBeGreaterThan(0);
    for (const s of series) {
      const known =
        exported.has(baseName(s)) || s.startsWith(`${DEFAULT_METRICS_PREFIX}process_`) || s.startsWith(`${DEFAULT_METRICS_PREFIX}nodejs_`);
      expect({ series: s, known }).toEqual({ series: s, known: true });
    }
  });

  it.each(targets.filter((t) => t.rawSql).map((t) => [t.panel, t.rawSql!] as const))(
    '%s: its SQL runs against the schema',
    async (_panel, sql) => {
      // Grafana's macros, expanded as its PostgreSQL data source does.
      const runnable = sql
        .replace(/\$__timeGroupAlias\((\w+),\s*'1m'\)/g, "date_trunc('minute', $1) AS time")
        .replace(/\$__timeFilter\((\w+)\)/g, "$1 BETWEEN now() - interval '1 hour' AND now()");
      expect(runnable).not.toContain('$__');
      await expect(pool.query(runnable)).resolves.toBeDefined();
    },
  );

  it('uses only data sources that are provisioned', () => {
    const uids = new Set(targets.map((t) => t.datasource.uid));
    for (const uid of uids) expect(datasources).toContain(`uid: ${uid}`);
  });
});
