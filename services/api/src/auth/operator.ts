import { OPERATOR_UNAUTHORIZED, operatorTokenMatches } from '@blog/shared';
import type express from 'express';

/** Paths that need the operator token when OPERATOR_TOKEN is set (/health and /ready stay open). */
export const OPERATOR_PATHS = ['/metrics', '/metrics/prometheus'];

/** Express middleware: 401 with a JSON error unless `Authorization: Bearer <OPERATOR_TOKEN>`. */
export function requireOperatorToken(token: string): express.RequestHandler {
  return (req, res, next) => {
    if (operatorTokenMatches(req.headers.authorization, token)) return next();
    res.status(401).set('www-authenticate', 'Bearer').type('application/json').send(OPERATOR_UNAUTHORIZED);
  };
}
