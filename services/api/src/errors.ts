import { CONSTRAINT_CODES, isRetryablePgError, pgErrorCode } from '@blog/shared';
import { GraphQLError } from 'graphql';

/**
 * Errors a client causes. Commands and argument checks throw these; they become GraphQL errors
 * with `extensions.code` only at the edge (toGraphQLError), and nothing else reaches clients.
 */
export abstract class ClientError extends Error {
  abstract readonly code: 'BAD_USER_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'UNAUTHENTICATED' | 'FORBIDDEN' | ReadRefusedError['code'];
  constructor(
    message: string,
    /** The argument at fault, when there is one. */
    readonly field?: string,
  ) {
    super(message);
  }
}

export class BadInputError extends ClientError {
  override readonly name = 'BadInputError';
  readonly code = 'BAD_USER_INPUT' as const;
}

export class NotFoundError extends ClientError {
  override readonly name = 'NotFoundError';
  readonly code = 'NOT_FOUND' as const;
}

export class ConflictError extends ClientError {
  override readonly name = 'ConflictError';
  readonly code = 'CONFLICT' as const;
}

/** No token, or one that does not verify (AUTH_MODE=jwt). */
export class UnauthenticatedError extends ClientError {
  override readonly name = 'UnauthenticatedError';
  readonly code = 'UNAUTHENTICATED' as const;
}

/** No token at all, where one is needed (AUTH_MODE=jwt). */
export class MissingTokenError extends UnauthenticatedError {}

/** A valid token whose subject may not do this (not the owner, not an admin). */
export class ForbiddenError extends ClientError {
  override readonly name = 'ForbiddenError';
  readonly code = 'FORBIDDEN' as const;
}

/**
 * A read the server will not run or answer (reads/read-gate.ts, reads/read-engine.ts): an answer
 * over MAX_RESPONSE_BYTES (HTTP 400), too many heavy reads from one client (429), no turn in time
 * or a read cancelled by the statement timeout (503). `retryAfterSeconds` becomes the Retry-After
 * header.
 */
export class ReadRefusedError extends ClientError {
  override readonly name = 'ReadRefusedError';
  constructor(
    readonly code: 'RESPONSE_TOO_LARGE' | 'RATE_LIMITED' | 'SERVICE_UNAVAILABLE',
    message: string,
    readonly retryAfterSeconds?: number,
    /** More for `extensions` (the size and the limit of a response too large). */
    readonly details: Record<string, number> = {},
    options?: ErrorOptions,
  ) {
    super(message);
    if (options?.cause !== undefined) this.cause = options.cause;
  }

  get status(): number {
    return READ_REFUSED_STATUS[this.code];
  }

  /** The error's `extensions`. */
  get extensions(): Record<string, unknown> {
    return { code: this.code, ...this.details, ...(this.retryAfterSeconds ? { retryAfterSeconds: this.retryAfterSeconds } : {}) };
  }
}

const READ_REFUSED_STATUS: Record<ReadRefusedError['code'], number> = {
  RESPONSE_TOO_LARGE: 400,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
};

/**
 * Several arguments of one command refused at once (validate.ts, ArgumentChecks). Clients get one
 * BAD_USER_INPUT error per argument, each naming it (graphql/format-error.ts, splitArgumentErrors).
 */
export class InvalidArgumentsError extends ClientError {
  override readonly name = 'InvalidArgumentsError';
  readonly code = 'BAD_USER_INPUT' as const;
  constructor(readonly errors: readonly BadInputError[]) {
    super(errors.map((e) => e.message).join(' '), errors[0]?.field);
  }
}

export function toGraphQLError(err: ClientError): GraphQLError {
  return new GraphQLError(err.message, {
    extensions: { code: err.code, ...(err.field ? { field: err.field } : {}) },
  });
}

/**
 * The unique indexes and constraints of migration 001, by name, and the argument each protects.
 * Commands validate first; this is the backstop for races (two users taking one username at once)
 * and for rules only the database can check.
 */
const UNIQUE_FIELDS: Record<string, string> = {
  tb_user_username_key: 'username',
  tb_user_email_key: 'email',
};
const CHECK_FIELDS: Record<string, string> = {
  tb_user_email_format: 'email',
  tb_user_username_format: 'username',
  tb_user_full_name_length: 'fullName',
  tb_user_bio_length: 'bio',
  tb_post_title_length: 'title',
  tb_post_content_length: 'content',
  tb_comment_content_length: 'content',
};
/**
 * A create's references, inserted as `(SELECT id ... FOR SHARE)`: NULL, refused by NOT NULL, when
 * the referenced row does not exist (commands.ts, step 2). By table and column.
 */
const MISSING_REFERENCES: Record<string, { field: string; message: string }> = {
  'tb_post.author_id': { field: 'authorId', message: 'No user with that authorId.' },
  'tb_comment.post_id': { field: 'postId', message: 'No post with that postId.' },
  'tb_comment.author_id': { field: 'authorId', message: 'No user with that authorId.' },
};
const FOREIGN_KEY_FIELDS: Record<string, string> = {
  tb_post_author_id_fkey: 'authorId',
  tb_comment_post_id_fkey: 'postId',
  tb_comment_author_id_fkey: 'authorId',
};

/** A PostgreSQL error caused by the input, as a ClientError; undefined for anything else. */
export function clientErrorFromPg(err: unknown): ClientError | undefined {
  const code = pgErrorCode(err);
  const constraint = (err as { constraint?: string }).constraint ?? '';
  switch (code) {
    case CONSTRAINT_CODES.uniqueViolation: {
      const field = UNIQUE_FIELDS[constraint];
      return new ConflictError(field ? `That ${field} is already taken.` : 'That value is already taken.', field);
    }
    case CONSTRAINT_CODES.checkViolation: {
      const field = CHECK_FIELDS[constraint];
      return new BadInputError(field ? `Invalid ${field}.` : 'Invalid input.', field);
    }
    case CONSTRAINT_CODES.foreignKeyViolation: {
      const field = FOREIGN_KEY_FIELDS[constraint];
      return new NotFoundError(field ? `No entity with that ${field}.` : 'A referenced entity does not exist.', field);
    }
    case CONSTRAINT_CODES.notNullViolation: {
      const { table, column } = err as { table?: string; column?: string };
      const missing = MISSING_REFERENCES[`${table}.${column}`];
      return missing ? new NotFoundError(missing.message, missing.field) : new BadInputError('Invalid input.');
    }
    case CONSTRAINT_CODES.stringTooLong:
    case CONSTRAINT_CODES.invalidTextRepresentation:
    case '22021': // character_not_in_repertoire (a NUL byte in text)
      return new BadInputError('Invalid input.');
    default:
      return undefined;
  }
}

/**
 * The database is unreachable or restarting (a lost connection, a refused one, a server shutting
 * down or starting up): not the client's fault and not a bug of ours. Clients get
 * SERVICE_UNAVAILABLE with HTTP 503 and may retry. A command's transaction rolled back with its
 * connection, so it wrote nothing; the one exception, as with any database, is a connection lost
 * during the COMMIT itself, which the server may have completed. Looks through GraphQL's wrapping
 * (originalError) and `cause`.
 */
export const SERVICE_UNAVAILABLE = {
  code: 'SERVICE_UNAVAILABLE',
  status: 503,
  message: 'The database is unavailable. Try again shortly.',
} as const;

export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (isRetryablePgError(e)) return true;
    const next = (e as { originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
    e = next;
  }
  return false;
}
