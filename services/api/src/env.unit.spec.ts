/**
 * @jest-environment-options {"database": false}
 */
import { ConfigError } from '@blog/shared';
import { loadConfig } from './env';

const URL = 'postgres://u@h:5432/db';

test('defaults: port 8000, QUEUED, 30 s deferral, pages of 20 up to 100, depth 15, 1 MiB bodies', () => {
  expect(loadConfig({ DATABASE_URL: URL })).toMatchObject({
    port: 8000,
    host: '0.0.0.0',
    databaseUrl: URL,
    defaultSyncMode: 'QUEUED',
    deferSeconds: 30,
    defaultPageSize: 20,
    maxPageSize: 100,
    maxQueryDepth: 15,
    maxBodyBytes: 1_048_576,
  });
});

test('values are read and sync modes are case-insensitive', () => {
  const c = loadConfig({ DATABASE_URL: URL, PORT: '9000', DEFAULT_SYNC_MODE: 'inline', DEFER_SECONDS: '5', MAX_PAGE_SIZE: '50' });
  expect(c).toMatchObject({ port: 9000, defaultSyncMode: 'INLINE', deferSeconds: 5, maxPageSize: 50 });
});

test('every bad variable is reported at once, by name, with the value given', () => {
  let error: unknown;
  try {
    loadConfig({ PORT: 'eighty', DEFAULT_SYNC_MODE: 'SOMETIMES', MAX_BODY_BYTES: '10' });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as Error).message;
  expect(message).toContain('DATABASE_URL: is required');
  expect(message).toContain('PORT: must be a number (got "eighty")');
  expect(message).toContain('DEFAULT_SYNC_MODE: must be one of INLINE, QUEUED, DEFERRED (got "SOMETIMES")');
  expect(message).toContain('MAX_BODY_BYTES: must be at least 1024 (got "10")');
});

test('a default page size above the maximum is refused', () => {
  expect(() => loadConfig({ DATABASE_URL: URL, DEFAULT_PAGE_SIZE: '200', MAX_PAGE_SIZE: '100' })).toThrow(
    /DEFAULT_PAGE_SIZE: must not exceed MAX_PAGE_SIZE/,
  );
});

test('DATABASE_URL must be a postgres URL', () => {
  expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL: must be a postgres/);
});

