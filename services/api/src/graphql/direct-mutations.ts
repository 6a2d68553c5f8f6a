import type { ServiceMetrics } from '@blog/shared';
import { execute, getVariableValues, type ExecutionResult, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { isDatabaseUnavailable } from '../errors';
import { formatLikeApollo, splitArgumentErrors } from './format-error';
import { takeMutationTokens, type MutationRateLimiter, type RateLimitOptions } from '../limits/rate-limit';
import type { CompiledMutation } from '../reads/read-engine';
import { responseExtensions, type ApiContext } from './resolvers';

/**
 * Mutations executed by graphql-js straight from the GraphQL endpoint, without Express and Apollo
 * Server's request pipeline in between.
 *
 * Why: a mutation's own work is small (one transaction, sent in one round trip for INLINE creates),
 * and Express's routing and Apollo's pipeline (its plugins' hooks, request hashing, response
 * assembly) cost a tenth to a quarter of the API's CPU per CreatePost (docs/benchmarks.md, "The
 * API's own benchmark"). The document comes parsed and validated from the read engine's cache (the
 * same rules as Apollo's); the resolvers, the schema and the error formatting are Apollo's own, so
 * the answer is the one Apollo gives: the same body (errors first, then data), the same codes,
 * HTTP 429 with Retry-After when the rate limit refuses, 503 when the database is away,
 * `cache-control: no-store`.
 *
 * What stays with Apollo: a request whose variables do not coerce (its 400 error response), and
 * everything that is not a valid single mutation (parse and validation errors, batches, APQ).
 */
export interface DirectMutationOptions {
  /** Apollo's formatError (graphql/format-error.ts): the same codes and masking on both paths. */
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  /** RATE_LIMIT_MUTATIONS_PER_MINUTE: the same limiter Apollo's plugin takes from. */
  limiter?: MutationRateLimiter;
  rateLimit?: RateLimitOptions<ApiContext>;
  metrics?: ServiceMetrics;
}

export interface DirectResponse {
  status: number;
  headers: Record<string, string>;
  /** The JSON text, as Apollo writes it (with a final newline). */
  body: string;
}

export class DirectMutations {
  constructor(
    private readonly schema: GraphQLSchema,
    private readonly options: DirectMutationOptions,
  ) {}

  /** The response to a mutation request; undefined when Apollo is to answer it (see above). */
  async run(
    mutation: CompiledMutation,
    request: { operationName?: string | undefined; variables?: Record<string, unknown> | null | undefined },
    contextValue: ApiContext,
  ): Promise<DirectResponse | undefined> {
    const started = process.hrtime.bigint();
    const definitions = mutation.operation.variableDefinitions;
    if (definitions?.length && getVariableValues(this.schema, definitions, request.variables ?? {}, { maxErrors: 1 }).errors)
      return undefined;
    let result: ExecutionResult;
    const refused = this.options.limiter
      ? await takeMutationTokens(this.options.limiter, mutation.cost, contextValue, this.options.rateLimit)
      : undefined;
    if (refused) {
      result = { errors: [refused] };
    } else {
      result = await execute({
        schema: this.schema,
        document: mutation.document,
        operationName: request.operationName ?? null,
        variableValues: request.variables ?? null,
        contextValue,
      });
    }
    this.options.metrics?.graphqlDuration.observe(
      { operation_type: 'mutation', path: 'direct' },
      Number(process.hrtime.bigint() - started) / 1e9,
    );
    const headers: Record<string, string> = { 'cache-control': 'no-store' };
    let status = 'data' in result ? 200 : 400;
    for (const error of result.errors ?? []) {
      const http = error.extensions?.http as { status?: number; headers?: Map<string, string> } | undefined;
      if (http?.status) status = http.status;
      for (const [name, value] of http?.headers ?? []) headers[name] = value;
    }
    if (result.errors?.some((e) => isDatabaseUnavailable(e))) status = 503;
    const errors = result.errors && splitArgumentErrors(result.errors).map((e) => formatLikeApollo(e, this.options.formatError));
    return { status, headers, body: `${JSON.stringify({ errors, data: result.data, extensions: responseExtensions(contextValue) })}\n` };
  }
}
