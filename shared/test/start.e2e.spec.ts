import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { acceptsConnections, builtFile, testDatabaseUrl } from './helpers';
import { repoRoot } from '../src/db/paths';
import { freePort } from '../src/net/free-port';

const run = promisify(execFile);

/** The environment of a user's shell: none of the test harness's database settings. */
function userEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|PORT|WORKER_HEALTH_PORT|EMBEDDED_PG_.*|BLOG_TEST_.*)$/.test(k)),
  );
  return { ...base, LOG_LEVEL: 'warn', ...env };
}

interface Started {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  exited: Promise<number | null>;
}

function startProcess(file: string, args: string[], env: NodeJS.ProcessEnv, cwd = repoRoot): Started {
  const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const started: Started = { child, stdout: [], stderr: [], exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  child.stdout!.on('data', (chunk: Buffer) => started.stdout.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => started.stderr.push(chunk.toString()));
  return started;
}

/** The first match of `pattern` in the process's stdout; rejects when it exits or the time runs out first. */
function printed(p: Started, pattern: RegExp, what: string, timeoutMs: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      p.child.stdout!.off('data', check);
      p.child.off('exit', onExit);
    };
    const check = () => {
      const match = pattern.exec(p.stdout.join(''));
      if (match) {
        done();
        resolve(match);
      }
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`${what}: the process exited (${code}) first; its stderr: ${p.stderr.join('')}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what}: not printed within ${timeoutMs} ms`));
    }, timeoutMs);
    p.child.stdout!.on('data', check);
    p.child.once('exit', onExit);
    check();
  });
}

/** `npm start`'s script after its compile step: node shared/dist/cli/start.js. */
const startScript = (env: Record<string, string>) =>
  startProcess(process.execPath, [builtFile('shared', 'dist', 'cli', 'start.js')], userEnv(env));

/** A plain HTTP server that answers 200 to /health, as a running API would. */
async function impostor(host?: string): Promise<{ port: number; close: () => Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
  });
  await new Promise<void>((resolve) => (host ? server.listen(0, host, resolve) : server.listen(0, resolve)));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

describe('npm start', () => {
  const running: Started[] = [];
  afterEach(async () => {
    for (const p of running.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
  });

  it.each([
    ['PORT', 'every address', undefined],
    ['PORT', '127.0.0.1', '127.0.0.1'],
    ['WORKER_HEALTH_PORT', 'every address', undefined],
  ])('refuses a %s that another process answers /health on (listening on %s), before starting anything', async (variable, _label, host) => {
    const other = await impostor(host);
    try {
      const env = { DATABASE_URL: testDatabaseUrl(), PORT: '0', WORKER_HEALTH_PORT: '0', [variable]: String(other.port) };
      const started = startScript(env);
      running.push(started);
      expect(await started.exited).toBe(2);
      expect(started.stderr.join('')).toBe(
        `Port ${other.port} (${variable}) is already in use by another process (another \`npm start\` or worker?): ` +
          `set ${variable}=0 to pick a free port, or ${variable} to another free port, or stop that process.\n`,
      );
      expect(started.stdout.join('')).not.toContain('ready');
    } finally {
      await other.close();
    }
  });

  it(
    'PORT=0: the API picks a free port, npm start prints its real URL and the database URL, ' +
      'and the printed worker recipe runs next to it',
    async () => {
      await run('npm', ['run', '-s', 'compile'], { cwd: repoRoot, env: userEnv({}) });
      const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-start-'));
      await fs.chmod(tmp, 0o755); // as root, the postgres OS user must reach the data directory
      const pgPort = await freePort();
      const workerHealthPort = await freePort();
      try {
        const start = startScript({
          EMBEDDED_PG_DIR: path.join(tmp, 'pg'),
          EMBEDDED_PG_PORT: String(pgPort),
          PORT: '0',
          WORKER_HEALTH_PORT: String(workerHealthPort),
        });
        running.push(start);
        const ready = await printed(start, /API ready at http:\/\/localhost:(\d+)\/graphql/, 'npm start: API ready', 90_000);
        const port = Number(ready[1]);
        expect(port).toBeGreaterThan(0);
        const health = await fetch(`http://127.0.0.1:${port}/health`);
        expect(health.status).toBe(200);

        const out = start.stdout.join('');
        const dbUrl = `postgres://postgres:postgres@127.0.0.1:${pgPort}/blog`;
        expect(out).toContain(`DATABASE_URL=${dbUrl} (the embedded PostgreSQL; data in ${path.join(tmp, 'pg')})\n`);
        const recipe = /More workers \(another terminal\): (.*)\n/.exec(out)?.[1];
        expect(recipe).toBe(
          `DATABASE_URL=${dbUrl} WORKER_HEALTH_PORT=0 node ${path.join(repoRoot, 'services', 'worker', 'dist', 'main.js')}`,
        );

        // The recipe, pasted in a shell elsewhere, starts a second worker beside npm start's.
        const second = startProcess('/bin/sh', ['-c', `exec env LOG_LEVEL=info ${recipe!}`], userEnv({}), os.tmpdir());
        running.push(second);
        await printed(second, /projection worker started/, 'the second worker', 30_000);
        second.child.kill('SIGTERM');
        expect(await second.exited).toBe(0);

        start.child.kill('SIGTERM');
        expect(await start.exited).toBe(0);
        // Everything stopped, the embedded server last.
        await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
        expect(await acceptsConnections(pgPort)).toBe(false);
      } finally {
        await fs.rm(tmp, { recursive: true, force: true });
      }
    },
    180_000,
  );
});
