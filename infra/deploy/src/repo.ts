import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The repository root (this file is infra/deploy/src/repo.ts or infra/deploy/dist/repo.js). */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export function repoPath(...segments: string[]): string {
  return path.join(repoRoot, ...segments);
}

export function readRepoFile(...segments: string[]): string {
  return fs.readFileSync(repoPath(...segments), 'utf8');
}

/** Files under `dir` (recursive), as paths relative to the repository root, sorted. */
export function listFiles(dir: string, keep: (relative: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (abs: string) => {
    for (const entry of fs.readdirSync(abs, { withFileTypes: true })) {
      const child = path.join(abs, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules' && entry.name !== 'dist') walk(child);
      } else {
        const rel = path.relative(repoRoot, child).split(path.sep).join('/');
        if (keep(rel)) out.push(rel);
      }
    }
  };
  walk(repoPath(dir));
  return out.sort();
}

export interface Tool {
  /** What to run: the executable and the arguments that come before the caller's. */
  command: string;
  prefix: string[];
  label: string;
}

/** Runs a command; never throws for a non-zero exit. */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const r = spawnSync(command, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function works(command: string, args: string[]): boolean {
  const r = run(command, args);
  return !r.error && r.status === 0;
}

/**
 * A compose implementation that can parse docker-compose.yml: `docker-compose` (v1.29 from Debian,
 * or v2 standalone), else the `docker compose` plugin. Parsing needs no Docker engine.
 */
export function findCompose(): Tool | undefined {
  if (works('docker-compose', ['version'])) return { command: 'docker-compose', prefix: [], label: 'docker-compose' };
  if (works('docker', ['compose', 'version'])) return { command: 'docker', prefix: ['compose'], label: 'docker compose' };
  return undefined;
}

export function findPromtool(): Tool | undefined {
  return works('promtool', ['--version']) ? { command: 'promtool', prefix: [], label: 'promtool' } : undefined;
}

/**
 * Why a check that needs a tool cannot run here, printed once. On CI (CI set) a missing tool is a
 * failure instead: .ci/run installs docker-compose and promtool, so the checks always run there.
 */
export function missingTool(name: string, install: string): string {
  const reason = `${name} is not installed: its checks are skipped here (install: ${install}). CI installs it and runs them.`;
  process.stderr.write(`[@blog/deploy] ${reason}\n`);
  return reason;
}
