import { UUID_PATTERN } from '@blog/shared';
import { BadInputError, InvalidArgumentsError } from './errors';

/**
 * Input rules, checked in code before anything is written or read. They are the rules of the CHECK
 * constraints of migration 001 (the database enforces them too, as a backstop), a little stricter
 * where the database is lax: "blank" means nothing visible (only whitespace and invisible format
 * characters such as zero-width spaces), text may not contain NUL characters (PostgreSQL cannot
 * store them), and single-line fields (email, username, fullName, title) may not contain
 * bidirectional control characters, which reorder how the text around them is displayed.
 */
const USERNAME = /^[A-Za-z0-9_]{3,30}$/;
// tb_user_email_format: '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$', at most 254 characters.
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export const LIMITS = {
  email: 254,
  fullName: 100,
  bio: 2000,
  title: 300,
  postContent: 100_000,
  commentContent: 10_000,
} as const;

/**
 * What shows nothing: whitespace and the default-ignorable code points (zero-width space, joiners
 * and non-joiner U+200B-U+200D, word joiner U+2060, BOM U+FEFF, soft hyphen, Hangul fillers,
 * variation selectors, the bidirectional controls...).
 */
const INVISIBLE = /[\s\p{Default_Ignorable_Code_Point}]/gu;
/**
 * Bidirectional controls (Unicode's Bidi_Control: ALM U+061C, LRM/RLM U+200E-U+200F, embeddings
 * and overrides U+202A-U+202E, isolates U+2066-U+2069): in a name or title they make text display
 * in another order than it is stored ("Trojan source"-style spoofing). Refused in single-line fields.
 */
const BIDI_CONTROL = /\p{Bidi_Control}/u;

const blank = (v: string): boolean => v.replace(INVISIBLE, '') === '';

/** Characters as PostgreSQL counts them (code points, not UTF-16 units). */
const length = (s: string): number => {
  let n = 0;
  for (const _ of s) n += 1;
  return n;
};

/**
 * Text PostgreSQL can store exactly: no NUL (text cannot hold it) and no lone UTF-16 surrogate (JSON
 * allows "\ud800"; it has no UTF-8 form, and the driver would silently store U+FFFD instead).
 */
function storable(v: string, field: string): void {
  if (v.includes('\u0000')) throw new BadInputError(`${field} must not contain NUL characters.`, field);
  if (!v.isWellFormed()) throw new BadInputError(`${field} must be valid Unicode (it contains a lone surrogate).`, field);
}

/**
 * The checks of one command's arguments, all run before anything is refused, so that a client
 * learns of every bad argument in one answer:
 *
 *   const args = new ArgumentChecks();
 *   const title = args.check(() => text(input.title, 'title', LIMITS.title, true));
 *   ...
 *   args.done(); // throws the one BadInputError, or an InvalidArgumentsError of all of them
 *
 * A refused check's value is undefined; done() throws before any of them is used.
 */
export class ArgumentChecks {
  private readonly refused: BadInputError[] = [];

  check<T>(run: () => T): T {
    try {
      return run();
    } catch (err) {
      if (!(err instanceof BadInputError)) throw err;
      this.refused.push(err);
      return undefined as T;
    }
  }

  done(): void {
    if (this.refused.length === 1) throw this.refused[0]!;
    if (this.refused.length > 1) throw new InvalidArgumentsError(this.refused);
  }
}

export function uuid(value: unknown, field: string): string {
  if (typeof value !== 'string' || !UUID_PATTERN.test(value)) throw new BadInputError(`${field} must be a UUID.`, field);
  return value.toLowerCase();
}

/** The most characters of a lookup key or text filter (a slug): longer cannot match anything stored. */
export const MAX_KEY_CHARS = 200;

/** A lookup key or a text filter (a tag's slug): a string of 1 to MAX_KEY_CHARS characters, no NUL. */
export function key(value: unknown, field: string): string {
  if (typeof value !== 'string' || !value.length || value.length > MAX_KEY_CHARS || value.includes('\0')) {
    throw new BadInputError(`${field} must be a string of 1 to ${MAX_KEY_CHARS} characters.`, field);
  }
  return value;
}

