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

export function isRetryablePgError(err: unknown): boolean {
  const code = pgErrorCode(err);
  if (code && (RETRYABLE_CODES.has(code) || RETRYABLE_NODE_CODES.has(code))) return true;
  const message = err instanceof Error ? err.message : '';
  // node-postgres reports a connection dropped mid-query without a code, and pg-pool a connection it
  // could not open in time (the server is starting, or every connection is stuck) the same way.
  return /Connection terminated|connection is closed|Client has encountered a connection error|not queryable|timeout exceeded when trying to connect/i.test(
    message,
  );
}
