/**
 * @jest-environment-options {"database": false}
 */
import { readRepoFile } from './repo';

/**
 * The README's Commands table and the root package.json agree: every root script is in the table,
 * and every `npm run` in the table is a script that exists (a workspace's one with `-w`).
 */
const readme = readRepoFile('README.md');
const scripts = (file: string) => Object.keys((JSON.parse(readRepoFile(file)) as { scripts?: Record<string, string> }).scripts ?? {});
const WORKSPACES: Record<string, string> = {
  '@blog/api': 'services/api/package.json',
  '@blog/worker': 'services/worker/package.json',
  '@blog/shared': 'shared/package.json',
};

/** The commands named in the first column of the table under "## Commands", e.g. `npm run seed`, `npm start`. */
function tableCommands(): string[] {
  const section = /^## Commands\s*$([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
  const commands: string[] = [];
  for (const line of section.split('\n')) {
    const first = /^\|([^|]*)\|/.exec(line)?.[1];
    if (!first) continue;
    for (const m of first.matchAll(/`(npm [^`]+)`/g)) commands.push(m[1]!.trim());
  }
  return commands;
}

/** The script a command runs and the package.json holding it: `npm start` is `start`, `npm run a -w @blog/api -- x` is `a` of the API. */
function scriptOf(command: string): { script: string; file: string } | undefined {
  const lifecycle = /^npm (start|test)\b/.exec(command);
  if (lifecycle) return { script: lifecycle[1]!, file: 'package.json' };
  const run = /^npm run ([\w:-]+)(?:\s+-w\s+(\S+))?/.exec(command);
  if (!run) return undefined;
  return { script: run[1]!, file: run[2] ? (WORKSPACES[run[2]] ?? `(unknown workspace ${run[2]})`) : 'package.json' };
}

test('the Commands table is found and names commands (a sanity check of the parsing)', () => {
  expect(tableCommands().length).toBeGreaterThanOrEqual(15);
});

test('every script of the root package.json is in the README Commands table', () => {
  const documented = new Set(
    tableCommands().flatMap((c) => {
      const s = scriptOf(c);
      return s && s.file === 'package.json' ? [s.script] : [];
    }),
  );
  expect(scripts('package.json').filter((name) => !documented.has(name))).toEqual([]);
});

test('every npm command of the table runs a script that exists', () => {
  const missing = tableCommands().filter((c) => {
    const s = scriptOf(c);
    return !s || !s.file.endsWith('package.json') || !scripts(s.file).includes(s.script);
  });
  expect(missing).toEqual([]);
});
