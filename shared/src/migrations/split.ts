import { MigrationError } from './files';

export interface SqlStatement {
  /** The statement's text, without its terminating semicolon. */
  text: string;
  /** 1-based line of the file where the statement starts. */
  line: number;
}

const IDENT_CHAR = /[A-Za-z0-9_$\u0080-\uffff]/;
/** A dollar-quote tag ($$, $body$), matched where lastIndex points. */
const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

/**
 * Splits a file of SQL into its statements at the semicolons that end them, as PostgreSQL's lexer
 * sees them: semicolons inside '...' (E'...' with backslash escapes), "...", $tag$...$tag$, -- and
 * nested /* *\/ comments do not count. Statements that are only whitespace and comments are
 * dropped.
 *
 * Refused (MigrationError naming the file and line): an unterminated quote or comment, and
 * `BEGIN ATOMIC` function bodies, whose own semicolons only a full parser can tell apart.
 */
export function splitStatements(sql: string, file: string): SqlStatement[] {
  const statements: SqlStatement[] = [];
  // The statement's text outside quotes and comments, to tell an empty statement and to find words.
  let code = '';
  // Where the statement's first token starts (leading comments are left out), -1 before it.
  let first = -1;
  const token = (at: number) => {
    if (first === -1) first = at;
  };
  let i = 0;
  const lineAt = (offset: number) => sql.slice(0, offset).split('\n').length;
  const unterminated = (what: string, at: number): never => {
    throw new MigrationError(`Migration ${file}: ${what} starting on line ${lineAt(at)} is not closed.`);
  };
  const finish = (end: number) => {
    if (first !== -1) {
      if (/\bbegin\s+atomic\b/i.test(code)) {
        throw new MigrationError(
          `Migration ${file}, line ${lineAt(first)}: a BEGIN ATOMIC body cannot be split into statements; ` +
            'put it in a migration without -- migrate:no-transaction (those run as one piece).',
        );
      }
      statements.push({ text: sql.slice(first, end).trimEnd(), line: lineAt(first) });
    }
    code = '';
    first = -1;
  };

  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
      code += ' ';
    } else if (c === '/' && next === '*') {
      const from = i;
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= sql.length) unterminated('a /* comment', from);
        if (sql[i] === '/' && sql[i + 1] === '*') {
          depth += 1;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          depth -= 1;
          i += 2;
        } else i += 1;
      }
      code += ' ';
    } else if (c === "'") {
      const from = i;
      token(i);
      // E'...' (and e'...'): backslash escapes; elsewhere a backslash is an ordinary character.
      const escapes = /[Ee]/.test(sql[i - 1] ?? '') && !IDENT_CHAR.test(sql[i - 2] ?? '');
      i += 1;
      for (;;) {
        if (i >= sql.length) unterminated('a quoted string', from);
        if (escapes && sql[i] === '\\') i += 2;
        else if (sql[i] === "'" && sql[i + 1] === "'") i += 2;
        else if (sql[i] === "'") break;
        else i += 1;
      }
      i += 1;
      code += "''";
    } else if (c === '"') {
      const from = i;
      token(i);
      i += 1;
      for (;;) {
        if (i >= sql.length) unterminated('a quoted identifier', from);
        if (sql[i] === '"' && sql[i + 1] === '"') i += 2;
        else if (sql[i] === '"') break;
        else i += 1;
      }
      i += 1;
      code += '""';
    } else if (c === '$' && !IDENT_CHAR.test(sql[i - 1] ?? '') && dollarTagAt(sql, i)) {
      const tag = dollarTagAt(sql, i)!;
      token(i);
      const end = sql.indexOf(tag, i + tag.length);
      if (end === -1) unterminated(`a ${tag} quoted string`, i);
      i = end + tag.length;
      code += "''";
    } else if (c === ';') {
      finish(i);
      i += 1;
    } else {
      if (!/\s/.test(c)) token(i);
      code += c;
      i += 1;
    }
  }
  finish(sql.length);
  return statements;
}

function dollarTagAt(sql: string, at: number): string | undefined {
  DOLLAR_TAG.lastIndex = at;
  return DOLLAR_TAG.exec(sql)?.[0];
}
