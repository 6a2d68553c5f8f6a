import type http from 'node:http';
import { isRetryablePgError, type Logger, type ServiceMetrics } from '@blog/shared';
import { context, trace } from '@opentelemetry/api';
import { ReadRefusedError } from '../errors';
import type { DirectMutations } from '../graphql/direct-mutations';
import type { ApiContext } from '../graphql/resolvers';
import type { PersistedOperations } from '../limits/persisted';
import type { FastResult, ReadEngine } from '../reads/read-engine';
import { formatProcessTime, PROCESS_TIME_HEADER } from './process-time';
import { parseSyncTokens, SYNC_TOKEN_HEADER, type SyncTokens } from '../live/sync-tokens';

/**
 * POST /graphql before Express: reads the body (bounded), answers the read operations the
 * ReadEngine compiles straight from PostgreSQL's JSON text, runs valid mutations through
 * DirectMutations (graphql-js, Apollo's resolvers and error formatting), and hands everything else
 * (introspection, reads it cannot compile, errors) to Express and Apollo Server with the body
 * already parsed.
 */
export const GRAPHQL_PATH = '/graphql';

export interface GraphqlEndpointOptions {
  reads: ReadEngine;
  maxBodyBytes: number;
  logger: Logger;
  metrics?: ServiceMetrics;
  /** PERSISTED_OPERATIONS allow/only: hashes resolved and the list enforced before either path. */
  persisted?: PersistedOperations;
  /** Valid single mutations: executed here by graphql-js, without Express and Apollo (see DirectMutations). */
  mutations?: { engine: DirectMutations; context: (req: http.IncomingMessage) => ApiContext };
  /** Who sent a request (the read gate's client; limits/rate-limit.ts clientKey). */
  clientOf?: (req: http.IncomingMessage) => string;
  /** X-Sync-Token: reads wait for the writes named (live/sync-tokens.ts). */
  tokens?: SyncTokens;
}

