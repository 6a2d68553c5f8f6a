import { intVar, optionalString, unsetIfEmpty } from '@blog/shared';
import { z } from 'zod';

/**
 * Configuration of authentication (AUTH_MODE, JWT_*) and of the operator token. Its keys are
 * merged into the API's schema (env.ts); checkAuthEnv is its cross-variable rule.
 */
export const authEnvSchema = z.object({
  // none: anyone may write (the demo; the seed's mutations run verbatim). jwt: mutations need a token.
  AUTH_MODE: z.preprocess(
    (v) => (typeof v === 'string' && v !== '' ? v.toLowerCase() : undefined),
    z.enum(['none', 'jwt'], { error: 'must be one of none, jwt' }).default('none'),
  ),
  // HS256 shared secret (at least 32 characters).
  JWT_SECRET: z.preprocess(
    unsetIfEmpty,
    z.string().min(32, { error: 'must be at least 32 characters (an HS256 key of 256 bits)' }).optional(),
  ),
  // RS256 public key, PEM (SPKI: -----BEGIN PUBLIC KEY-----).
  JWT_PUBLIC_KEY: optionalString(),
  // RS256 keys from a JWKS endpoint (https://issuer/.well-known/jwks.json).
  JWT_JWKS_URL: z.preprocess(
    unsetIfEmpty,
    z
      .string()
      .refine((v) => /^https?:\/\//.test(v), { error: 'must be an http:// or https:// URL' })
      .optional(),
  ),
  // When set, a token's iss / aud must match.
  JWT_ISSUER: optionalString(),
  JWT_AUDIENCE: optionalString(),
  // Longest lifetime of a token, in seconds (exp - iat, or exp - now without iat); 0: no limit.
  JWT_MAX_AGE_SECONDS: intVar(86_400, 0, 315_360_000),
  // The claim holding the role ("admin" may do everything); default "role".
  JWT_ROLE_CLAIM: z.preprocess(unsetIfEmpty, z.string().default('role')),
  // When set, GET /metrics and /metrics/prometheus need `Authorization: Bearer <OPERATOR_TOKEN>`.
  OPERATOR_TOKEN: z.preprocess(unsetIfEmpty, z.string().min(16, { error: 'must be at least 16 characters' }).optional()),
});

type AuthEnv = z.infer<typeof authEnvSchema>;

export type AuthConfig =
  | { mode: 'none' }
  | {
      mode: 'jwt';
      /** Exactly one key source. */
      key: { kind: 'secret'; secret: string } | { kind: 'publicKey'; pem: string } | { kind: 'jwks'; url: string };
      issuer?: string;
      audience?: string;
      roleClaim: string;
      /** Longest lifetime accepted (exp - iat, or exp - now without iat), in seconds; 0: no limit. */
      maxAgeSeconds: number;
    };

const KEY_SOURCES = ['JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_URL'] as const;

/** AUTH_MODE=jwt needs exactly one key source. */
export function checkAuthEnv(env: AuthEnv, ctx: z.RefinementCtx): void {
  if (env.AUTH_MODE !== 'jwt') return;
  const given = KEY_SOURCES.filter((k) => env[k] !== undefined);
  if (given.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['AUTH_MODE'],
      message: `jwt needs a key: set one of ${KEY_SOURCES.join(', ')}`,
    });
  } else if (given.length > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['AUTH_MODE'],
      message: `jwt takes one key source, but ${given.join(' and ')} are all set`,
    });
  }
  if (env.JWT_PUBLIC_KEY !== undefined && !env.JWT_PUBLIC_KEY.includes('-----BEGIN PUBLIC KEY-----')) {
    ctx.addIssue({ code: 'custom', path: ['JWT_PUBLIC_KEY'], message: 'must be a PEM public key (-----BEGIN PUBLIC KEY-----)' });
  }
}

export function authConfigFrom(env: AuthEnv): AuthConfig {
  if (env.AUTH_MODE === 'none') return { mode: 'none' };
  const key = env.JWT_SECRET
    ? ({ kind: 'secret', secret: env.JWT_SECRET } as const)
    : env.JWT_PUBLIC_KEY
      ? ({ kind: 'publicKey', pem: env.JWT_PUBLIC_KEY.replace(/\\n/g, '\n') } as const)
      : ({ kind: 'jwks', url: env.JWT_JWKS_URL! } as const);
  return {
    mode: 'jwt',
    key,
    ...(env.JWT_ISSUER ? { issuer: env.JWT_ISSUER } : {}),
    ...(env.JWT_AUDIENCE ? { audience: env.JWT_AUDIENCE } : {}),
    roleClaim: env.JWT_ROLE_CLAIM,
    maxAgeSeconds: env.JWT_MAX_AGE_SECONDS,
  };
}