describe('authentication and operator token variables', () => {
  const SECRET = 'x'.repeat(32);
  const PEM = '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----';

  test('AUTH_MODE defaults to none; no operator token', () => {
    const c = loadConfig({ DATABASE_URL: URL });
    expect(c.auth).toEqual({ mode: 'none' });
    expect(c.operatorToken).toBeUndefined();
  });

  test('AUTH_MODE=jwt without a key source is refused, naming the variables', () => {
    expect(() => loadConfig({ DATABASE_URL: URL, AUTH_MODE: 'jwt' })).toThrow(
      /AUTH_MODE: jwt needs a key: set one of JWT_SECRET, JWT_PUBLIC_KEY, JWT_JWKS_URL/,
    );
  });

  test('AUTH_MODE=jwt with two key sources is refused', () => {
    expect(() => loadConfig({ DATABASE_URL: URL, AUTH_MODE: 'jwt', JWT_SECRET: SECRET, JWT_JWKS_URL: 'https://idp.test/jwks' })).toThrow(
      /AUTH_MODE: jwt takes one key source, but JWT_SECRET and JWT_JWKS_URL are all set/,
    );
  });

  test('HS256: the secret, issuer, audience and role claim are read (AUTH_MODE is case-insensitive)', () => {
    const c = loadConfig({
      DATABASE_URL: URL,
      AUTH_MODE: 'JWT',
      JWT_SECRET: SECRET,
      JWT_ISSUER: 'https://idp.test',
      JWT_AUDIENCE: 'blog',
      JWT_ROLE_CLAIM: 'roles',
    });
    expect(c.auth).toEqual({
      mode: 'jwt',
      key: { kind: 'secret', secret: SECRET },
      issuer: 'https://idp.test',
      audience: 'blog',
      roleClaim: 'roles',
      maxAgeSeconds: 86_400,
    });
  });

  test('RS256: a PEM public key (escaped newlines are unescaped) or a JWKS URL', () => {
    const pem = loadConfig({ DATABASE_URL: URL, AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: PEM.replace(/\n/g, '\\n') });
    expect(pem.auth).toEqual({ mode: 'jwt', key: { kind: 'publicKey', pem: PEM }, roleClaim: 'role', maxAgeSeconds: 86_400 });
    const jwks = loadConfig({ DATABASE_URL: URL, AUTH_MODE: 'jwt', JWT_JWKS_URL: 'https://idp.test/.well-known/jwks.json' });
    expect(jwks.auth).toEqual({
      mode: 'jwt',
      key: { kind: 'jwks', url: 'https://idp.test/.well-known/jwks.json' },
      roleClaim: 'role',
      maxAgeSeconds: 86_400,
    });
  });

  test('JWT_MAX_AGE_SECONDS: 86400 by default, 0 for no limit, never negative', () => {
    const jwt = { DATABASE_URL: URL, AUTH_MODE: 'jwt', JWT_SECRET: SECRET };
    expect(loadConfig({ ...jwt, JWT_MAX_AGE_SECONDS: '0' }).auth).toMatchObject({ maxAgeSeconds: 0 });
    expect(loadConfig({ ...jwt, JWT_MAX_AGE_SECONDS: '3600' }).auth).toMatchObject({ maxAgeSeconds: 3600 });
    expect(() => loadConfig({ ...jwt, JWT_MAX_AGE_SECONDS: '-1' })).toThrow(/JWT_MAX_AGE_SECONDS: must be at least 0/);
  });

  test('bad values are named', () => {
    let message = '';
    try {
      loadConfig({ DATABASE_URL: URL, AUTH_MODE: 'oauth', JWT_SECRET: 'short', JWT_JWKS_URL: 'ftp://x', OPERATOR_TOKEN: 'tiny' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('AUTH_MODE: must be one of none, jwt (got "oauth")');
    expect(message).toContain('JWT_SECRET: must be at least 32 characters');
    expect(message).toContain('JWT_JWKS_URL: must be an http:// or https:// URL (got "ftp://x")');
    expect(message).toContain('OPERATOR_TOKEN: must be at least 16 characters');
    expect(() => loadConfig({ DATABASE_URL: URL, AUTH_MODE: 'jwt', JWT_PUBLIC_KEY: 'not a pem' })).toThrow(
      /JWT_PUBLIC_KEY: must be a PEM public key/,
    );
  });

  test('OPERATOR_TOKEN is read; empty means unset', () => {
    expect(loadConfig({ DATABASE_URL: URL, OPERATOR_TOKEN: 'o'.repeat(20) }).operatorToken).toBe('o'.repeat(20));
    expect(loadConfig({ DATABASE_URL: URL, OPERATOR_TOKEN: '' }).operatorToken).toBeUndefined();
  });
});

describe('abuse limits', () => {
  test(
    'defaults: cost 25000, answers of 16 MiB, heavy reads two at a time, 600 mutations a minute, no trusted proxy, ' +
      'persisted operations off, development: introspection and IDE on',
    () => {
      expect(loadConfig({ DATABASE_URL: URL })).toMatchObject({
        maxQueryCost: 25_000,
        maxResponseBytes: 16 * 1024 * 1024,
        heavyReadCost: 1000,
        heavyReadsMax: 2,
        heavyReadsPerClient: 4,
        writeConnections: 2,
        preparedReadsMax: 200,
        queryCacheBytes: 32 * 1024 * 1024,
        rateLimitMutationsPerMinute: 600,
        trustProxy: 0,
        persistedOperations: 'off',
        introspection: true,
        ide: true,
      });
      expect(loadConfig({ DATABASE_URL: URL }).persistedOperationsFile).toBeUndefined();
    },
  );

  test('NODE_ENV=production turns introspection and the IDE off; GRAPHQL_INTROSPECTION / GRAPHQL_IDE override either way', () => {
    expect(loadConfig({ DATABASE_URL: URL, NODE_ENV: 'production' })).toMatchObject({ introspection: false, ide: false });
    expect(loadConfig({ DATABASE_URL: URL, NODE_ENV: 'production', GRAPHQL_INTROSPECTION: 'true' })).toMatchObject({
      introspection: true,
      ide: false,
    });
    expect(loadConfig({ DATABASE_URL: URL, NODE_ENV: 'production', GRAPHQL_IDE: 'yes', GRAPHQL_INTROSPECTION: '' })).toMatchObject({
      introspection: false,
      ide: true,
    });
    expect(loadConfig({ DATABASE_URL: URL, NODE_ENV: 'development', GRAPHQL_INTROSPECTION: 'false', GRAPHQL_IDE: '0' })).toMatchObject({
      introspection: false,
      ide: false,
    });
    expect(loadConfig({ DATABASE_URL: URL, NODE_ENV: 'test' })).toMatchObject({ introspection: true, ide: true });
  });

  test('TRUST_PROXY: true is one proxy, false none, or a count', () => {
    expect(loadConfig({ DATABASE_URL: URL, TRUST_PROXY: 'true' }).trustProxy).toBe(1);
    expect(loadConfig({ DATABASE_URL: URL, TRUST_PROXY: 'false' }).trustProxy).toBe(0);
    expect(loadConfig({ DATABASE_URL: URL, TRUST_PROXY: '2' }).trustProxy).toBe(2);
  });

  test('values are read; PERSISTED_OPERATIONS is case-insensitive', () => {
    expect(
      loadConfig({
        DATABASE_URL: URL,
        MAX_QUERY_COST: '2000',
        RATE_LIMIT_MUTATIONS_PER_MINUTE: '0',
        PERSISTED_OPERATIONS: 'ONLY',
        PERSISTED_OPERATIONS_FILE: '/etc/blog/ops.json',
      }),
    ).toMatchObject({
      maxQueryCost: 2000,
      rateLimitMutationsPerMinute: 0,
      persistedOperations: 'only',
      persistedOperationsFile: '/etc/blog/ops.json',
    });
  });

  test('bad values are refused by name', () => {
    let message = '';
    try {
      loadConfig({
        DATABASE_URL: URL,
        MAX_QUERY_COST: '0',
        RATE_LIMIT_MUTATIONS_PER_MINUTE: '-1',
        TRUST_PROXY: 'maybe',
        PERSISTED_OPERATIONS: 'sometimes',
        GRAPHQL_INTROSPECTION: 'perhaps',
        GRAPHQL_IDE: 'on',
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('MAX_QUERY_COST: must be at least 1 (got "0")');
    expect(message).toContain('RATE_LIMIT_MUTATIONS_PER_MINUTE: must be at least 0 (got "-1")');
    expect(message).toContain('TRUST_PROXY: must be true, false or a number of proxies (got "maybe")');
    expect(message).toContain('PERSISTED_OPERATIONS: must be one of off, allow, only (got "sometimes")');
    expect(message).toContain('GRAPHQL_INTROSPECTION: must be true or false (got "perhaps")');
    expect(message).toContain('GRAPHQL_IDE: must be true or false (got "on")');
  });

  test('PERSISTED_OPERATIONS allow or only needs PERSISTED_OPERATIONS_FILE', () => {
    expect(() => loadConfig({ DATABASE_URL: URL, PERSISTED_OPERATIONS: 'allow' })).toThrow(
      /PERSISTED_OPERATIONS_FILE: is required when PERSISTED_OPERATIONS is allow or only/,
    );
    expect(loadConfig({ DATABASE_URL: URL, PERSISTED_OPERATIONS: 'off' }).persistedOperations).toBe('off');
  });
});