/** Strict: a malformed byte sequence throws instead of becoming U+FFFD. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

type Next = (body: unknown) => void;

export function isGraphqlPath(req: http.IncomingMessage): boolean {
  if (!req.url) return false;
  return req.url === GRAPHQL_PATH || req.url.startsWith(`${GRAPHQL_PATH}?`);
}

export function isGraphqlPost(req: http.IncomingMessage): boolean {
  return req.method === 'POST' && isGraphqlPath(req);
}

export function handleGraphqlPost(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  startNs: bigint,
  options: GraphqlEndpointOptions,
  next: Next,
): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    req.resume();
    return sendError(res, startNs, 415, 'BAD_REQUEST', 'POST /graphql needs Content-Type: application/json.');
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > options.maxBodyBytes) {
    return tooLarge(req, res, startNs, options.maxBodyBytes);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  req.on('data', (chunk: Buffer) => {
    if (done) return;
    size += chunk.length;
    if (size > options.maxBodyBytes) {
      done = true;
      tooLarge(req, res, startNs, options.maxBodyBytes);
      return;
    }
    chunks.push(chunk);
  });
  req.on('error', () => {
    done = true;
  });
  const onEnd = () => {
    if (done) return;
    done = true;
    let text: string;
    try {
      text = UTF8.decode(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    } catch {
      // Invalid or overlong UTF-8 would otherwise become U+FFFD and be stored as such.
      return sendError(res, startNs, 400, 'BAD_REQUEST', 'The request body is not valid UTF-8.');
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return sendError(res, startNs, 400, 'BAD_REQUEST', 'The request body is not valid JSON.');
    }
    void answer(body, req, res, startNs, options, next);
  };
  // Node calls the request's listeners from the socket's context: carry the request's (its server
  // span, see httpServerTracing) into the rest of the work by hand, cheaper than binding the emitter.
  const requestContext = context.active();
  req.on('end', () => context.with(requestContext, onEnd));
}

async function answer(
  received: unknown,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  startNs: bigint,
  options: GraphqlEndpointOptions,
  next: Next,
): Promise<void> {
  let body = received;
  if (options.persisted) {
    const resolved = options.persisted.resolve(body);
    if (!('body' in resolved)) return sendError(res, startNs, resolved.status, resolved.code, resolved.message);
    body = resolved.body;
  }
  // A read that must include the writes of X-Sync-Token waits for them, then reads the primary
  // and not the response cache.
  const tokenHeader = req.headers[SYNC_TOKEN_HEADER];
  let consistent = false;
  let waitedMs: number | undefined;
  if (tokenHeader !== undefined && options.tokens) {
    const jobs = parseSyncTokens(Array.isArray(tokenHeader) ? tokenHeader.join(',') : tokenHeader);
    if (jobs instanceof Error) return sendError(res, startNs, 400, 'BAD_REQUEST', jobs.message);
    const waited = await options.tokens.wait(jobs);
    options.metrics?.live?.tokenWait.observe({ outcome: waited.kind }, waited.waitedMs / 1000);
    if (waited.kind === 'timeout') {
      return sendError(
        res,
        startNs,
        504,
        'SYNC_TIMEOUT',
        `The writes named by X-Sync-Token were not projected within ${Math.round(waited.waitedMs)} ms ` +
          '(SYNC_WAIT_TIMEOUT_MS); retry the read later.',
      );
    }
    if (waited.kind === 'failed') {
      return sendError(
        res,
        startNs,
        409,
        'SYNC_FAILED',
        `The sync of a write named by X-Sync-Token failed (job ${waited.job}, in the dead letter queue): ` +
          'it is not projected until an operator replays it.',
      );
    }
    consistent = true;
    waitedMs = waited.waitedMs;
  }
  const b = body as { query?: unknown; operationName?: unknown; variables?: unknown; extensions?: unknown } | null;
  const fast =
    b !== null &&
    typeof b === 'object' &&
    !Array.isArray(b) &&
    typeof b.query === 'string' &&
    (b.operationName === undefined || b.operationName === null || typeof b.operationName === 'string') &&
    (b.variables === undefined || b.variables === null || (typeof b.variables === 'object' && !Array.isArray(b.variables))) &&
    b.extensions === undefined;
  if (!fast) return next(body);
  const operationName = typeof b.operationName === 'string' ? b.operationName : undefined;
  const variables = b.variables as Record<string, unknown> | null | undefined;
  const plan = options.reads.plan({ query: b.query as string, operationName });
  const direct = options.mutations;
  if (direct && !plan.fast && plan.mutation) {
    let response;
    try {
      response = await direct.engine.run(plan.mutation, { operationName, variables }, direct.context(req));
    } catch (err) {
      options.logger.error({ err }, 'mutation failed');
      return sendError(res, startNs, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
    }
    if (!response) return next(body);
    return sendJson(req, res, startNs, response.status, response.body, response.headers);
  }
  // The compiled read path runs no graphql-js execution: what the GraphQL instrumentation's span
  // would say goes on the request's server span (httpServerTracing), with the read's one SQL
  // statement span under it. A span of its own would cover little more than the statement's, and be
  // a third span per traced read (docs/observability.md).
  const span = trace.getActiveSpan();
  const started = process.hrtime.bigint();
  let outcome: FastResult | { kind: 'error'; err: unknown };
  try {
    outcome = await options.reads.execute(plan, variables, options.clientOf?.(req), consistent ? { cache: false, primary: true } : {});
  } catch (err) {
    // A refused read is the client's (4xx): the span records failures of ours only.
    if (!(err instanceof ReadRefusedError)) span?.recordException(err as Error);
    outcome = { kind: 'error', err };
  }
  // Not a read this path compiles (introspection, a mutation when direct mutations are off...):
  // Apollo answers it, with the GraphQL instrumentation's spans.
  if (outcome.kind === 'fallback') return next(body);
  if (outcome.kind === 'ok') {
    if (span?.isRecording()) {
      span.setAttributes({
        'graphql.operation.type': 'query',
        'blog.graphql.path': 'compiled',
        'blog.response_cache': outcome.cached ? 'hit' : consistent ? 'bypassed' : 'miss',
        ...(waitedMs !== undefined ? { 'blog.sync_token.wait_ms': waitedMs } : {}),
        ...(operationName ? { 'graphql.operation.name': operationName } : {}),
      });
    }
    options.metrics?.graphqlDuration.observe(
      { operation_type: 'query', path: 'compiled' },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    return sendJson(req, res, startNs, 200, outcome.body);
  }
  if (outcome.err instanceof ReadRefusedError) {
    const refused = outcome.err;
    const text = JSON.stringify({ errors: [{ message: refused.message, extensions: refused.extensions }] });
    return sendJson(
      req,
      res,
      startNs,
      refused.status,
      text,
      refused.retryAfterSeconds ? { 'Retry-After': String(refused.retryAfterSeconds) } : {},
    );
  }
  if (isRetryablePgError(outcome.err)) {
    // The database is away (restarting, unreachable): 503 and a code clients can retry on.
    options.logger.warn({ err: outcome.err }, 'read failed: database unavailable');
    return sendError(res, startNs, 503, 'SERVICE_UNAVAILABLE', 'The database is unavailable. Try again shortly.');
  }
  options.logger.error({ err: outcome.err }, 'read failed');
  sendError(res, startNs, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
}

/** A GraphQL response: the media type the client accepts, its length and X-Process-Time. */
function sendJson(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  startNs: bigint,
  status: number,
  text: string | Buffer,
  headers: Record<string, string> = {},
): void {
  const accept = req.headers.accept ?? '';
  res.writeHead(status, {
    ...headers,
    'Content-Type': accept.includes('application/graphql-response+json')
      ? 'application/graphql-response+json; charset=utf-8'
      : 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    [PROCESS_TIME_HEADER]: formatProcessTime(startNs),
  });
  res.end(text);
}

