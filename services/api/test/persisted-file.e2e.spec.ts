import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot, SEED_OPERATIONS } from '@blog/shared';
import { builtFile, testDatabaseUrl } from '@blog/shared/test/helpers';

/**
 * The list of persisted operations as a user makes and uses it: `npm run persisted-operations -w
 * @blog/api -- --seed --out ops.json` from some folder, then PERSISTED_OPERATIONS_FILE=ops.json.
 * npm runs the script in services/api; relative paths must still be the user's.
 */
const execFileAsync = promisify(execFile);

/** The environment of a user's shell, without npm's variables of the test run (INIT_CWD among them). */
function userEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(npm_|INIT_CWD$)/.test(k))), ...env };
}

/** Runs the API until it says it is ready (then stops it) or exits; returns its exit code and output. */
function runApi(
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string; ready: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [builtFile('services', 'api', 'dist', 'main.js')], {
      cwd,
      env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', DATABASE_URL: testDatabaseUrl(), PORT: '0', HOST: '127.0.0.1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let ready = false;
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!ready && stdout.includes('API ready at')) {
        ready = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr, ready }));
  });
}

describe('the persisted operations file, with relative paths', () => {
  // A folder of the user's inside the clone (npm finds the workspaces from there); .scratch is ignored by git.
  const userDir = path.join(repoRoot, '.scratch', `persisted-${process.pid}-${Date.now()}`);
  beforeAll(() => fs.mkdirSync(userDir, { recursive: true }));
  afterAll(() => fs.rmSync(userDir, { recursive: true, force: true }));

  it('npm run persisted-operations -w @blog/api -- --seed --out ops.json writes ops.json where the user ran it', async () => {
    const { stderr } = await execFileAsync(
      'npm',
      ['run', '-s', 'persisted-operations', '-w', '@blog/api', '--', '--seed', '--out', 'ops.json'],
      {
        cwd: userDir,
        env: userEnv(),
      },
    );
    const written = path.join(userDir, 'ops.json');
    expect(stderr).toContain(`written to ${written}`);
    expect(Object.values(JSON.parse(fs.readFileSync(written, 'utf8')) as Record<string, string>).sort()).toEqual(
      Object.values(SEED_OPERATIONS).sort(),
    );
    expect(fs.existsSync(path.join(repoRoot, 'services', 'api', 'ops.json'))).toBe(false);
  });

  it('PERSISTED_OPERATIONS_FILE=ops.json is read from where the API was started', async () => {
    fs.writeFileSync(path.join(userDir, 'list.json'), '{}');
    const api = await runApi({ PERSISTED_OPERATIONS: 'only', PERSISTED_OPERATIONS_FILE: 'list.json' }, userDir);
    expect([api.ready, api.code, api.stderr]).toEqual([true, 0, '']);
  });

  it('a missing PERSISTED_OPERATIONS_FILE is a configuration error: exit 2 and one line naming the variable and the path', async () => {
    const api = await runApi({ PERSISTED_OPERATIONS: 'only', PERSISTED_OPERATIONS_FILE: 'missing.json' }, userDir);
    expect(api.code).toBe(2);
    expect(api.stderr).toBe(
      `blog-api: PERSISTED_OPERATIONS_FILE: cannot read ${path.join(userDir, 'missing.json')} (no such file); write the list with ` +
        '`npm run persisted-operations -w @blog/api -- --seed --out <file>` or set the variable to where it is.\n',
    );
    expect(api.stdout).toBe('');
  });
});
