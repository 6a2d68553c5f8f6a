/**
 * PostgreSQL SQLSTATE codes this project reacts to, grouped by what the caller should do.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** The input broke a rule of the schema: report it to the client as bad input or a conflict. */
export const CONSTRAINT_CODES = {
  uniqueViolation: '23505', // a username or email that is taken
  foreignKeyViolation: '23503', // an author or post id that does not exist
  checkViolation: '23514', // an empty title, a malformed email
  notNullViolation: '23502',
  stringTooLong: '22001',
  invalidTextRepresentation: '22P02', // e.g. a malformed uuid reaching SQL
} as const;

/**
 * in_failed_sql_transaction: a statement sent (pipelined) behind one that failed in the same
 * transaction. Never the cause: the earlier statement's error is.
 */
export const IN_FAILED_TRANSACTION = '25P02';

/** query_canceled: the statement timeout (or a cancel request) stopped the statement. */
export const QUERY_CANCELED = '57014';

/** Transient: the same statement may succeed when tried again. */
export const RETRYABLE_CODES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available
  '57P01', // admin_shutdown (server restarting)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (server starting up)
  '08000', // connection_exception
  '08003', // connection_does_not_exist
  '08006', // connection_failure
  '08001', // sqlclient_unable_to_establish_sqlconnection
  '08004', // sqlserver_rejected_establishment_of_sqlconnection
  '53300', // too_many_connections
]);

/** Node-level errors that mean the connection, not the statement, failed. */
const RETRYABLE_NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN']);

export function pgErrorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** How node-postgres and pg-pool word a lost (or never opened) connection. */
const CONNECTION_LOST = new RegExp(
  [
    'Connection terminated',
    'connection is closed',
    'Client has encountered a connection error',
    'not queryable',
    'timeout exceeded when trying to connect',
  ].join('|'),
  'i',
);

export function isRetryablePgError(err: unknown): boolean {
  const code = pgErrorCode(err);
  if (code && (RETRYABLE_CODES.has(code) || RETRYABLE_NODE_CODES.has(code))) return true;
  const message = err instanceof Error ? err.message : '';
  // node-postgres reports a connection dropped mid-query without a code, and pg-pool a connection it
  // could not open in time (the server is starting, or every connection is stuck) the same way.
  return CONNECTION_LOST.test(message);
}

/**
 * Why a connection to `url` failed, in words an operator can act on, or undefined when `err` is
 * not a failure to connect (or log in). From the SQLSTATE PostgreSQL sent, or the socket error
 * when it could not be reached. The URL's password never appears.
 */
export function describeConnectionError(err: unknown, url: string): string | undefined {
  let where = 'the database server';
  let user = '';
  let database = '';
  try {
    const u = new URL(url);
    where = `${u.hostname || 'localhost'}:${u.port || '5432'}`;
    user = decodeURIComponent(u.username);
    database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  } catch {
    // not a URL: the generic wording
  }
  const code = pgErrorCode(err) ?? pgErrorCode((err as { errors?: unknown[] } | null)?.errors?.[0]);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case '28P01': // invalid_password
      return `password authentication failed for user "${user}" at ${where}: check the user and password in the URL`;
    case '28000': // invalid_authorization_specification: no such role, or no pg_hba.conf entry
      return `the server at ${where} refused user "${user}" (${message}): check the user in the URL and the server's pg_hba.conf`;
    case '3D000': // invalid_catalog_name
      return `database "${database}" does not exist on ${where}: create it (npm start and the CLIs create it), or fix the URL`;
    case '57P03': // cannot_connect_now
      return `the database server at ${where} is starting up or shutting down`;
    case '53300': // too_many_connections
      return `the database server at ${where} has no connection slot left (too many connections)`;
    case 'ECONNREFUSED':
      return `cannot connect to ${where}: connection refused (is PostgreSQL running there, and is the URL's host and port right?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot connect to ${where}: the host name does not resolve`;
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot connect to ${where}: ${code} (no answer from the host; a firewall, or the wrong address?)`;
    default:
      if (/timeout exceeded when trying to connect|connection timeout/i.test(message)) {
        return `cannot connect to ${where}: no answer within the connection timeout`;
      }
      return undefined;
  }
}
