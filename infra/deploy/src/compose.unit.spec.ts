/**
 * @jest-environment-options {"database": false}
 */
import fs from 'node:fs';
import { parse } from 'yaml';
import { apiEnvSchema } from '../../../services/api/src/env';
import { workerEnvSchema } from '../../../services/worker/src/env';
import { findCompose, missingTool, readRepoFile, repoPath, run } from './repo';

/**
 * docker-compose.yml, parsed by a real compose implementation (`docker-compose config`: it
 * validates against compose's schema, resolves ${...} from .env files, and prints the result).
 * No Docker engine is needed to parse, and none is available where this runs: images are neither
 * built nor started here.
 */
const compose = findCompose();
const reason = compose ? '' : missingTool('docker-compose', 'apt-get install docker-compose');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Config = { services: Record<string, any>; volumes?: Record<string, unknown> };

function config(args: string[] = []): Config {
  const r = run(compose!.command, [...compose!.prefix, '-f', 'docker-compose.yml', ...args, 'config']);
  if (r.status !== 0) throw new Error(`${compose!.label} config failed (exit ${r.status}):\n${r.stderr}${r.error?.message ?? ''}`);
  return parse(r.stdout) as Config;
}

const SERVICES = ['postgres', 'migrate', 'api', 'worker', 'jaeger', 'prometheus', 'grafana'];

/** `environment` as an object, whichever form compose printed. */
function envOf(service: { environment?: Record<string, string | null> | string[] }): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v ?? '']));
}

function publishedPorts(service: { ports?: unknown[] }): number[] {
  return (service.ports ?? []).map((p) =>
    typeof p === 'object' && p !== null ? Number((p as { published: unknown }).published) : Number(String(p).split(':').at(-2)),
  );
}

if (process.env.CI && !compose) {
  test('CI has a compose implementation (.ci/run installs docker-compose)', () => {
    throw new Error(reason);
  });
}

