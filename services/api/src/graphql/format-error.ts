import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from '@blog/shared';
import type { GraphQLFormattedError } from 'graphql';
import { ClientError, isDatabaseUnavailable, ReadRefusedError, SERVICE_UNAVAILABLE } from '../errors';
import { restoreRuleCode } from '../limits/rule-code';

/**
 * The edge where errors become GraphQL errors. ClientErrors carry their code (BAD_USER_INPUT,
 * NOT_FOUND, CONFLICT) and the field at fault; Apollo's own errors (parse, validation, variables)
 * keep theirs; anything else is our failure: logged with its stack, and the client gets a generic
 * message and INTERNAL_SERVER_ERROR, never a stack trace or a database message. A database that is
 * away (restarting, unreachable) is SERVICE_UNAVAILABLE, answered with HTTP 503 (see
 * unavailableStatusPlugin).
 */
export function formatError(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof ReadRefusedError) return reshaped(formatted, original.message, original.extensions);
    if (original instanceof ClientError) {
      return reshaped(formatted, original.message, { code: original.code, ...(original.field ? { field: original.field } : {}) });
    }
    if (isDatabaseUnavailable(original)) {
      logger.warn({ err: original }, 'database unavailable');
      return reshaped(formatted, SERVICE_UNAVAILABLE.message, { code: SERVICE_UNAVAILABLE.code });
    }
    // Our validation rules' codes (QUERY_TOO_COMPLEX, INTROSPECTION_DISABLED), which Apollo rewrote.
    const ours = restoreRuleCode(formatted);
    if (ours) return ours;
    const code = formatted.extensions?.code;
    if (code && code !== 'INTERNAL_SERVER_ERROR') return { ...formatted, extensions: { ...formatted.extensions } };
    logger.error({ err: original }, 'request failed');
    return reshaped(formatted, 'Internal server error', { code: 'INTERNAL_SERVER_ERROR' });
  };
}

/** Our message and extensions, with the error's locations and path kept. */
function reshaped(formatted: GraphQLFormattedError, message: string, extensions: Record<string, unknown>): GraphQLFormattedError {
  return {
    message,
    ...(formatted.locations ? { locations: formatted.locations } : {}),
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions,
  };
}

/**
 * The HTTP status of a response whose errors say the request cannot be served now (Apollo would
 * answer 200 with the error in the body): 503 for an unavailable database, and a refused read's own
 * status and Retry-After (ReadRefusedError). Load balancers and clients' retry logic look at them.
 */
export function unavailableStatusPlugin<T extends BaseContext>(): ApolloServerPlugin<T> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse(ctx) {
          if (ctx.errors?.some((e) => isDatabaseUnavailable(e))) ctx.response.http.status = SERVICE_UNAVAILABLE.status;
          const refused = ctx.errors?.map((e) => unwrapResolverError(e)).find((e) => e instanceof ReadRefusedError);
          if (refused) {
            ctx.response.http.status = refused.status;
            if (refused.retryAfterSeconds) ctx.response.http.headers.set('retry-after', String(refused.retryAfterSeconds));
          }
        },
      };
    },
  };
}
