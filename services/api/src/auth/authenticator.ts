import { UUID_PATTERN, type Logger } from '@blog/shared';
import {
  createRemoteJWKSet,
  errors,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWTPayload,
  type JWTVerifyGetKey,
  type KeyObject,
} from 'jose';
import { MissingTokenError, UnauthenticatedError } from '../errors';
import type { AuthConfig } from './config';

/**
 * Who is writing. Commands authorize against it inside their transaction (commands.ts).
 *  - userId: the token's subject (a tb_user id); null when there is no token (AUTH_MODE=none).
 *  - admin: may do everything. With AUTH_MODE=none everybody is, which is what "none" means.
 */
export interface Actor {
  userId: string | null;
  admin: boolean;
}

/** AUTH_MODE=none: no token, every write allowed (the demo). */
export const ANYONE: Actor = Object.freeze({ userId: null, admin: true });

/** From the Authorization header of a request to the Actor; throws UnauthenticatedError. */
export type Authenticate = (authorization: string | undefined) => Promise<Actor>;

const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*) *$/i;

/**
 * Builds the authenticator of the configuration. Keys are imported here, so a bad JWT_PUBLIC_KEY
 * stops the start-up; a JWKS is fetched (and cached, refetched on an unknown `kid`) by jose.
 */
export async function createAuthenticator(config: AuthConfig, logger: Logger): Promise<Authenticate> {
  if (config.mode === 'none') return async () => ANYONE;
  let key: Uint8Array | KeyObject | CryptoKey | JWTVerifyGetKey;
  let algorithms: string[];
  if (config.key.kind === 'secret') {
    // Imported once: jose would import raw bytes again on every verification (about twice the cost).
    key = await crypto.subtle.importKey('raw', new TextEncoder().encode(config.key.secret), { name: 'HMAC', hash: 'SHA-256' }, false, [
      'verify',
    ]);
    algorithms = ['HS256'];
  } else if (config.key.kind === 'publicKey') {
    try {
      key = await importSPKI(config.key.pem, 'RS256');
    } catch (err) {
      throw new Error(`JWT_PUBLIC_KEY is not an RS256 public key: ${(err as Error).message}`, { cause: err });
    }
    algorithms = ['RS256'];
  } else {
    key = createRemoteJWKSet(new URL(config.key.url));
    algorithms = ['RS256'];
  }
  const options = {
    algorithms,
    // A token without an expiry would be valid forever.
    requiredClaims: ['exp'],
    ...(config.issuer ? { issuer: config.issuer } : {}),
    ...(config.audience ? { audience: config.audience } : {}),
  };
  const roleClaim = config.roleClaim;
  const maxAgeSeconds = config.maxAgeSeconds;

  return async (authorization) => {
    if (!authorization) throw new MissingTokenError('This mutation needs a token: send Authorization: Bearer <JWT>.');
    const match = BEARER.exec(authorization);
    if (!match) throw new UnauthenticatedError('Malformed Authorization header: expected "Bearer <JWT>".');
    let payload: JWTPayload;
    try {
      // jose's overloads differ by key kind; both verify the same way.
      ({ payload } = typeof key === 'function' ? await jwtVerify(match[1]!, key, options) : await jwtVerify(match[1]!, key, options));
    } catch (err) {
      throw tokenError(err, logger);
    }
    const tooLong = lifetimeProblem(payload, maxAgeSeconds);
    if (tooLong) throw new UnauthenticatedError(tooLong);
    if (typeof payload.sub !== 'string' || !UUID_PATTERN.test(payload.sub)) {
      throw new UnauthenticatedError("The token's subject (sub) must be a user id (a UUID).");
    }
    const role = payload[roleClaim];
    const admin = role === 'admin' || (Array.isArray(role) && role.includes('admin'));
    return { userId: payload.sub.toLowerCase(), admin };
  };
}

/** How far an issuer's clock may be ahead of ours for a token's iat. */
const IAT_CLOCK_SKEW_SECONDS = 60;

/**
 * JWT_MAX_AGE_SECONDS: a token may live at most that long, counted from its iat (exp - iat) or,
 * without iat, from now (exp - now); otherwise one stolen token with `exp: 1e20` is a key for ever.
 * jose's maxTokenAge does not do this: it bounds now - iat, and needs iat. An iat in the future
 * (beyond clock skew) is refused too, or it would shorten the measured lifetime at will. exp itself
 * is required (jose, requiredClaims).
 */
function lifetimeProblem(payload: JWTPayload, maxAgeSeconds: number, now = Date.now() / 1000): string | undefined {
  if (!maxAgeSeconds || typeof payload.exp !== 'number') return undefined;
  const { iat } = payload;
  if (typeof iat === 'number' && iat > now + IAT_CLOCK_SKEW_SECONDS) return "The token's iat (issued at) is in the future.";
  const lifetime = payload.exp - (typeof iat === 'number' ? iat : now);
  if (lifetime > maxAgeSeconds) {
    return (
      'The token is valid for longer than this server accepts ' +
      `(at most ${maxAgeSeconds} s from its iat, or from now without one; JWT_MAX_AGE_SECONDS).`
    );
  }
  return undefined;
}

/** jose's verification failures as UNAUTHENTICATED with a reason; anything else is our failure. */
function tokenError(err: unknown, logger: Logger): Error {
  if (err instanceof errors.JWTExpired) return new UnauthenticatedError('The token has expired.');
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'iss') return new UnauthenticatedError("The token's issuer is not accepted.");
    if (err.claim === 'aud') return new UnauthenticatedError("The token's audience is not accepted.");
    return new UnauthenticatedError(`The token's ${err.claim} claim is not valid (${err.reason}).`);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return new UnauthenticatedError("The token's signature does not verify.");
  if (err instanceof errors.JOSEAlgNotAllowed)
    return new UnauthenticatedError('The token is signed with an algorithm this server does not accept.');
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new UnauthenticatedError('No key of the JWKS matches the token.');
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) {
    // The key server's fault, not the client's: an internal error (logged), and the client may retry.
    logger.error({ err }, 'JWKS unavailable');
    return err as Error;
  }
  // Malformed tokens (JWSInvalid, JWTInvalid...) and every other verification failure.
  if (err instanceof errors.JOSEError) return new UnauthenticatedError('The token is not valid.');
  // Not about the token: the JWKS could not be fetched ("fetch failed"), or a bug. Ours, logged.
  logger.error({ err }, 'token verification failed');
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * The Actor of one request, verified at most once and only when a mutation asks for it: reads
 * never pay for token verification.
 */
export function lazyActor(authenticate: Authenticate, authorization: string | undefined): () => Promise<Actor> {
  let actor: Promise<Actor> | undefined;
  return () => (actor ??= authenticate(authorization));
}
