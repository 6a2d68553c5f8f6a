import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';

export interface MigrationFile {
  version: number;
  name: string;
  /** File name, e.g. 001_initial_schema.sql */
  file: string;
  sql: string;
  checksum: string;
  /** `-- migrate:no-transaction` on the first line: for statements that cannot run in a transaction. */
  transactional: boolean;
}

/** Thrown for problems an operator must fix; the message says what and where. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

export const MIGRATION_FILE_PATTERN = /^(\d{3,})_([a-z0-9_]+)\.sql$/;

export function checksum(sql: string): string {
  return createHash('sha256').update(sql).digest('hex');
}

/** Reads `NNN_name.sql` files in version order; refuses malformed names and duplicate versions. */
export async function readMigrationFiles(dir: string): Promise<MigrationFile[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch (err) {
    throw new MigrationError(`Cannot read the migrations folder ${dir}: ${(err as Error).message}`, { cause: err });
  }
  const files: MigrationFile[] = [];
  const seen = new Map<number, string>();
  for (const file of entries.filter((f) => f.endsWith('.sql')).sort()) {
    const match = MIGRATION_FILE_PATTERN.exec(file);
    if (!match) {
      throw new MigrationError(`Migration file name ${file} is not of the form NNN_name.sql (digits, underscore, lowercase name).`);
    }
    const version = Number(match[1]);
    const other = seen.get(version);
    if (other) throw new MigrationError(`Two migrations share version ${version}: ${other} and ${file}.`);
    seen.set(version, file);
    const sql = await fs.readFile(path.join(dir, file), 'utf8');
    files.push({
      version,
      name: match[2] ?? '',
      file,
      sql,
      checksum: checksum(sql),
      transactional: !/^--\s*migrate:no-transaction\b/.test(sql),
    });
  }
  return files.sort((a, b) => a.version - b.version);
}
