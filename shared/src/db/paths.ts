import path from 'node:path';

/**
 * The repository root, from this file's place in the tree (shared/src/db or shared/dist/db).
 * Used for defaults only: migrations/ and .data/ live at the top level.
 */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');

export const defaultMigrationsDir = path.join(repoRoot, 'migrations');
export const defaultEmbeddedDataDir = path.join(repoRoot, '.data', 'postgres');
