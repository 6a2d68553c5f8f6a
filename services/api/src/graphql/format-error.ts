import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from '@blog/shared';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ClientError, InvalidArgumentsError, isDatabaseUnavailable, ReadRefusedError, SERVICE_UNAVAILABLE } from '../errors';
import { restoreRuleCode } from '../limits/rule-code';

/**
 * The edge where errors become GraphQL errors. ClientErrors carry their code (BAD_USER_INPUT,
 * NOT_FOUND, CONFLICT) and the field at fault; Apollo's own errors (parse, validation, variables)
 * keep theirs; anything else is our failure: logged with its stack, and the client gets a generic
 * message and INTERNAL_SERVER_ERROR, never a stack trace or a database message. A database that is
 * away (restarting, unreachable) is SERVICE_UNAVAILABLE, answered with HTTP 503 (see
 * unavailableStatusPlugin).
 */
export function formatError(logger: Logger, options: { hideSuggestions?: boolean } = {}) {
  const format = formatErrorOf(logger);
  if (!options.hideSuggestions) return format;
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => withoutSuggestions(format(formatted, error));
}

/**
 * With introspection off (GRAPHQL_INTROSPECTION=false), graphql-js's "Did you mean ...?" would still
 * reveal the schema's names one typo at a time: every error loses it. Here, at the edge, because
 * it covers every error of both paths: validation (Apollo's hideSchemaDetailsFromClientErrors does
 * only that) and variable coercion (Apollo runs graphql-js's execute without its hideSuggestions).
 * The compiled read path and direct mutations hand every invalid document and every variable that
 * does not coerce to Apollo, so their errors come through here too.
 */
const SUGGESTION = / ?Did you mean [^?]*\?$/;

function withoutSuggestions(formatted: GraphQLFormattedError): GraphQLFormattedError {
  return SUGGESTION.test(formatted.message) ? { ...formatted, message: formatted.message.replace(SUGGESTION, '') } : formatted;
}

function formatErrorOf(logger: Logger) {
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
    // Apollo Server's own refusals that carry an HTTP 4xx status but no code (e.g. an APQ hash that
    // is not the sha256 of the query sent with it): the client's mistake, told as such, not logged.
    if (isClientRefusal(error)) return { ...formatted, extensions: { ...formatted.extensions, code: 'BAD_REQUEST' } };
    logger.error({ err: original }, 'request failed');
    return reshaped(formatted, 'Internal server error', { code: 'INTERNAL_SERVER_ERROR' });
  };
}

function isClientRefusal(error: unknown): boolean {
  if (!(error instanceof GraphQLError) || error.extensions.code !== undefined || error.originalError) return false;
  const status = (error.extensions.http as { status?: unknown } | undefined)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
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

/** Apollo's own step before formatError: the error's JSON, code INTERNAL_SERVER_ERROR when it has none, no `http`. */
export function formatLikeApollo(
  error: GraphQLError,
  format: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError,
): GraphQLFormattedError {
  const { http: _http, ...extensions } = error.extensions ?? {};
  return format({ ...error.toJSON(), extensions: { ...extensions, code: extensions.code ?? 'INTERNAL_SERVER_ERROR' } }, error);
}

/**
 * One GraphQL error per refused argument where a command refused several (InvalidArgumentsError),
 * each at the field's place in the response and with the argument's own message and name.
 */
export function splitArgumentErrors(errors: readonly GraphQLError[]): GraphQLError[] {
  return errors.flatMap((error) => {
    const original = unwrapResolverError(error);
    if (!(original instanceof InvalidArgumentsError)) return [error];
    return original.errors.map(
      (each) =>
        new GraphQLError(each.message, {
          nodes: error.nodes ?? null,
          source: error.source ?? null,
          positions: error.positions ?? null,
          path: error.path ?? null,
          originalError: each,
        }),
    );
  });
}

/**
 * The same for Apollo Server's responses: it formats one error per resolver error, so the plugin
 * replaces each formatted InvalidArgumentsError by its arguments' errors, formatted alike.
 */
export function argumentErrorsPlugin<T extends BaseContext>(
  format: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError,
): ApolloServerPlugin<T> {
  const several = (error: GraphQLError) => unwrapResolverError(error) instanceof InvalidArgumentsError;
  return {
    async requestDidStart() {
      return {
        async willSendResponse(ctx) {
          const body = ctx.response.body;
          const raw = ctx.errors;
          if (body.kind !== 'single' || !raw?.some(several)) return;
          const formatted = body.singleResult.errors;
          // Apollo formats its errors one for one, in order.
          if (!formatted || formatted.length !== raw.length) return;
          body.singleResult.errors = raw.flatMap((error, i) =>
            several(error) ? splitArgumentErrors([error]).map((each) => formatLikeApollo(each, format)) : [formatted[i]!],
          );
        },
      };
    },
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