(compose ? describe : describe.skip)(`docker-compose.yml through ${compose?.label ?? 'compose (missing)'}`, () => {
  let plain: Config;
  let withExample: Config;
  /** [source, target] of each volume of a service. */
  const mounts = (name: string) =>
    (plain.services[name].volumes as (string | { source: string; target: string })[]).map((v) =>
      typeof v === 'string' ? v.split(':').slice(0, 2) : [v.source, v.target],
    );
  beforeAll(() => {
    plain = config();
    // As a user who copied .env.example to .env would run it.
    withExample = config(['--env-file', '.env.example']);
  });

  test('is valid, with and without an .env, and has the seven services', () => {
    expect(Object.keys(plain.services).sort()).toEqual([...SERVICES].sort());
    expect(Object.keys(withExample.services).sort()).toEqual([...SERVICES].sort());
  });

  test('every service has a health check', () => {
    for (const name of SERVICES) {
      const hc = plain.services[name].healthcheck;
      expect([name, Array.isArray(hc?.test) && hc.test.length > 1 && !hc.disable]).toEqual([name, true]);
    }
  });

  test('postgres: a current major, data in a named volume, checked over TCP', () => {
    const pg = plain.services.postgres;
    expect(pg.image).toBe('postgres:17');
    expect(Object.keys(plain.volumes ?? {})).toContain('pgdata');
    expect(mounts('postgres')).toContainEqual(['pgdata', '/var/lib/postgresql/data']);
    expect(pg.healthcheck.test.join(' ')).toMatch(/pg_isready -h 127\.0\.0\.1/);
  });

  test('migrate runs once, and api and worker start after it succeeded and postgres is healthy', () => {
    const migrate = plain.services.migrate;
    expect(migrate.restart).toBe('no');
    expect(migrate.command.join(' ')).toContain('node shared/dist/cli/migrate.js up');
    expect(migrate.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const name of ['api', 'worker']) {
      const dependsOn = plain.services[name].depends_on;
      expect(dependsOn.migrate).toEqual({ condition: 'service_completed_successfully' });
      expect(dependsOn.postgres).toEqual({ condition: 'service_healthy' });
    }
    expect(plain.services.grafana.depends_on).toEqual({
      postgres: { condition: 'service_healthy' },
      prometheus: { condition: 'service_healthy' },
    });
    // Every condition is on health or completion: no service waits on a mere start.
    for (const name of SERVICES) {
      for (const dep of Object.values<{ condition: string }>(plain.services[name].depends_on ?? {})) {
        expect(['service_healthy', 'service_completed_successfully']).toContain(dep.condition);
      }
    }
  });

  test('ports: api 8000, jaeger 16686 and 4318, prometheus 9090, grafana 3000; the worker publishes none', () => {
    expect(publishedPorts(plain.services.api)).toEqual([8000]);
    expect(publishedPorts(plain.services.jaeger).sort((a, b) => a - b)).toEqual([4318, 16686]);
    expect(publishedPorts(plain.services.prometheus)).toEqual([9090]);
    expect(publishedPorts(plain.services.grafana)).toEqual([3000]);
    // `--scale worker=3` needs no published port and no fixed container name.
    expect(plain.services.worker.ports).toBeUndefined();
    expect(plain.services.worker.container_name).toBeUndefined();
    expect(plain.services.api.container_name).toBeUndefined();
  });

  test('api and worker: built from infra/docker, configured completely from the environment', () => {
    for (const [name, schema, dockerfile] of [
      ['api', apiEnvSchema, 'infra/docker/api.Dockerfile'],
      ['worker', workerEnvSchema, 'infra/docker/worker.Dockerfile'],
    ] as const) {
      const service = plain.services[name];
      expect(service.build.dockerfile).toBe(dockerfile);
      expect(fs.existsSync(repoPath(dockerfile))).toBe(true);
      const env = envOf(service);
      // Every variable of the service's schema can be set from .env.
      expect(Object.keys(schema.shape).filter((key) => !(key in env))).toEqual([]);
      expect(env.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://jaeger:4318');
      expect(env.DATABASE_URL).toBe('postgres://blog:blog@postgres:5432/blog');
      expect(env.LOG_LEVEL).toBe('info');
    }
    expect(envOf(plain.services.worker).WORKER_HEALTH_PORT).toBe('8001');
    expect(envOf(plain.services.api).PORT).toBe('8000');
    expect(plain.services.migrate.build.dockerfile).toBe('infra/docker/api.Dockerfile');
  });

  test('values come from .env: POSTGRES_* reach postgres, the URLs and grafana', () => {
    const r = run(compose!.command, [...compose!.prefix, '-f', 'docker-compose.yml', 'config'], {
      env: { ...process.env, POSTGRES_USER: 'u1', POSTGRES_PASSWORD: 'p1', POSTGRES_DB: 'd1', DEFAULT_SYNC_MODE: 'INLINE' },
    });
    expect(r.status).toBe(0);
    const c = parse(r.stdout) as Config;
    expect(envOf(c.services.postgres)).toMatchObject({ POSTGRES_USER: 'u1', POSTGRES_PASSWORD: 'p1', POSTGRES_DB: 'd1' });
    expect(envOf(c.services.grafana)).toMatchObject({ POSTGRES_USER: 'u1', POSTGRES_PASSWORD: 'p1', POSTGRES_DB: 'd1' });
    for (const name of ['migrate', 'api', 'worker']) expect(envOf(c.services[name]).DATABASE_URL).toBe('postgres://u1:p1@postgres:5432/d1');
    expect(envOf(c.services.api).DEFAULT_SYNC_MODE).toBe('INLINE');
  });

  test('every published port can be moved from .env (API_HOST_PORT...), the container side staying put', () => {
    const moved: Record<string, [string, number[], number[]]> = {
      postgres: ['POSTGRES_HOST_PORT', [15432], [5432]],
      api: ['API_HOST_PORT', [18000], [8000]],
      prometheus: ['PROMETHEUS_HOST_PORT', [19090], [9090]],
      grafana: ['GRAFANA_HOST_PORT', [13000], [3000]],
    };
    const env: Record<string, string> = { JAEGER_UI_HOST_PORT: '26686', JAEGER_OTLP_HOST_PORT: '24318' };
    for (const [variable, [port]] of Object.values(moved)) env[variable] = String(port);
    const r = run(compose!.command, [...compose!.prefix, '-f', 'docker-compose.yml', 'config'], { env: { ...process.env, ...env } });
    expect(r.status).toBe(0);
    const c = parse(r.stdout) as Config;
    const targets = (service: { ports?: unknown[] }) =>
      (service.ports ?? []).map((p) =>
        typeof p === 'object' && p !== null
          ? Number((p as { target: unknown }).target)
          : Number(String(p).split('/')[0]!.split(':').at(-1)),
      );
    for (const [name, [, published, target]] of Object.entries(moved)) {
      expect([name, publishedPorts(c.services[name]), targets(c.services[name])]).toEqual([name, published, target]);
    }
    expect(publishedPorts(c.services.jaeger).sort((a, b) => a - b)).toEqual([24318, 26686]);
    expect(targets(c.services.jaeger).sort((a, b) => a - b)).toEqual([4318, 16686]);
    // And no service publishes a port that .env cannot move.
    for (const [name, service] of Object.entries(c.services)) {
      for (const port of publishedPorts(service)) expect([name, port >= 10000]).toEqual([name, true]);
    }
  });

  test('stop grace periods exceed the default shutdown timeouts (10 s)', () => {
    for (const name of ['api', 'worker']) expect(plain.services[name].stop_grace_period).toBe('30s');
  });

  test('prometheus and grafana mount the files of infra/ that exist', () => {
    const bind = (name: string, target: string) => mounts(name).find(([, t]) => t === target)?.[0];
    expect(bind('prometheus', '/etc/prometheus/prometheus.yml')).toBe(repoPath('infra/prometheus/prometheus.yml'));
    expect(bind('grafana', '/etc/grafana/provisioning')).toBe(repoPath('infra/grafana/provisioning'));
    expect(bind('grafana', '/var/lib/grafana/dashboards')).toBe(repoPath('infra/grafana/dashboards'));
    for (const [source] of [...mounts('prometheus'), ...mounts('grafana')]) {
      if (source!.startsWith('/')) expect(fs.existsSync(source!)).toBe(true);
    }
    expect(fs.existsSync(repoPath('infra/grafana/dashboards', 'sync.json'))).toBe(true);
    expect(envOf(plain.services.grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe('/var/lib/grafana/dashboards/sync.json');
  });
});

test('the raw file: no `version:` key (obsolete in the compose specification) and no sleeps', () => {
  const raw = readRepoFile('docker-compose.yml');
  expect(raw).not.toMatch(/^version:/m);
  expect(raw).not.toMatch(/\bsleep\b/);
});
