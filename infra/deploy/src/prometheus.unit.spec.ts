/**
 * @jest-environment-options {"database": false}
 */
import { parse } from 'yaml';
import { findPromtool, missingTool, readRepoFile, run } from './repo';

/**
 * infra/prometheus/prometheus.yml checked by promtool (Prometheus's own parser), and kept consistent
 * with docker-compose.yml and the Grafana data sources: the names and ports it scrapes are those the
 * compose services listen on.
 */
const promtool = findPromtool();
const reason = promtool ? '' : missingTool('promtool', 'apt-get install prometheus');

if (process.env.CI && !promtool) {
  test('CI has promtool (.ci/run installs the prometheus package)', () => {
    throw new Error(reason);
  });
}

(promtool ? test : test.skip)('promtool check config passes', () => {
  const r = run('promtool', ['check', 'config', 'infra/prometheus/prometheus.yml']);
  expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS/);
  expect(r.status).toBe(0);
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const prometheus = parse(readRepoFile('infra/prometheus/prometheus.yml')) as any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const compose = parse(readRepoFile('docker-compose.yml')) as any;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const job = (name: string) => prometheus.scrape_configs.find((j: any) => j.job_name === name);

test('it scrapes the api and every worker replica where compose runs them', () => {
  expect(job('blog-api').static_configs[0].targets).toEqual(['api:8000']);
  expect(job('blog-api').metrics_path).toBe('/metrics/prometheus');
  expect(job('blog-worker').dns_sd_configs[0]).toMatchObject({ names: ['worker'], type: 'A', port: 8001 });
  // Prometheus scrapes inside compose's network: the container side of the API's port (the host
  // side is API_HOST_PORT's).
  expect(compose.services.api.environment.PORT).toBe('8000');
  expect((compose.services.api.ports as string[]).map((p) => p.split(':').at(-1))).toContain('8000');
  expect(compose.services.worker.environment.WORKER_HEALTH_PORT).toBe('8001');
});

test("Grafana's data sources point at compose's services", () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const sources = parse(readRepoFile('infra/grafana/provisioning/datasources/datasources.yml')).datasources as any[];
  const url = (type: string) => sources.find((s) => s.type === type)?.url as string;
  expect(url('prometheus')).toBe('http://prometheus:9090');
  expect(url('jaeger')).toBe('http://jaeger:16686');
  expect(url('grafana-postgresql-datasource')).toBe('postgres:5432');
  for (const host of ['prometheus', 'jaeger', 'postgres']) expect(Object.keys(compose.services)).toContain(host);
  // The dashboards provider reads where compose mounts infra/grafana/dashboards.
  const providers = parse(readRepoFile('infra/grafana/provisioning/dashboards/dashboards.yml')).providers;
  expect(providers[0].options.path).toBe('/var/lib/grafana/dashboards');
  expect(compose.services.grafana.volumes).toContain('./infra/grafana/dashboards:/var/lib/grafana/dashboards:ro');
});
