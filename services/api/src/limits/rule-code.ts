import type { GraphQLFormattedError } from 'graphql';

/**
 * Apollo Server rewrites `extensions.code` of every validation error to GRAPHQL_VALIDATION_FAILED
 * (it keeps the other extensions). Our validation rules put their own code under this key as well,
 * and formatError (graphql/format-error.ts) restores it, so a client gets QUERY_TOO_COMPLEX or
 * INTROSPECTION_DISABLED whichever path validated the document.
 */
export const RULE_CODE = 'ruleCode';

export function ruleExtensions(code: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { code, [RULE_CODE]: code, ...extra };
}

/** The error with its rule's code restored (and the marker removed); undefined when not ours. */
export function restoreRuleCode(formatted: GraphQLFormattedError): GraphQLFormattedError | undefined {
  const code = formatted.extensions?.[RULE_CODE];
  if (typeof code !== 'string') return undefined;
  const { [RULE_CODE]: _marker, ...rest } = formatted.extensions!;
  return { ...formatted, extensions: { ...rest, code } };
}
