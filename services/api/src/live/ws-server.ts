import type http from 'node:http';
import type { Logger } from '@blog/shared';
import { GraphQLError, validate, type GraphQLSchema, type ValidationRule } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { lazyActor, type Actor, type Authenticate } from '../auth/authenticator';
import type { ApiContext } from '../graphql/resolvers';
import { clientKey } from '../limits/rate-limit';
import type { SubscriptionSources } from './subscriptions';

export interface WsOptions {
  server: http.Server;
  path: string;
  schema: GraphQLSchema;
  /** The validation rules of WebSocket operations (schema.ts, subscriptionRules). */
  rules: readonly ValidationRule[];
  sources: SubscriptionSources;
  /** The rest of a request's context (reads, commands). */
  context: () => Omit<ApiContext, 'actor' | 'clientKey' | 'subscriptions'>;
  authenticate: Authenticate;
  /** AUTH_MODE=jwt: a token given in the connection parameters must be valid. */
  checkTokens: boolean;
  trustProxy: number;
  maxConnectionsPerClient: number;
  maxSubscriptionsPerClient: number;
  /** False while the API waits for its database (migrations, projection tables). */
  open: () => boolean;
  logger: Logger;
}

/** Close codes of graphql-transport-ws and the ones we add (4400-4499 are the application's). */
const FORBIDDEN = 4403;
const TOO_MANY = 4429;
const UNAVAILABLE = 1013;

interface ConnectionState {
  client: string;
  actor: () => Promise<Actor>;
  subscriptions: number;
}

/**
 * GraphQL subscriptions over WebSocket at the GraphQL path, protocol graphql-transport-ws
 * (graphql-ws, on the HTTP server's upgrade). Authentication as over HTTP: reads need no token;
 * with AUTH_MODE=jwt a token given in the connection parameters (`{ "Authorization": "Bearer ..." }`)
 * must be valid, or the connection is closed (4403), and its subject is the client. A client holds
 * at most maxConnectionsPerClient connections and maxSubscriptionsPerClient subscriptions (closed
 * with 4429, or the subscription refused). `close` ends every connection (1001, going away) and
 * every subscription.
 */
export function startSubscriptions(o: WsOptions): { close: () => Promise<void> } {
  const wss = new WebSocketServer({ server: o.server, path: o.path });
  const connections = new Map<string, number>();
  const subscriptions = new Map<string, number>();
  const states = new WeakMap<object, ConnectionState>();
  const bump = (m: Map<string, number>, k: string, d: number) => {
    const n = (m.get(k) ?? 0) + d;
    if (n > 0) m.set(k, n);
    else m.delete(k);
    return n;
  };

  const disposable = useServer<Record<string, unknown>, { request: http.IncomingMessage }>(
    {
      schema: o.schema,
      // Time to send connection_init (graphql-ws's default, 3 s, is short for someone typing it in wscat).
      connectionInitWaitTimeout: 10_000,
      validate: (schema, document) => validate(schema, document, o.rules),
      onConnect: async (ctx) => {
        if (!o.open()) {
          ctx.extra.socket.close(UNAVAILABLE, 'The API is waiting for its database; try again shortly.');
          return false;
        }
        const raw = ctx.connectionParams?.Authorization ?? ctx.connectionParams?.authorization;
        const given = typeof raw === 'string' ? raw : undefined;
        let subject: string | undefined;
        if (given && o.checkTokens) {
          try {
            subject = (await o.authenticate(given)).userId ?? undefined;
          } catch (err) {
            ctx.extra.socket.close(FORBIDDEN, (err as Error).message.slice(0, 120));
            return false;
          }
        }
        const client = clientKey(ctx.extra.request, o.trustProxy, subject);
        if (bump(connections, client, 1) > o.maxConnectionsPerClient) {
          bump(connections, client, -1);
          ctx.extra.socket.close(TOO_MANY, `At most ${o.maxConnectionsPerClient} connections per client (MAX_WS_CONNECTIONS_PER_CLIENT).`);
          return false;
        }
        states.set(ctx, { client, actor: lazyActor(o.authenticate, given), subscriptions: 0 });
        return true;
      },
      onSubscribe: (ctx) => {
        const state = states.get(ctx)!;
        if (bump(subscriptions, state.client, 1) > o.maxSubscriptionsPerClient) {
          bump(subscriptions, state.client, -1);
          return [
            new GraphQLError(`At most ${o.maxSubscriptionsPerClient} subscriptions per client (MAX_SUBSCRIPTIONS_PER_CLIENT).`, {
              extensions: { code: 'RATE_LIMITED' },
            }),
          ];
        }
        state.subscriptions += 1;
        return undefined;
      },
      onComplete: (ctx) => {
        const state = states.get(ctx);
        if (!state || !state.subscriptions) return;
        state.subscriptions -= 1;
        bump(subscriptions, state.client, -1);
      },
      onClose: (ctx) => {
        const state = states.get(ctx);
        if (!state) return;
        bump(connections, state.client, -1);
        if (state.subscriptions) bump(subscriptions, state.client, -state.subscriptions);
        state.subscriptions = 0;
      },
      context: (ctx) => {
        const state = states.get(ctx)!;
        return { ...o.context(), actor: state.actor, clientKey: state.client, subscriptions: o.sources } satisfies ApiContext;
      },
    },
    wss,
  );
  return {
    close: async () => {
      o.sources.close();
      await disposable.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
