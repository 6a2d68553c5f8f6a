import type http from 'node:http';
import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import { GraphQLError, Kind, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';

/**
 * Rate limiting of mutations per client (RATE_LIMIT_MUTATIONS_PER_MINUTE; 0 = off): an in-process
 * token bucket per client holding at most a minute's worth of mutations and refilled continuously
 * at that rate. Every root field of a mutation operation takes one token (a document with 50
 * aliased createPost costs 50); when the bucket lacks them, the whole operation is refused before
 * anything runs: RATE_LIMITED, HTTP 429, `Retry-After` (seconds until enough tokens are back).
 *
 * Reads are not limited: they are single indexed statements, bounded by MAX_QUERY_COST and
 * MAX_PAGE_SIZE, and the compiled read path never reaches this code (the limiter is an Apollo
 * Server plugin, and only mutations are counted), so it costs reads nothing.
 *
 * The buckets live in this process: with N API replicas a client may make up to N times the limit
 * (each replica counts its own). That is the usual trade-off of an in-process limiter; a shared
 * store (Redis, or the load balancer's own limiter) would be needed for a fleet-wide figure.
 */
export class MutationRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly perMs: number;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    /** Buckets kept before idle (full) ones are swept out. */
    private readonly maxClients = 10_000,
  ) {
    this.perMs = perMinute / 60_000;
  }

  get limit(): number {
    return this.perMinute;
  }

  /** Takes `cost` tokens; returns 0 when taken, else the seconds to wait (nothing is taken). */
  take(client: string, cost: number): number {
    const now = this.now();
    let bucket = this.buckets.get(client);
    if (!bucket) {
      if (this.buckets.size >= this.maxClients) this.sweep(now);
      bucket = { tokens: this.perMinute, at: now };
      this.buckets.set(client, bucket);
    } else {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.perMs);
      bucket.at = now;
    }
    if (cost <= bucket.tokens) {
      bucket.tokens -= cost;
      return 0;
    }
    // More than a minute's worth at once can never pass (the client must split it): say a minute.
    if (cost > this.perMinute) return 60;
    return Math.max(1, Math.ceil((cost - bucket.tokens) / this.perMs / 1000));
  }

  /** Drops the buckets that have refilled completely (they hold no information). */
  private sweep(now: number): void {
    for (const [client, b] of this.buckets) {
      if (b.tokens + (now - b.at) * this.perMs >= this.perMinute) this.buckets.delete(client);
    }
    // Everyone is active: forget the oldest rather than grow without bound.
    if (this.buckets.size >= this.maxClients) this.buckets.delete(this.buckets.keys().next().value!);
  }
}

/**
 * Who a request comes from: the authenticated subject when the request carries one (`sub:<id>`),
 * else the client's IP address (`ip:<addr>`). Behind reverse proxies (TRUST_PROXY = their number),
 * the address is taken from X-Forwarded-For, that many entries from the right: each trusted proxy
 * appends the address it received the request from, and entries further left were written by the
 * client and cannot be trusted. Without TRUST_PROXY the header is ignored (anyone can send it).
 */
export function clientKey(req: Pick<http.IncomingMessage, 'headers' | 'socket'>, trustProxy: number, subject?: string): string {
  if (subject) return `sub:${subject}`;
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (trustProxy <= 0) return `ip:${peer}`;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // [client, proxy1, ..., proxyN-1] + the peer (proxy N): the client is trustProxy hops back.
  const chain = [...hops, peer];
  return `ip:${chain[Math.max(0, chain.length - 1 - trustProxy)]}`;
}

/** Root fields of a mutation operation (fragments expanded): each is one write. */
export function mutationCost(op: OperationDefinitionNode, fragments: Record<string, { selectionSet: SelectionSetNode }>): number {
  const count = (set: SelectionSetNode, seen: Set<string>): number => {
    let n = 0;
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) n += sel.name.value === '__typename' ? 0 : 1;
      else if (sel.kind === Kind.INLINE_FRAGMENT) n += count(sel.selectionSet, seen);
      else if (!seen.has(sel.name.value) && fragments[sel.name.value]) {
        seen.add(sel.name.value);
        n += count(fragments[sel.name.value]!.selectionSet, seen);
        seen.delete(sel.name.value);
      }
    }
    return n;
  };
  return count(op.selectionSet, new Set());
}

export interface RateLimitOptions<C> {
  /**
   * The verified subject of the request, when it is authenticated (a JWT's `sub`); undefined for an
   * anonymous request, and a rejection is treated as anonymous (the resolver reports the bad
   * token). Never an unverified claim: anyone could then pick a fresh key per request.
   */
  subjectOf?: (context: C) => Promise<string | null | undefined>;
}

/**
 * Takes a mutation operation's tokens (`cost`, see mutationCost) for the request's client: the
 * error that refuses it (RATE_LIMITED, HTTP 429 and Retry-After in its `http` extension), or
 * undefined when it may run. The client is `sub:<subject>` when `subjectOf` gives one, else the
 * context's `clientKey` (`ip:<address>`, see clientKey()). Used by the Apollo plugin below and by
 * the direct mutation path (graphql/direct-mutations.ts), so both refuse alike.
 */
export async function takeMutationTokens<C extends { clientKey?: string }>(
  limiter: MutationRateLimiter,
  cost: number,
  contextValue: C,
  options: RateLimitOptions<C> = {},
): Promise<GraphQLError | undefined> {
  if (cost === 0) return undefined;
  const subject = options.subjectOf ? await options.subjectOf(contextValue).catch(() => undefined) : undefined;
  const wait = limiter.take(subject ? `sub:${subject}` : (contextValue.clientKey ?? 'ip:unknown'), cost);
  if (wait === 0) return undefined;
  const message =
    cost > limiter.limit
      ? `Too many mutations: this operation makes ${cost} writes and the limit is ${limiter.limit} a minute; split it.`
      : `Too many mutations from this client; retry in ${wait} s.`;
  return new GraphQLError(message, {
    extensions: {
      code: 'RATE_LIMITED',
      retryAfterSeconds: wait,
      http: { status: 429, headers: new HeaderMap([['retry-after', String(wait)]]) },
    },
  });
}

/** The Apollo Server plugin: refuses mutations of a client over its limit, before they run. */
export function rateLimitPlugin<C extends { clientKey?: string }>(
  limiter: MutationRateLimiter,
  options: RateLimitOptions<C> = {},
): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation(ctx) {
          const op = ctx.operation;
          if (!op || op.operation !== 'mutation') return;
          const refused = await takeMutationTokens(
            limiter,
            mutationCost(op, ctx.document ? fragmentsOf(ctx.document.definitions) : {}),
            ctx.contextValue,
            options,
          );
          if (refused) throw refused;
        },
      };
    },
  };
}

function fragmentsOf(definitions: readonly { kind: string }[]): Record<string, { selectionSet: SelectionSetNode }> {
  const out: Record<string, { selectionSet: SelectionSetNode }> = {};
  for (const d of definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) {
      const f = d as unknown as { name: { value: string }; selectionSet: SelectionSetNode };
      out[f.name.value] = f;
    }
  }
  return out;
}
