import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SystemId } from './documents';

/**
 * The systems under test and how to start each one: a separate process listening on 127.0.0.1,
 * answering POST /graphql, and GET /health with 200 once it is ready. All run on the Node that runs
 * the benchmark (the repo's Node 24) with a pool of `poolMax` PostgreSQL connections.
 */
export interface SystemSpec {
  id: SystemId;
  label: string;
  /** Answers the read documents. */
  reads: boolean;
  /** The write documents it gets: ours with each sync mode, the peers once (they have no projections). */
  writes: ('INLINE' | 'QUEUED' | 'none')[];
  /**
   * Its answers are compared with the data computed from tb_*. Every system's are, except the
   * constant server's: it answers one fixed text whatever is asked, so there is nothing to compare
   * (it is the limit of a cached answer, not a system that reads data).
   */
  checked: boolean;
}

export const SYSTEMS: Record<SystemId, SystemSpec> = {
  // Our API twice: with RESPONSE_CACHE=off (every read runs its SQL statement: the row the targets
  // against the peers and the ceiling are about) and with the response cache on (its default).
  ours: { id: 'ours', label: 'ours (services/api, response cache off)', reads: true, writes: ['INLINE', 'QUEUED'], checked: true },
  'ours-cached': { id: 'ours-cached', label: 'ours, response cache', reads: true, writes: [], checked: true },
  constant: { id: 'constant', label: 'constant 3 KB (node:http)', reads: true, writes: [], checked: false },
  bare: { id: 'bare', label: 'bare node:http + pg (ceiling)', reads: true, writes: [], checked: true },
  postgraphile: { id: 'postgraphile', label: 'PostGraphile 5', reads: true, writes: ['none'], checked: true },
  'apollo-dataloader': {
    id: 'apollo-dataloader',
    label: 'Apollo, resolver per field + DataLoader',
    reads: true,
    writes: ['none'],
    checked: true,
  },
  apollo: { id: 'apollo', label: 'Apollo, resolver per field (N+1)', reads: true, writes: ['none'], checked: true },
};

export const SYSTEM_ORDER: SystemId[] = ['ours', 'ours-cached', 'constant', 'bare', 'postgraphile', 'apollo-dataloader', 'apollo'];

export interface Paths {
  repoRoot: string;
  /** The API's entry point (services/api/dist/main.js unless BENCH_API_MAIN says otherwise). */
  apiMain: string;
  benchDist: string;
  peersDir: string;
}

export interface StartOptions {
  databaseUrl: string;
  port: number;
  poolMax: number;
  logFile: string;
  /** Only for the bare servers: their statements file. */
  bareStatements?: string;
}

function command(spec: SystemSpec, paths: Paths, o: StartOptions): { args: string[]; env: Record<string, string>; cwd: string } {
  const common = { PORT: String(o.port), DATABASE_URL: o.databaseUrl, NODE_ENV: 'production', POOL_MAX: String(o.poolMax) };
  switch (spec.id) {
    case 'ours':
    case 'ours-cached':
      return {
        args: [paths.apiMain],
        cwd: paths.repoRoot,
        // RATE_LIMIT_MUTATIONS_PER_MINUTE=0: the write mix is one client writing as fast as it can.
        env: {
          ...common,
          HOST: '127.0.0.1',
          DB_POOL_MAX: String(o.poolMax),
          DEFAULT_SYNC_MODE: 'QUEUED',
          LOG_LEVEL: 'warn',
          RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
          RESPONSE_CACHE: spec.id === 'ours-cached' ? 'on' : 'off',
        },
      };
    case 'constant':
      return { args: [path.join(paths.benchDist, 'constant-server.js')], cwd: paths.repoRoot, env: common };
    case 'bare':
      return {
        args: [path.join(paths.benchDist, 'bare-server.js')],
        cwd: paths.repoRoot,
        env: { ...common, BARE_STATEMENTS: o.bareStatements ?? '' },
      };
    case 'postgraphile':
      return { args: [path.join(paths.peersDir, 'postgraphile.mjs')], cwd: paths.peersDir, env: { ...common, GRAPHILE_ENV: 'production' } };
    case 'apollo':
    case 'apollo-dataloader':
      return {
        args: [path.join(paths.peersDir, 'apollo.mjs')],
        cwd: paths.peersDir,
        env: { ...common, LOADER: spec.id === 'apollo' ? 'none' : 'dataloader' },
      };
  }
}

export class RunningSystem {
  constructor(
    readonly spec: SystemSpec,
    readonly url: string,
    private readonly child: ChildProcess,
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** SIGTERM, then SIGKILL after `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.exited) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.child.kill('SIGTERM');
    });
  }
}

/** Children still running, so that an interrupted run can stop them. */
export const running = new Set<RunningSystem>();

/** Set when the run is interrupted: no system starts after that. */
export const interruption = { requested: false };

export class StartError extends Error {
  override readonly name = 'StartError';
}

/** Starts a system and waits until GET /health answers 200 (or it exits, or the timeout passes). */
export async function startSystem(spec: SystemSpec, paths: Paths, o: StartOptions, timeoutMs = 90_000): Promise<RunningSystem> {
  if (interruption.requested) throw new StartError('the run was interrupted');
  const { args, env, cwd } = command(spec, paths, o);
  if (!existsSync(args[0]!)) throw new StartError(`${args[0]} does not exist (not built?)`);
  const log = createWriteStream(o.logFile, { flags: 'a' });
  const child = spawn(process.execPath, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const system = new RunningSystem(spec, `http://127.0.0.1:${o.port}`, child, o.logFile);
  running.add(system);
  child.once('exit', () => running.delete(system));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (system.exited) throw new StartError(`${spec.label} exited during start-up (code ${child.exitCode}): ${tail(o.logFile)}`);
    try {
      const res = await fetch(`${system.url}/health`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return system;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await system.stop();
  throw new StartError(`${spec.label} did not answer /health within ${timeoutMs / 1000} s: ${tail(o.logFile)}`);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ').slice(-800) || '(no output)';
  } catch {
    return '(no log)';
  }
}