function singleLineText(v: string, field: string): void {
  if (BIDI_CONTROL.test(v)) {
    throw new BadInputError(
      `${field} must not contain bidirectional control characters (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069).`,
      field,
    );
  }
}

/**
 * Required text: not blank, at most `max` characters, no NUL. A single-line field (a name, a title)
 * is trimmed and may not contain bidirectional controls.
 */
export function text(value: unknown, field: string, max: number, singleLine = false): string {
  if (typeof value !== 'string') throw new BadInputError(`${field} is required.`, field);
  const v = singleLine ? value.trim() : value;
  if (blank(v)) throw new BadInputError(`${field} must not be blank.`, field);
  if (length(v) > max) throw new BadInputError(`${field} must be at most ${max} characters.`, field);
  storable(v, field);
  if (singleLine) singleLineText(v, field);
  return v;
}

export function optionalText(value: unknown, field: string, max: number): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') throw new BadInputError(`${field} must be a string.`, field);
  if (length(value) > max) throw new BadInputError(`${field} must be at most ${max} characters.`, field);
  storable(value, field);
  return value;
}

export function username(value: unknown): string {
  const v = typeof value === 'string' ? value.trim() : value;
  if (typeof v !== 'string' || !USERNAME.test(v)) {
    throw new BadInputError('username must be 3 to 30 letters, digits or underscores.', 'username');
  }
  return v;
}

export function email(value: unknown): string {
  const v = typeof value === 'string' ? value.trim() : value;
  if (typeof v !== 'string' || !EMAIL.test(v)) throw new BadInputError('email must be an email address.', 'email');
  if (length(v) > LIMITS.email) throw new BadInputError(`email must be at most ${LIMITS.email} characters.`, 'email');
  storable(v, 'email');
  singleLineText(v, 'email');
  return v;
}

export function limit(value: unknown, defaultSize: number, max: number): number {
  if (value === null || value === undefined) return defaultSize;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new BadInputError(`limit must be between 1 and ${max}.`, 'limit');
  }
  return value;
}

/**
 * A list cursor: base64url of "<createdAt>|<id>" (the keyset of every list). The SQL in
 * reads/compiler.ts computes the same string.
 */
export interface Cursor {
  createdAt: string;
  id: string;
}

/**
 * A timestamp PostgreSQL accepts: a real calendar date (JavaScript reads 2024-02-30 as March 1st,
 * PostgreSQL refuses it) from year 1 on (year 0 exists for JavaScript, not for PostgreSQL). A
 * forged cursor with either used to reach the database and come back as a 500.
 */
function realTimestamp(iso: string): boolean {
  const t = Date.parse(iso);
  return !Number.isNaN(t) && !iso.startsWith('0000') && new Date(t).toISOString() === iso;
}

export function encodeCursor(createdAt: string, id: string): string {
  return Buffer.from(`${createdAt}|${id}`, 'utf8').toString('base64url');
}

export function cursor(value: unknown, field = 'after'): Cursor | null {
  if (value === null || value === undefined) return null;
  const bad = () => new BadInputError(`${field} is not a cursor returned by this API.`, field);
  if (typeof value !== 'string' || value.length > 200) throw bad();
  const [createdAt, id, ...rest] = Buffer.from(value, 'base64url').toString('utf8').split('|');
  if (rest.length || !createdAt || !id || !ISO_MS.test(createdAt) || !UUID_PATTERN.test(id) || !realTimestamp(createdAt)) {
    throw bad();
  }
  return { createdAt, id: id.toLowerCase() };
}

/** An event's cursor (`events`): base64url of its id, a positive bigint. */
export function encodeEventCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

const EVENT_ID = /^[1-9][0-9]{0,18}$/;

/** The event id of an `events` cursor (its page holds older events only), or null when none is given. */
export function eventCursor(value: unknown, field = 'after'): string | null {
  if (value === null || value === undefined) return null;
  const id = typeof value === 'string' && value.length <= 40 ? Buffer.from(value, 'base64url').toString('utf8') : '';
  if (!EVENT_ID.test(id) || BigInt(id) > 9223372036854775807n)
    throw new BadInputError(`${field} is not a cursor returned by events.`, field);
  return id;
}
