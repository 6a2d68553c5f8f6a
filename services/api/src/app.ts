import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import {
  createBoss,
  createMetrics,
  createPool,
  defaultMigrationsDir,
  httpServerTracing,
  Migrator,
  silentLogger,
  SyncEngine,
  SyncQueue,
  type Logger,
  type ServiceMetrics,
} from '@blog/shared';
import express from 'express';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import { createAuthenticator, lazyActor } from './auth/authenticator';
import { OPERATOR_PATHS, requireOperatorToken } from './auth/operator';
import { Commands } from './commands/commands';
import type { ApiConfig } from './env';
import { isDatabaseUnavailable } from './errors';
import { DirectMutations } from './graphql/direct-mutations';
import { argumentErrorsPlugin, formatError, unavailableStatusPlugin } from './graphql/format-error';
import { responseExtensions, type ApiContext } from './graphql/resolvers';
import { allRules, createSchema, extraRules, subscriptionRules } from './graphql/schema';
import { GRAPHQL_PATH, handleGraphqlPost, isGraphqlPath, isGraphqlPost, sendError } from './http/graphql-endpoint';
import { ideAssets, idePage, wantsIde } from './http/ide';
import { MAX_QUERY_TOKENS } from './limits/cost';
import { loadPersistedList, PersistedOperations } from './limits/persisted';
import { clientKey, MutationRateLimiter, rateLimitPlugin } from './limits/rate-limit';
import { operationsRouter } from './http/operations';
import { stampProcessTime } from './http/process-time';
import { SchemaGate } from './readiness';
import { ReadEngine } from './reads/read-engine';
import { ReadGate } from './reads/read-gate';
import { ResponseCache } from './reads/response-cache';
import { LiveFeed } from './live/live-feed';
import { SyncTokens } from './live/sync-tokens';
import { SubscriptionSources } from './live/subscriptions';
import { startSubscriptions } from './live/ws-server';

export interface AppOptions {
  logger?: Logger;
  /**
   * Called with the text of every statement any connection of the API's pool sends (tests count
   * statements per request with it).
   */
  onQuery?: (text: string) => void;
  /** Whether the process started OpenTelemetry tracing (main.ts passes instrument.ts's answer). */
  tracing?: boolean;
}

export interface ApiApp {
  server: http.Server;
  /** http://host:port of the listening server. */
  url: string;
  /** The primary (DATABASE_URL): writes, INLINE syncs, previews, /ready, /metrics. */
  pool: pg.Pool;
  /** Reads of tv_* (DATABASE_READ_URL); the same object as `pool` when no replica is configured. */
  readPool: pg.Pool;
  boss: PgBoss;
  /** The sync queue's producer side (the commands enqueue through it). */
  queue: SyncQueue;
  sync: SyncEngine;
  reads: ReadEngine;
  metrics: ServiceMetrics;
  /** This process's end of the change feed. */
  feed: LiveFeed;
  /** Stops accepting requests, lets in-flight ones finish, stops pg-boss and ends the pool. Idempotent. */
  close(): Promise<void>;
}

const REQUEST_START = Symbol('requestStart');
type TimedRequest = http.IncomingMessage & { [REQUEST_START]?: bigint; body?: unknown };

