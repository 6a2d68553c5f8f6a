import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The operator token (OPERATOR_TOKEN) that protects /metrics on the API and the worker.
 *
 * True when the Authorization header is `Bearer <token>`. Constant time: both sides are hashed to
 * 32 bytes first, so neither the comparison nor its length check reveals how much of a guess was
 * right, nor the token's length.
 */
export function operatorTokenMatches(authorization: string | undefined, token: string): boolean {
  const given = /^Bearer +(\S+) *$/i.exec(authorization ?? '')?.[1] ?? '';
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b) && given.length > 0;
}

/** The JSON body of a 401 from an operator endpoint. */
export const OPERATOR_UNAUTHORIZED = JSON.stringify({
  errors: [{ message: 'This endpoint needs Authorization: Bearer <OPERATOR_TOKEN>.', extensions: { code: 'UNAUTHENTICATED' } }],
});
