#!/usr/bin/env node
import fs from 'node:fs';
import path from 'node:path';
import { EXIT, resolveUserPath, runCli, SEED_OPERATIONS, UsageError } from '@blog/shared';
import { parse, specifiedRules, validate } from 'graphql';
import { createSchema } from '../graphql/schema';
import { sha256 } from '../limits/persisted';

/**
 * Writes the list of persisted operations that PERSISTED_OPERATIONS_FILE reads: a JSON object
 * mapping the sha256 of each document's exact text to the text.
 *
 *   npm run persisted-operations -w @blog/api -- [--seed] [<folder or .graphql file>...] [--out <file>]
 *
 * --seed adds the seed README's documents (SEED_OPERATIONS); a folder adds every .graphql/.gql file
 * under it (each file is one document, sent by clients exactly as written). Every document is
 * parsed and validated against the API's schema first: a list cannot hold a document the API would
 * refuse. Without --out the JSON goes to stdout. Relative paths are from the folder the command was
 * run in (not services/api, where npm runs the script).
 */
const USAGE =
  'Usage: npm run persisted-operations -w @blog/api -- [--seed] [<folder or .graphql file>...] [--out <file>]\n' +
  'Writes {"<sha256>": "<document>"} for PERSISTED_OPERATIONS_FILE (at least one of --seed or a path).';

export interface ListSource {
  name: string;
  document: string;
}

/** The .graphql/.gql files under a path (a file or a folder, recursively), sorted. */
export function graphqlFiles(target: string): string[] {
  const stat = fs.statSync(target, { throwIfNoEntry: false });
  if (!stat) throw new UsageError(`${target}: no such file or folder`);
  if (stat.isFile()) return [target];
  const out: string[] = [];
  for (const entry of fs.readdirSync(target, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(target, entry.name);
    if (entry.isDirectory()) out.push(...graphqlFiles(full));
    else if (/\.(graphql|gql)$/.test(entry.name)) out.push(full);
  }
  return out;
}

/** The list for the given documents; throws naming the first one that is not valid for the schema. */
export function buildList(sources: ListSource[]): Record<string, string> {
  const schema = createSchema();
  const list: Record<string, string> = {};
  for (const { name, document } of sources) {
    let errors;
    try {
      errors = validate(schema, parse(document), specifiedRules);
    } catch (err) {
      throw new Error(`${name}: ${(err as Error).message}`, { cause: err });
    }
    if (errors.length) throw new Error(`${name}: ${errors[0]!.message}`);
    list[sha256(document)] = document;
  }
  return Object.fromEntries(Object.entries(list).sort(([a], [b]) => a.localeCompare(b)));
}

export async function main(argv: string[]): Promise<number> {
  let out: string | undefined;
  let seed = false;
  const paths: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--seed') seed = true;
    else if (arg === '--out') {
      const file = argv[++i];
      if (!file) throw new UsageError(`--out needs a file name\n${USAGE}`);
      out = resolveUserPath(file);
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      return EXIT.ok;
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}\n${USAGE}`);
    else paths.push(resolveUserPath(arg));
  }
  if (!seed && !paths.length) throw new UsageError(USAGE);
  const sources: ListSource[] = seed ? Object.entries(SEED_OPERATIONS).map(([name, document]) => ({ name: `seed ${name}`, document })) : [];
  for (const target of paths) {
    for (const file of graphqlFiles(target)) sources.push({ name: file, document: fs.readFileSync(file, 'utf8') });
  }
  if (!sources.length) throw new UsageError(`no .graphql or .gql file under ${paths.join(', ')}`);
  const text = `${JSON.stringify(buildList(sources), null, 2)}\n`;
  if (out) {
    fs.writeFileSync(out, text);
    process.stderr.write(`${sources.length} documents, ${Object.keys(JSON.parse(text) as object).length} distinct, written to ${out}\n`);
  } else process.stdout.write(text);
  return EXIT.ok;
}

if (require.main === module) runCli(main);
