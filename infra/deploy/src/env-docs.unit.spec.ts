/**
 * @jest-environment-options {"database": false}
 */
import { apiEnvSchema } from '../../../services/api/src/env';
import { workerEnvSchema } from '../../../services/worker/src/env';
import { databaseEnvSchema } from '../../../shared/src/db/database';
import { collectEnvReads, envFileVariables, readmeConfigVariables } from './env-vars';

/**
 * Every environment variable the services and the CLIs read is documented: in the README's
 * Configuration table (the reference) and in .env.example (set, or shown commented out).
 *
 * Not scanned, on purpose: tests and the test harness (shared/test, *.spec.ts: BLOG_TEST_*,
 * TEST_EMBEDDED_PG_PORT), and the benchmarks (shared/src/bench, services/*\/bench, infra/bench:
 * BENCH_*), whose variables are documented with the benchmarks. See configSources().
 */
const reads = collectEnvReads();

/**
 * Read by a scanned source but deliberately not configuration; each name has its reason beside it.
 */
const NOT_CONFIGURATION: Record<string, string> = {
  INIT_CWD: 'set by npm to the folder it was run from; relative paths given by the user are resolved from it (resolveUserPath)',
};

/** Variables of docker-compose.yml only (no service reads them), documented all the same. */
const COMPOSE_ONLY = [
  'POSTGRES_USER',
  'POSTGRES_PASSWORD',
  'POSTGRES_DB',
  'POSTGRES_HOST_PORT',
  'API_HOST_PORT',
  'JAEGER_UI_HOST_PORT',
  'JAEGER_OTLP_HOST_PORT',
  'PROMETHEUS_HOST_PORT',
  'GRAFANA_HOST_PORT',
  'GRAFANA_ADMIN_USER',
  'GRAFANA_ADMIN_PASSWORD',
  'GRAFANA_ANONYMOUS_VIEWER',
  'BLOG_API_IMAGE',
  'BLOG_WORKER_IMAGE',
];

/**
 * Standard OpenTelemetry variables that the SDK reads itself (none of our sources names them), and
 * that the README documents because operators tune them: sampling and the export interval.
 */
const READ_BY_THE_SDK = ['OTEL_TRACES_SAMPLER', 'OTEL_TRACES_SAMPLER_ARG', 'OTEL_BSP_SCHEDULE_DELAY'];

const readme = readmeConfigVariables();
const envFile = envFileVariables();
const inEnvFile = new Set([...envFile.set, ...envFile.commented]);
const required = [...reads.keys()].filter((name) => !(name in NOT_CONFIGURATION)).sort();

test('the scanner finds the variables it must (a sanity check of the scan itself)', () => {
  // The zod schemas, loaded for real: every key is among what the scan of the sources found.
  for (const schema of [apiEnvSchema, workerEnvSchema, databaseEnvSchema]) {
    for (const key of Object.keys(schema.shape)) expect([key, reads.has(key)]).toEqual([key, true]);
  }
  // Direct reads of process.env and of an env record.
  for (const name of ['LOG_LEVEL', 'MIGRATIONS_DIR', 'DEBUG', 'OTEL_EXPORTER_OTLP_ENDPOINT', 'SEED_WHEN_EMPTY']) {
    expect([name, reads.has(name)]).toEqual([name, true]);
  }
  expect(required.length).toBeGreaterThanOrEqual(30);
});

test("every variable read is in the README's Configuration table", () => {
  const missing = required.filter((name) => !readme.includes(name));
  expect(missing.map((name) => `${name} (read by ${[...reads.get(name)!].join(', ')})`)).toEqual([]);
});

test('every variable read is in .env.example (set or commented out)', () => {
  const missing = required.filter((name) => !inEnvFile.has(name));
  expect(missing.map((name) => `${name} (read by ${[...reads.get(name)!].join(', ')})`)).toEqual([]);
});

test('the compose-only and SDK-read variables are documented in both places too', () => {
  for (const list of [COMPOSE_ONLY, READ_BY_THE_SDK]) {
    expect(list.filter((name) => !readme.includes(name))).toEqual([]);
    expect(list.filter((name) => !inEnvFile.has(name))).toEqual([]);
  }
});

test('the README table and .env.example list the same variables, each once, and nothing unknown', () => {
  const known = new Set([...required, ...COMPOSE_ONLY, ...READ_BY_THE_SDK]);
  expect(readme.filter((name) => !known.has(name))).toEqual([]);
  expect([...inEnvFile].filter((name) => !known.has(name))).toEqual([]);
  expect(readme.filter((name, i) => readme.indexOf(name) !== i)).toEqual([]);
  const lines = [...envFile.set, ...envFile.commented];
  expect(lines.filter((name, i) => lines.indexOf(name) !== i)).toEqual([]);
});

test('.env.example sets no secret other than the local-demo defaults', () => {
  // Only compose's own settings are active lines; everything the services read is commented out
  // (their defaults live in src/env.ts), so copying the file changes no behaviour by accident.
  expect(envFile.set.filter((name) => !COMPOSE_ONLY.includes(name))).toEqual([]);
});
