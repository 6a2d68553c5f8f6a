import { boolVar, enumVar, intVar, optionalPgUrl, optionalString, parseEnv, resolveUserPath, unsetIfEmpty } from '@blog/shared';
import { SYNC_MODES, type SyncMode } from '@blog/shared';
import { z } from 'zod';
import { authConfigFrom, authEnvSchema, checkAuthEnv, type AuthConfig } from './auth/config';
import { PERSISTED_MODES, type PersistedMode } from './limits/persisted';

/** A boolean that may be left unset (its default then depends on another variable). */
const optionalBool = () =>
  z.preprocess(
    unsetIfEmpty,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
      .optional()
      .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1' || v === 'yes')),
  );

/**
 * The API's configuration: every variable, its default and its bounds. Read and validated once,
 * at start-up (main.ts); the rest of the service receives an ApiConfig and never reads process.env.
 * Documented in services/api/README.md.
 */
export const apiEnvSchema = z
  .object({
    PORT: intVar(8000, 0, 65535),
    HOST: z.preprocess(unsetIfEmpty, z.string().min(1).default('0.0.0.0')),
    DATABASE_URL: z
      .string({ error: 'is required (a postgres:// URL; `npm start` passes the one it prepared)' })
      .refine((v) => /^postgres(ql)?:\/\//.test(v), { error: 'must be a postgres:// or postgresql:// URL' }),
    // Where reads of tv_* go (a streaming replica of DATABASE_URL); default: DATABASE_URL itself.
    // Writes, INLINE syncs, previews, pg-boss, /ready's migration check and /metrics use DATABASE_URL.
    DATABASE_READ_URL: optionalPgUrl(),
    DB_POOL_MAX: intVar(10, 1, 1000),
    // Connections of the pool that reads may not take (at most DB_POOL_MAX - 1): mutations never wait
    // behind reads. Not used when reads go to DATABASE_READ_URL (they have a pool of their own).
    DB_WRITE_CONNECTIONS: intVar(2, 0, 999),
    // Read statements one connection may hold prepared (about 35 KB of the backend's memory each); a
    // connection holding more is closed and replaced.
    DB_PREPARED_READS_MAX: intVar(200, 0, 100_000),
    // Prepare every parameterized statement once per connection (QueryHooks.prepare in shared/src/db/queries.ts).
    DB_AUTO_PREPARE: boolVar(true),
    // Send a transaction's statements without waiting for each answer where the code allows it
    // (node-postgres pipeline mode; see shared/src/db/pool.ts).
    DB_PIPELINE: boolVar(true),
    // A read is one indexed statement; anything slower than this is a bug or an overload, and is cut.
    STATEMENT_TIMEOUT_MS: intVar(10_000, 0, 3_600_000),
    DEFAULT_SYNC_MODE: enumVar(SYNC_MODES as unknown as readonly [SyncMode, ...SyncMode[]], 'QUEUED'),
    DEFER_SECONDS: intVar(30, 0, 86_400),
    SYNC_FANOUT_MAX_IDS: intVar(1000, 1, 100_000),
    DEFAULT_PAGE_SIZE: intVar(20, 1, 10_000),
    MAX_PAGE_SIZE: intVar(100, 1, 10_000),
    MAX_QUERY_DEPTH: intVar(15, 2, 100),
    MAX_BODY_BYTES: intVar(1_048_576, 1024, 104_857_600),
    // Distinct read documents kept compiled (least recently used ones are dropped first), and the
    // memory they may take.
    QUERY_CACHE_SIZE: intVar(1000, 0, 1_000_000),
    QUERY_CACHE_MB: intVar(32, 1, 4096),
    // The response cache (reads/response-cache.ts): answers of compiled reads kept while the change
    // feed says nothing they read changed; its memory; the longest an answer is served.
    RESPONSE_CACHE: boolVar(true),
    RESPONSE_CACHE_MB: intVar(64, 1, 16_384),
    RESPONSE_CACHE_MAX_AGE_S: intVar(60, 1, 86_400),
    // Subscriptions (WebSocket at /graphql): connections and subscriptions one client may hold open
    // (a client: the token's subject when it has a valid token, else its address; TRUST_PROXY).
    MAX_WS_CONNECTIONS_PER_CLIENT: intVar(16, 1, 100_000),
    MAX_SUBSCRIPTIONS_PER_CLIENT: intVar(100, 1, 1_000_000),
    // The longest a read with X-Sync-Token waits for its writes to be projected (live/sync-tokens.ts).
    SYNC_WAIT_TIMEOUT_MS: intVar(5000, 1, 600_000),
    // The largest answer to a read, in bytes of JSON; a larger one is RESPONSE_TOO_LARGE.
    MAX_RESPONSE_BYTES: intVar(16 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    // Reads that may be heavy (cost at least HEAVY_READ_COST) run at most HEAVY_READS_MAX at a time,
    // one per client at a time, HEAVY_READS_PER_CLIENT running or waiting per client.
    HEAVY_READ_COST: intVar(1000, 1, 10_000_000),
    HEAVY_READS_MAX: intVar(2, 1, 1000),
    HEAVY_READS_PER_CLIENT: intVar(4, 1, 1000),
    SHUTDOWN_TIMEOUT_MS: intVar(10_000, 100, 600_000),
    // Abuse limits (services/api/README.md, "Abuse limits").
    // The seed's GetRecentPosts costs 1,236 at limit 5 and 24,701 at limit 100 (limits/cost.ts: each
    // comment's content, up to 10,000 characters, counts 10).
    MAX_QUERY_COST: intVar(25_000, 1, 10_000_000),
    RATE_LIMIT_MUTATIONS_PER_MINUTE: intVar(600, 0, 1_000_000),
    // Reverse proxies in front of the API whose X-Forwarded-For entries are trusted: false/0 (none), true (1), or a count.
    TRUST_PROXY: z.preprocess(
      (v) => (v === '' || v === undefined ? undefined : v === 'true' ? '1' : v === 'false' ? '0' : v),
      z.coerce
        .number({ error: 'must be true, false or a number of proxies' })
        .int({ error: 'must be true, false or a number of proxies' })
        .min(0, { error: 'must be at least 0' })
        .max(10, { error: 'must be at most 10' })
        .default(0),
    ),
    PERSISTED_OPERATIONS: z.preprocess(
      (v) => (typeof v === 'string' && v !== '' ? v.toLowerCase() : undefined),
      z.enum(PERSISTED_MODES, { error: `must be one of ${PERSISTED_MODES.join(', ')}` }).default('off'),
    ),
    PERSISTED_OPERATIONS_FILE: optionalString(),
    // production: introspection and the IDE off unless GRAPHQL_INTROSPECTION / GRAPHQL_IDE say otherwise.
    NODE_ENV: z.preprocess(unsetIfEmpty, z.string().default('development')),
    GRAPHQL_INTROSPECTION: optionalBool(),
    GRAPHQL_IDE: optionalBool(),
    // AUTH_MODE, JWT_*, OPERATOR_TOKEN (auth/config.ts).
    ...authEnvSchema.shape,
  })
  .refine((env) => env.DEFAULT_PAGE_SIZE <= env.MAX_PAGE_SIZE, {
    path: ['DEFAULT_PAGE_SIZE'],
    error: 'must not exceed MAX_PAGE_SIZE',
  })
  .refine((env) => env.PERSISTED_OPERATIONS === 'off' || env.PERSISTED_OPERATIONS_FILE !== undefined, {
    path: ['PERSISTED_OPERATIONS_FILE'],
    error: 'is required when PERSISTED_OPERATIONS is allow or only (a JSON file: npm run persisted-operations -w @blog/api)',
  })
  .superRefine(checkAuthEnv);

export interface ApiConfig {
  port: number;
  host: string;
  databaseUrl: string;
  /** Reads of tv_* (both read paths); equal to databaseUrl when no replica is configured. */
  databaseReadUrl: string;
  poolMax: number;
  /** Connections of the primary's pool reads may not take (at most poolMax - 1 are). */
  writeConnections: number;
  preparedReadsMax: number;
  autoPrepare: boolean;
  pipeline: boolean;
  statementTimeoutMs: number;
  defaultSyncMode: SyncMode;
  deferSeconds: number;
  /** A write whose projections to refresh are more than this is synced by the workers, in chunks. */
  fanOutMaxIds: number;
  defaultPageSize: number;
  maxPageSize: number;
  maxQueryDepth: number;
  maxBodyBytes: number;
  queryCacheSize: number;
  queryCacheBytes: number;
  /** The response cache: its memory in bytes and the age past which an answer is not served; undefined when off. */
  responseCache: { maxBytes: number; maxAgeMs: number } | undefined;
  syncWaitTimeoutMs: number;
  maxWsConnectionsPerClient: number;
  maxSubscriptionsPerClient: number;
  maxResponseBytes: number;
  heavyReadCost: number;
  heavyReadsMax: number;
  heavyReadsPerClient: number;
  shutdownTimeoutMs: number;
  /** Who may write (AUTH_MODE, JWT_*). */
  auth: AuthConfig;
  /** Bearer token required by /metrics and /metrics/prometheus, when set. */
  operatorToken?: string;
  maxQueryCost: number;
  /** 0: no limit. */
  rateLimitMutationsPerMinute: number;
  /** Reverse proxies whose X-Forwarded-For entries are trusted (0: the header is ignored). */
  trustProxy: number;
  persistedOperations: PersistedMode;
  persistedOperationsFile?: string;
  introspection: boolean;
  ide: boolean;
}

/** Parses the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): ApiConfig {
  const e = parseEnv(apiEnvSchema, env);
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databaseReadUrl: e.DATABASE_READ_URL ?? e.DATABASE_URL,
    poolMax: e.DB_POOL_MAX,
    writeConnections: e.DB_WRITE_CONNECTIONS,
    preparedReadsMax: e.DB_PREPARED_READS_MAX,
    autoPrepare: e.DB_AUTO_PREPARE,
    pipeline: e.DB_PIPELINE,
    statementTimeoutMs: e.STATEMENT_TIMEOUT_MS,
    defaultSyncMode: e.DEFAULT_SYNC_MODE as SyncMode,
    deferSeconds: e.DEFER_SECONDS,
    fanOutMaxIds: e.SYNC_FANOUT_MAX_IDS,
    defaultPageSize: e.DEFAULT_PAGE_SIZE,
    maxPageSize: e.MAX_PAGE_SIZE,
    maxQueryDepth: e.MAX_QUERY_DEPTH,
    maxBodyBytes: e.MAX_BODY_BYTES,
    queryCacheSize: e.QUERY_CACHE_SIZE,
    queryCacheBytes: e.QUERY_CACHE_MB * 1024 * 1024,
    syncWaitTimeoutMs: e.SYNC_WAIT_TIMEOUT_MS,
    maxWsConnectionsPerClient: e.MAX_WS_CONNECTIONS_PER_CLIENT,
    maxSubscriptionsPerClient: e.MAX_SUBSCRIPTIONS_PER_CLIENT,
    responseCache: e.RESPONSE_CACHE
      ? { maxBytes: e.RESPONSE_CACHE_MB * 1024 * 1024, maxAgeMs: e.RESPONSE_CACHE_MAX_AGE_S * 1000 }
      : undefined,
    maxResponseBytes: e.MAX_RESPONSE_BYTES,
    heavyReadCost: e.HEAVY_READ_COST,
    heavyReadsMax: e.HEAVY_READS_MAX,
    heavyReadsPerClient: e.HEAVY_READS_PER_CLIENT,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    auth: authConfigFrom(e),
    ...(e.OPERATOR_TOKEN ? { operatorToken: e.OPERATOR_TOKEN } : {}),
    maxQueryCost: e.MAX_QUERY_COST,
    rateLimitMutationsPerMinute: e.RATE_LIMIT_MUTATIONS_PER_MINUTE,
    trustProxy: e.TRUST_PROXY,
    persistedOperations: e.PERSISTED_OPERATIONS,
    // A relative path: from where the user ran npm, or the working directory (resolveUserPath).
    ...(e.PERSISTED_OPERATIONS_FILE ? { persistedOperationsFile: resolveUserPath(e.PERSISTED_OPERATIONS_FILE, env) } : {}),
    introspection: e.GRAPHQL_INTROSPECTION ?? e.NODE_ENV !== 'production',
    ide: e.GRAPHQL_IDE ?? e.NODE_ENV !== 'production',
  };
}

/** A configuration for tests and benchmarks: defaults, with overrides. */
export function configFor(databaseUrl: string, overrides: Partial<ApiConfig> = {}): ApiConfig {
  return { ...loadConfig({ DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', NODE_ENV: 'development' }), ...overrides };
}
