import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from '@blog/shared';
import type { GraphQLFormattedError } from 'graphql';
import { ClientError } from '../errors';
import { restoreRuleCode } from '../limits/rule-code';

/**
 * The edge where errors become GraphQL errors. ClientErrors carry their code (BAD_USER_INPUT,
 * NOT_FOUND, CONFLICT) and the field at fault; Apollo's own errors (parse, validation, variables)
 * keep theirs; anything else is our failure: logged with its stack, and the client gets a generic
 * message and INTERNAL_SERVER_ERROR, never a stack trace or a database message.
 */
export function formatError(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    if (original instanceof ClientError) {
      return {
        message: original.message,
        ...(formatted.locations ? { locations: formatted.locations } : {}),
        ...(formatted.path ? { path: formatted.path } : {}),
        extensions: { code: original.code, ...(original.field ? { field: original.field } : {}) },
      };
    }
    // Our validation rules' codes (QUERY_TOO_COMPLEX, INTROSPECTION_DISABLED), which Apollo rewrote.
    const ours = restoreRuleCode(formatted);
    if (ours) return ours;
    const code = formatted.extensions?.code;
    if (code && code !== 'INTERNAL_SERVER_ERROR') return { ...formatted, extensions: { ...formatted.extensions } };
    logger.error({ err: original }, 'request failed');
    return {
      message: 'Internal server error',
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
