import { createHash } from 'node:crypto';
import path from 'node:path';

/**
 * The repository root, from this file's place in the tree (shared/src/db or shared/dist/db).
 * Used for defaults only: migrations/ and .data/ live at the top level.
 */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export const defaultMigrationsDir = path.join(repoRoot, 'migrations');
export const defaultEmbeddedDataDir = path.join(repoRoot, '.data', 'postgres');

/**
 * Where an embedded server keeps its data instead, when running as root and the `postgres` OS user
 * cannot reach the clone (under /root, or in a folder closed to other users):
 * /var/lib/blog-embedded-postgres/<hash of the clone's path>/<name>, one folder per clone.
 */
export function rootFallbackDataDir(name: string): string {
  const clone = createHash('sha256').update(repoRoot).digest('hex').slice(0, 12);
  return path.join('/var/lib/blog-embedded-postgres', clone, name);
}