/**
 * A lingering close, after a 413 sent while the client may still be sending its body. Closing the
 * socket at once would make the kernel answer what still arrives with a reset, which can destroy the
 * 413 before the client reads it (EPIPE / ECONNRESET instead of the answer). So: the answer goes out,
 * then our side half-closes (FIN: the client sees the end of the answer), and what still arrives is
 * read and discarded until the body ends, the client closes, or LINGER_MS / LINGER_MAX_BYTES are
 * reached; only then is the socket closed.
 */
const LINGER_MS = 5_000;
const LINGER_MAX_BYTES = 32 * 1024 * 1024;

function tooLarge(req: http.IncomingMessage, res: http.ServerResponse, startNs: bigint, max: number): void {
  // The rest of the body is not kept: whatever arrives is discarded.
  req.resume();
  if (res.headersSent) return;
  const text = errorText('PAYLOAD_TOO_LARGE', `The request body exceeds ${max} bytes.`);
  res.writeHead(413, { ...errorHeaders(text, startNs), Connection: 'close' });
  // Written but not ended: ending the response makes Node close the socket (Connection: close),
  // which is what has to wait until the client has stopped sending.
  res.write(text);
  let discarded = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    req.off('data', count);
    req.off('end', close);
    res.end(); // nothing left to write; Node now closes the socket
  };
  const count = (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > LINGER_MAX_BYTES) close();
  };
  res.once('close', () => clearTimeout(timer));
  // Half-close once the answer is out; reading goes on.
  req.socket.end(() => {
    if (req.complete) return close();
    timer = setTimeout(close, LINGER_MS);
    req.on('data', count);
    req.once('end', close);
  });
}

function errorText(code: string, message: string): string {
  return JSON.stringify({ errors: [{ message, extensions: { code } }] });
}

function errorHeaders(text: string, startNs: bigint): http.OutgoingHttpHeaders {
  return {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    [PROCESS_TIME_HEADER]: formatProcessTime(startNs),
  };
}

export function sendError(res: http.ServerResponse, startNs: bigint, status: number, code: string, message: string): void {
  if (res.headersSent) return;
  const text = errorText(code, message);
  res.writeHead(status, errorHeaders(text, startNs));
  res.end(text);
}
