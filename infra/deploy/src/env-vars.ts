import fs from 'node:fs';
import { listFiles, readRepoFile, repoPath } from './repo';

/**
 * Which environment variables the services and CLIs read, found in their sources, so that the
 * configuration documentation can be checked against them (env-docs.unit.spec.ts).
 *
 * Two ways a variable is read in this code base:
 *  - a key of a zod schema given to parseEnv (`z.object({ PORT: intVar(...), ... })`);
 *  - directly: `process.env.NAME`, `env.NAME` (an environment record passed in), `process.env['NAME']`.
 */
export type EnvReads = Map<string, Set<string>>;

/** Sources of the running services and the command-line tools (not tests, not benchmarks). */
export function configSources(): string[] {
  const ts = (rel: string) => rel.endsWith('.ts') && !rel.endsWith('.spec.ts') && !rel.endsWith('.d.ts');
  return [
    ...listFiles('services/api/src', ts),
    ...listFiles('services/worker/src', ts),
    // shared/src/bench is the sync benchmark (BENCH_* variables, documented with the benchmarks).
    ...listFiles('shared/src', (rel) => ts(rel) && !rel.startsWith('shared/src/bench/')),
    // The images' health probe (reads PORT and WORKER_HEALTH_PORT).
    'infra/docker/healthcheck.cjs',
  ];
}

const DIRECT = [
  /\bprocess\.env\.([A-Z][A-Z0-9_]*)\b/g,
  /\bprocess\.env\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\]/g,
  /\benv\.([A-Z][A-Z0-9_]*)\b/g,
  /\benv\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\]/g,
];

/**
 * Keys written in UPPER_CASE at the top level of every `z.object({ ... })` in a source text. A small
 * scanner: it skips strings and comments and tracks nesting, and takes the identifier that starts
 * each top-level property when a colon follows it.
 */
export function zodObjectKeys(source: string): string[] {
  const keys: string[] = [];
  const opener = /z\s*\.object\(\s*\{/g;
  for (let m = opener.exec(source); m; m = opener.exec(source)) {
    let depth = 1;
    let expectKey = true;
    let previous = '{';
    let i = m.index + m[0].length;
    while (i < source.length && depth > 0) {
      const c = source[i]!;
      const next = source[i + 1];
      if (c === '/' && next !== '/' && next !== '*' && '(,=:[!&|?{};>'.includes(previous)) {
        // A regular expression literal (it may contain quotes, brackets and "//").
        let inClass = false;
        for (i++; i < source.length; i++) {
          const r = source[i];
          if (r === '\\') i++;
          else if (r === '[') inClass = true;
          else if (r === ']') inClass = false;
          else if (r === '/' && !inClass) break;
        }
        i++;
        previous = '/';
        continue;
      }
      if (c === '/' && next === '/') {
        i = source.indexOf('\n', i);
        if (i < 0) break;
        continue;
      }
      if (c === '/' && next === '*') {
        i = source.indexOf('*/', i + 2) + 2;
        if (i < 2) break;
        continue;
      }
      if (c === "'" || c === '"' || c === '`') {
        i++;
        while (i < source.length && source[i] !== c) i += source[i] === '\\' ? 2 : 1;
        i++;
        expectKey = false;
        previous = c;
        continue;
      }
      if (/\s/.test(c)) {
        i++;
        continue;
      }
      previous = c;
      if (depth === 1 && expectKey) {
        const key = /^([A-Za-z_$][\w$]*)\s*:/.exec(source.slice(i, i + 200));
        if (key && /^[A-Z][A-Z0-9_]*$/.test(key[1]!)) keys.push(key[1]!);
        expectKey = false;
      }
      if (c === '{' || c === '(' || c === '[') depth++;
      else if (c === '}' || c === ')' || c === ']') depth--;
      else if (c === ',' && depth === 1) expectKey = true;
      i++;
    }
  }
  return keys;
}

export function envReadsIn(source: string): string[] {
  const names = new Set(zodObjectKeys(source));
  for (const re of DIRECT) for (const m of source.matchAll(re)) names.add(m[1]!);
  return [...names];
}

/** Every variable read by the given files (default: configSources()), with the files reading it. */
export function collectEnvReads(files: string[] = configSources()): EnvReads {
  const reads: EnvReads = new Map();
  for (const file of files) {
    for (const name of envReadsIn(fs.readFileSync(repoPath(file), 'utf8'))) {
      if (!reads.has(name)) reads.set(name, new Set());
      reads.get(name)!.add(file);
    }
  }
  return reads;
}

/** Variables in the first column of the tables of the README section `## Configuration`. */
export function readmeConfigVariables(readme = readRepoFile('README.md')): string[] {
  const section = /^## Configuration\s*$([\s\S]*?)(?=^## )/m.exec(readme);
  if (!section) return [];
  const names: string[] = [];
  for (const line of section[1]!.split('\n')) {
    const row = /^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/.exec(line);
    if (row) names.push(row[1]!);
  }
  return names;
}

/** Variables set or shown (commented out) in an .env file: `NAME=...` or `# NAME=...`. */
export function envFileVariables(text = readRepoFile('.env.example')): { set: string[]; commented: string[] } {
  const set: string[] = [];
  const commented: string[] = [];
  for (const line of text.split('\n')) {
    const active = /^([A-Z][A-Z0-9_]*)=/.exec(line);
    if (active) set.push(active[1]!);
    const shown = /^#\s?([A-Z][A-Z0-9_]*)=/.exec(line);
    if (shown) commented.push(shown[1]!);
  }
  return { set, commented };
}
