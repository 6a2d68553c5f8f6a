/**
 * @jest-environment-options {"database": false}
 */
import fs from 'node:fs';
import { readRepoFile, repoPath } from './repo';

/**
 * The Dockerfiles, read as text (no Docker engine here to build them; images.e2e.spec.ts runs what
 * their RUN steps run). Instructions are parsed with line continuations joined and comments dropped.
 */
interface Instruction {
  op: string;
  args: string;
}

function instructions(file: string): Instruction[] {
  const lines = readRepoFile(file).split('\n');
  const out: Instruction[] = [];
  let current = '';
  for (const line of lines) {
    if (/^\s*#/.test(line) && !current) continue;
    current += line.replace(/\\\s*$/, ' ');
    if (/\\\s*$/.test(line)) continue;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(current.trim());
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
    current = '';
  }
  return out;
}

const ignored = readRepoFile('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

describe.each(['api', 'worker'] as const)('infra/docker/%s.Dockerfile', (service) => {
  const steps = instructions(`infra/docker/${service}.Dockerfile`);
  const froms = steps.filter((s) => s.op === 'FROM');
  const finalStage = steps.slice(steps.lastIndexOf(froms.at(-1)!));

  test('two stages on Node 24 (bookworm-slim), the first named build', () => {
    expect(steps[0]).toEqual({ op: 'ARG', args: 'NODE_IMAGE=node:24-bookworm-slim' });
    expect(froms.map((f) => f.args)).toEqual(['${NODE_IMAGE} AS build', '${NODE_IMAGE}']);
  });

  test('the final stage: only the staged /app, production mode, the node user, exec-form CMD and HEALTHCHECK', () => {
    const ops = (op: string) => finalStage.filter((s) => s.op === op).map((s) => s.args);
    expect(ops('COPY')).toEqual(['--from=build /prod /app']);
    expect(ops('RUN')).toEqual([]);
    expect(ops('ENV')).toEqual(['NODE_ENV=production']);
    expect(ops('WORKDIR')).toEqual(['/app']);
    expect(ops('USER')).toEqual(['node']);
    expect(ops('STOPSIGNAL')).toEqual(['SIGTERM']);
    expect(JSON.parse(ops('CMD')[0]!)).toEqual(['node', `services/${service}/dist/main.js`]);
    const health = ops('HEALTHCHECK')[0]!;
    expect(JSON.parse(health.slice(health.indexOf('CMD ') + 4))).toEqual(['node', '/app/healthcheck.cjs', service]);
    expect(ops('EXPOSE')).toEqual([service === 'api' ? '8000' : '8001']);
    expect(ops('ENTRYPOINT')).toEqual([]);
  });

  test('the build stage stages with stage.sh (deps before the sources, then the app) and compiles this service', () => {
    const runs = steps.filter((s) => s.op === 'RUN').map((s) => s.args);
    expect(runs[0]).toBe(`sh infra/docker/stage.sh ${service} /prod deps`);
    expect(runs.at(-1)).toMatch(new RegExp(`tsc -b services/${service}/tsconfig\\.build\\.json .*stage\\.sh ${service} /prod app$`));
    // The root devDependency `node` must not become the compiler's node: no npm run in the build.
    expect(runs.filter((r) => /npm run/.test(r))).toEqual([]);
    expect(runs.filter((r) => /^npm (install|ci)/.test(r)).every((r) => r.includes('--ignore-scripts'))).toBe(true);
  });

  test('every COPY source exists and is not excluded by .dockerignore; the build stage copies what tsc and stage.sh read', () => {
    const sources = steps.filter((s) => s.op === 'COPY' && !s.args.startsWith('--from')).flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    for (const src of sources) {
      expect([src, fs.existsSync(repoPath(src))]).toEqual([src, true]);
      const excluded = ignored.some((pattern) => {
        const re = new RegExp(
          `^${pattern
            .replace(/\./g, '\\.')
            .replace(/\*\*\//g, '(.*/)?')
            .replace(/\*/g, '[^/]*')}(/.*)?$`,
        );
        return re.test(src);
      });
      expect([src, excluded]).toEqual([src, false]);
    }
    for (const needed of [
      'package.json',
      'package-lock.json',
      'tsconfig.base.json',
      'shared/package.json',
      'shared/tsconfig.build.json',
      'shared/src',
      `services/${service}/package.json`,
      `services/${service}/tsconfig.build.json`,
      `services/${service}/src`,
      'migrations',
      'infra/docker/stage.sh',
      'infra/docker/healthcheck.cjs',
    ]) {
      expect([needed, sources.includes(needed) || sources.some((s) => needed.startsWith(`${s}/`))]).toEqual([needed, true]);
    }
  });
});

test('.dockerignore keeps host builds, dependencies, data and secrets out of the build context', () => {
  for (const pattern of ['**/node_modules', '**/dist', '.git', '.data', '.env']) expect(ignored).toContain(pattern);
});
