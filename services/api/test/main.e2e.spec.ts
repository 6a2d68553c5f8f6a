import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { EmbeddedPostgres, freePort, withDatabase } from '@blog/shared';
import { builtFile, testDatabaseUrl } from '@blog/shared/test/helpers';

/**
 * The built service as users run it (`node services/api/dist/main.js`): the startup line says where
 * the API is, configuration errors are clear, and SIGTERM (even twice) shuts it down cleanly.
 */
const main = () => builtFile('services', 'api', 'dist', 'main.js');

function run(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [main()], {
    env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitFor(predicate: () => RegExpMatchArray | null, ms: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const m = predicate();
    if (m) return m;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('starts, says where it is, answers, and stops on SIGTERM (a second SIGTERM does not force it)', async () => {
  const api = run({ DATABASE_URL: testDatabaseUrl(), PORT: '0', HOST: '127.0.0.1' });
  try {
    const [, url] = await waitFor(() => api.output().match(/API ready at (http:\/\/\S+\/graphql)/), 30_000);
    const res = await fetch(url!, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ posts { id } }' }),
    });
    expect(await res.json()).toEqual({ data: { posts: [] } });
    // A request in flight (its body not finished) keeps the shutdown waiting for it.
    const { port } = new URL(url!);
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    const body = JSON.stringify({ query: '{ users { username } }' });
    socket.write(
      `POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    let answer = '';
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    await new Promise((r) => setTimeout(r, 200));
    api.child.kill('SIGTERM');
    await waitFor(() => api.output().match(/shutting down/), 5000);
    api.child.kill('SIGTERM');
    await waitFor(() => api.output().match(/already shutting down/), 5000);
    expect(api.child.exitCode).toBeNull();
    socket.write(body.slice(5));
    expect(await api.exited).toBe(0);
    // The request in flight was answered before the process went away.
    expect(answer).toMatch(/^HTTP\/1\.1 200/);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ data: { users: [] } });
    expect(api.output()).toContain('already shutting down');
    expect(api.output()).toContain('"msg":"stopped"');
  } finally {
    if (api.child.exitCode === null) api.child.kill('SIGKILL');
  }
});

test('refuses bad configuration with a clear message and exit code 2', async () => {
  const api = run({ PORT: 'x', DEFAULT_SYNC_MODE: 'LATER' });
  expect(await api.exited).toBe(2);
  expect(api.output()).toContain('Invalid configuration');
  expect(api.output()).toContain('DATABASE_URL: is required');
  expect(api.output()).toContain('DEFAULT_SYNC_MODE: must be one of INLINE, QUEUED, DEFERRED');
});

describe('a database it cannot use: exit 1 with what happened (not "is the database migrated?")', () => {
  const failsWith = async (url: string, expected: RegExp) => {
    const api = run({ DATABASE_URL: url, PORT: '0', HOST: '127.0.0.1' });
    expect(await api.exited).toBe(1);
    const failure = api
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: string; msg: string })
      .find((line) => line.level === 'error');
    expect(failure?.msg).toMatch(expected);
    expect(api.output()).not.toMatch(/migrated\?/);
    return api.output();
  };

  test('nothing listens at the host and port', async () => {
    const port = await freePort();
    const url = new URL(testDatabaseUrl());
    url.host = `127.0.0.1:${port}`;
    await failsWith(
      url.toString(),
      new RegExp(`the API failed to start: cannot use DATABASE_URL: cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`),
    );
  });

  test('the database does not exist', async () => {
    const url = withDatabase(testDatabaseUrl(), 'blog_no_such_database');
    await failsWith(url, /the API failed to start: cannot use DATABASE_URL: database "blog_no_such_database" does not exist on /);
  });

  // The test server trusts every local user, so a wrong password is tried on an embedded
  // PostgreSQL (scram-sha-256) of this test's own.
  test('the password is wrong', async () => {
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-api-password-'));
    await fs.chmod(parent, 0o755); // the postgres OS user (when running as root) must reach it
    const server = new EmbeddedPostgres({ dataDir: path.join(parent, 'data'), port: await freePort(), password: 'the-right-one' });
    try {
      await server.start();
      const url = new URL(server.url('postgres'));
      url.password = 'not-the-password';
      const output = await failsWith(
        url.toString(),
        /the API failed to start: cannot use DATABASE_URL: password authentication failed for user "postgres" at 127\.0\.0\.1:\d+/,
      );
      expect(output).not.toContain('not-the-password');
    } finally {
      await server.stop();
      await fs.rm(parent, { recursive: true, force: true });
    }
  }, 60_000);
});