/** Builds the API and starts listening on config.host:config.port (port 0: any free port). */
export async function createApp(config: ApiConfig, options: AppOptions = {}): Promise<ApiApp> {
  const logger = options.logger ?? silentLogger;
  // The allow-list first: a bad file stops the start before any connection is opened.
  const persisted =
    config.persistedOperations === 'off' || !config.persistedOperationsFile
      ? undefined
      : new PersistedOperations(config.persistedOperations, loadPersistedList(config.persistedOperationsFile));
  const pool = createPool(config.databaseUrl, {
    applicationName: 'blog-api',
    max: config.poolMax,
    statementTimeoutMs: config.statementTimeoutMs,
    pipeline: config.pipeline,
    prepare: config.autoPrepare,
    ...(options.onQuery ? { onStatement: options.onQuery } : {}),
  });
  // A second pool only when reads go elsewhere (a replica). Read-your-writes is the primary's
  // property: a mutation's own answer, INLINE included, never comes from this pool.
  const readPool =
    config.databaseReadUrl === config.databaseUrl
      ? pool
      : createPool(config.databaseReadUrl, {
          applicationName: 'blog-api-read',
          max: config.poolMax,
          statementTimeoutMs: config.statementTimeoutMs,
          pipeline: config.pipeline,
          prepare: config.autoPrepare,
          ...(options.onQuery ? { onStatement: options.onQuery } : {}),
        });
  const boss = createBoss({ url: config.databaseUrl, applicationName: 'blog-api-queue', maintenance: false, max: 2 });
  boss.on('error', (err: unknown) => logger.error({ err }, 'pg-boss error'));
  const migrator = new Migrator(config.databaseUrl, { dir: defaultMigrationsDir });
  // pg-boss starts now if the database is migrated, else once it is (GraphQL answers 503 meanwhile).
  const schemaGate = new SchemaGate({ pool, boss, migrator, url: config.databaseUrl, logger });
  let apollo: ApolloServer<ApiContext> | undefined;
  let feed: LiveFeed | undefined;
  let subscriptions: { close: () => Promise<void> } | undefined;
  try {
    await schemaGate.start();
    const metrics = createMetrics({ service: 'api', db: () => pool });
    // The response cache serves what the change feed has not said changed; a replica's answers can
    // be older than the feed's news (its replication lag), so with a replica it stays off.
    const responses =
      config.responseCache && readPool === pool
        ? new ResponseCache({
            ...config.responseCache,
            onLookup: (hit) => metrics.live?.cacheLookups.inc({ result: hit ? 'hit' : 'miss' }),
          })
        : undefined;
    if (config.responseCache && !responses)
      logger.warn('RESPONSE_CACHE=on is ignored with DATABASE_READ_URL (a replica may lag behind the change feed)');
    if (responses && metrics.live) metrics.live.gauges.cacheBytes = () => responses.stats().bytes;
    feed = new LiveFeed(config.databaseUrl, {
      logger,
      ...(responses ? { cache: responses } : {}),
      ...(metrics.live ? { metrics: metrics.live } : {}),
    });
    await feed.start();
    const live = feed;
    const tokens = new SyncTokens(boss, pool, config.syncWaitTimeoutMs);
    live.onChange(() => tokens.wake());
    const sync = new SyncEngine(pool, {
      onCommitted: (changes) => live.committed(changes),
      logger,
      onRefresh: (r) => {
        const labels = { entity_type: r.entityType, mode: r.operation === 'full' ? 'full' : 'inline' };
        if (r.success) metrics.syncDuration.observe(labels, r.durationMs / 1000);
        else metrics.syncFailures.inc(labels);
      },
    });
    const queue = new SyncQueue(boss, pool, { deferSeconds: config.deferSeconds });
    const commands = new Commands(pool, sync, queue, {
      defaultSyncMode: config.defaultSyncMode,
      deferSeconds: config.deferSeconds,
      fanOutMaxIds: config.fanOutMaxIds,
      onCommitted: (changes) => live.committed(changes),
      defaultPageSize: config.defaultPageSize,
      maxPageSize: config.maxPageSize,
    });
    const authenticate = await createAuthenticator(config.auth, logger);
    const schema = createSchema();
    const reads = new ReadEngine(schema, readPool, {
      limits: config,
      rules: allRules(config),
      cacheSize: config.queryCacheSize,
      cacheBytes: config.queryCacheBytes,
      maxResponseBytes: config.maxResponseBytes,
      heavyReadCost: config.heavyReadCost,
      preparedPerConnection: config.preparedReadsMax,
      ...(responses ? { responses } : {}),
      ...(readPool !== pool ? { primary: pool } : {}),
      gate: new ReadGate({
        // On the primary, reads leave DB_WRITE_CONNECTIONS to the mutations; a replica is theirs alone.
        connections: readPool === pool ? config.poolMax - Math.min(config.writeConnections, config.poolMax - 1) : config.poolMax,
        heavy: config.heavyReadsMax,
        heavyPerClient: config.heavyReadsPerClient,
        waitMs: READ_WAIT_MS,
      }),
    });

    // One context per request, for Apollo's resolvers and the direct mutation path alike. The
    // token is verified only if a mutation (or the rate limiter) asks for the actor; never for reads.
    const contextFor = (req: http.IncomingMessage): ApiContext => ({
      reads,
      commands,
      readMemo: new Map(),
      actor: lazyActor(authenticate, req.headers.authorization),
      clientKey: clientKey(req, config.trustProxy),
    });
    // A signed-in user (AUTH_MODE=jwt, a valid token) is one client wherever they connect from;
    // anyone else is told apart by address (TRUST_PROXY). AUTH_MODE=none has no subject.
    const limiter = config.rateLimitMutationsPerMinute > 0 ? new MutationRateLimiter(config.rateLimitMutationsPerMinute) : undefined;
    const rateLimit = { subjectOf: async (ctx: ApiContext) => (await ctx.actor()).userId };
    const errorFormat = formatError(logger, { hideSuggestions: !config.introspection });
    const mutations = new DirectMutations(schema, { formatError: errorFormat, ...(limiter ? { limiter, rateLimit } : {}), metrics });

    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    const server = http.createServer({ keepAliveTimeout: 65_000 });

    apollo = new ApolloServer<ApiContext>({
      schema,
      validationRules: extraRules(config),
      parseOptions: { maxTokens: MAX_QUERY_TOKENS },
      // Introspection is refused by our own rule when GRAPHQL_INTROSPECTION is off (extraRules), on
      // both paths alike and with code INTROSPECTION_DISABLED; Apollo's switch would only add a second error.
      introspection: true,
      // PERSISTED_OPERATIONS allow/only: APQ lookups answer from the list and never register anything.
      ...(persisted ? { persistedQueries: { cache: persisted.apolloCache() } } : {}),
      includeStacktraceInErrorResponses: false,
      // main.ts handles SIGINT/SIGTERM and closes everything in order (subscriptions first).
      stopOnTerminationSignals: false,
      formatError: errorFormat,
      logger,
      plugins: [
        ApolloServerPluginDrainHttpServer({ httpServer: server }),
        ApolloServerPluginLandingPageDisabled(),
        operationMetricsPlugin(metrics),
        syncExtensionsPlugin(),
        ...(limiter ? [rateLimitPlugin<ApiContext>(limiter, rateLimit)] : []),
        ...(persisted ? [persisted.plugin<ApiContext>()] : []),
        unavailableStatusPlugin<ApiContext>(),
        argumentErrorsPlugin<ApiContext>(errorFormat),
      ],
    });
    await apollo.start();

    if (config.operatorToken) app.all(OPERATOR_PATHS, requireOperatorToken(config.operatorToken));
    app.use(
      operationsRouter({
        pool,
        readPool,
        databaseUrl: config.databaseUrl,
        databaseReadUrl: config.databaseReadUrl,
        migrator,
        started: () => schemaGate.open,
        ...(config.operatorToken ? { operatorToken: config.operatorToken } : {}),
        logger,
        metrics,
      }),
    );
    if (config.ide) app.use(ideAssets());
    app.get('/favicon.ico', (_req, res) => {
      res.status(204).end();
    });
    app.get(GRAPHQL_PATH, (req, res, next) => {
      if (!wantsIde(req)) return next();
      if (!config.ide) {
        res
          .status(404)
          .json({ errors: [{ message: 'The GraphQL IDE is not served here (GRAPHQL_IDE=false).', extensions: { code: 'NOT_FOUND' } }] });
        return;
      }
      res.type('html').send(idePage(GRAPHQL_PATH));
    });
    app.use(
      GRAPHQL_PATH,
      (req, _res, next) => {
        // Apollo's Express integration wants req.body; POST bodies were read before Express.
        if (!('body' in req)) (req as TimedRequest).body = undefined;
        next();
      },
      expressMiddleware(apollo, { context: async ({ req }) => contextFor(req) }),
    );
    app.use((_req, res) => {
      res.status(404).json({ errors: [{ message: 'Not found', extensions: { code: 'NOT_FOUND' } }] });
    });
    // Last resort: no stack traces, and a 4xx for what the client got wrong (e.g. a bad URL encoding).
    app.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      const status = (err as { status?: number; statusCode?: number }).status ?? (err as { statusCode?: number }).statusCode;
      if (status && status >= 400 && status < 500) {
        res.status(status).json({ errors: [{ message: (err as Error).message, extensions: { code: 'BAD_REQUEST' } }] });
        return;
      }
      if (isDatabaseUnavailable(err)) {
        logger.warn({ err }, 'request failed: database unavailable');
        res
          .status(503)
          .json({ errors: [{ message: 'The database is unavailable. Try again shortly.', extensions: { code: 'SERVICE_UNAVAILABLE' } }] });
        return;
      }
      logger.error({ err }, 'request failed');
      res.status(500).json({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
    });

    const endpoint = {
      reads,
      tokens,
      mutations: { engine: mutations, context: contextFor },
      clientOf: (req: http.IncomingMessage) => clientKey(req, config.trustProxy),
      maxBodyBytes: config.maxBodyBytes,
      logger,
      metrics,
      ...(persisted ? { persisted } : {}),
    };
    const tracing = httpServerTracing({ enabled: options.tracing ?? false, untraced: UNTRACED_PATHS, routes: METRIC_ROUTES });
    server.on('request', (req: TimedRequest, res: http.ServerResponse) => {
      const start = process.hrtime.bigint();
      req[REQUEST_START] = start;
      observeHttp(metrics, req, res, start);
      tracing.run(req, res, () => {
        if (!schemaGate.open && isGraphqlPath(req)) {
          req.resume();
          return sendError(res, start, 503, 'SERVICE_UNAVAILABLE', schemaGate.waitingReason);
        }
        if (isGraphqlPost(req)) {
          handleGraphqlPost(req, res, start, endpoint, (body) => {
            req.body = body;
            stampProcessTime(res, start);
            app(req, res);
          });
          return;
        }
        stampProcessTime(res, start);
        app(req, res);
      });
    });
    server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });

    // Subscriptions over WebSocket on the same server and path (graphql-ws), fed by the change feed.
    const sources = new SubscriptionSources(readPool, live);
    if (metrics.live) metrics.live.gauges.subscriptionsOpen = () => sources.open;
    subscriptions = startSubscriptions({
      server,
      path: GRAPHQL_PATH,
      schema,
      rules: subscriptionRules(config),
      sources,
      context: () => ({ reads, commands, readMemo: new Map() }),
      authenticate,
      checkTokens: config.auth.mode === 'jwt',
      trustProxy: config.trustProxy,
      maxConnectionsPerClient: config.maxWsConnectionsPerClient,
      maxSubscriptionsPerClient: config.maxSubscriptionsPerClient,
      open: () => schemaGate.open,
      logger,
    });
    const ws = subscriptions;

    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${address.port}`;

    let closing: Promise<void> | undefined;
    const started = apollo;
    const close = () => {
      closing ??= (async () => {
        // Subscriptions end first (their sockets would keep the server open), then Apollo's drain
        // plugin closes the server, waits for in-flight requests, then idles sockets.
        await ws.close();
        await started.stop();
        await schemaGate.close({ graceful: true, timeoutMs: config.shutdownTimeoutMs });
        await live.close();
        await Promise.all([pool.end(), readPool === pool ? undefined : readPool.end()]);
      })();
      return closing;
    };
    return { server, url, pool, readPool, boss, queue, sync, reads, metrics, feed: live, close };
  } catch (err) {
    await subscriptions?.close().catch(() => undefined);
    await apollo?.stop().catch(() => undefined);
    await feed?.close().catch(() => undefined);
    await schemaGate.close({ graceful: false, timeoutMs: 0 }).catch(() => undefined);
    await Promise.all([pool.end(), readPool === pool ? undefined : readPool.end()]);
    throw err;
  }
}

/** The longest a read waits for its turn (ReadGate) before SERVICE_UNAVAILABLE: a pool checkout's own limit. */
const READ_WAIT_MS = 10_000;

/** Routes named in the HTTP metrics; anything else counts as `other` (bounded label values). */
const METRIC_ROUTES = new Set([GRAPHQL_PATH, '/health', '/ready', '/metrics', '/metrics/prometheus']);

/** Probes and scrapes, not work: no span for them. */
const UNTRACED_PATHS = new Set(['/health', '/ready', '/metrics', '/metrics/prometheus', '/favicon.ico']);

function observeHttp(metrics: ServiceMetrics, req: http.IncomingMessage, res: http.ServerResponse, start: bigint): void {
  // Read now: Express rewrites req.url for mounted middleware (Apollo's sees "/").
  const path = (req.url ?? '').split('?')[0] ?? '';
  res.once('finish', () => {
    metrics.httpDuration.observe(
      { method: req.method ?? 'OTHER', route: METRIC_ROUTES.has(path) ? path : 'other', status_code: String(res.statusCode) },
      Number(process.hrtime.bigint() - start) / 1e9,
    );
  });
}

/** What the request's mutations say of their sync in the response (responseExtensions), on Apollo's path. */
function syncExtensionsPlugin(): ApolloServerPlugin<ApiContext> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, response }) {
          const extensions = responseExtensions(contextValue);
          if (extensions && response.body.kind === 'single') {
            response.body.singleResult.extensions = { ...response.body.singleResult.extensions, ...extensions };
          }
        },
      };
    },
  };
}

/** GraphQL operations that Apollo executes (the compiled read path and direct mutations observe their own). */
function operationMetricsPlugin(metrics: ServiceMetrics): ApolloServerPlugin<ApiContext> {
  return {
    async requestDidStart() {
      const started = process.hrtime.bigint();
      return {
        async willSendResponse(ctx) {
          metrics.graphqlDuration.observe(
            { operation_type: ctx.operation?.operation ?? 'unknown', path: 'apollo' },
            Number(process.hrtime.bigint() - started) / 1e9,
          );
        },
      };
    },
  };
}
