import { getNamedType, GraphQLError, type ASTVisitor, type ValidationContext } from 'graphql';
import { ruleExtensions } from './rule-code';

/**
 * Introspection off (production default, GRAPHQL_INTROSPECTION=false): a validation rule refusing
 * `__schema` and `__type` anywhere, with code INTROSPECTION_DISABLED. It is one of the rules both
 * read paths validate with, so the compiled fast path and Apollo Server refuse the same documents.
 * `__typename` stays allowed (clients use it for caching; it reveals nothing).
 */
export function noIntrospectionRule(context: ValidationContext): ASTVisitor {
  return {
    Field(node) {
      const type = context.getType();
      const name = node.name.value;
      if (name !== '__schema' && name !== '__type') return;
      // Only the real meta-fields (context.getType() resolves them on the query root).
      if (type && getNamedType(type).name !== '__Schema' && getNamedType(type).name !== '__Type') return;
      context.reportError(
        new GraphQLError(`Introspection is disabled on this server (GRAPHQL_INTROSPECTION=false); the operation asks for ${name}.`, {
          nodes: [node],
          extensions: ruleExtensions('INTROSPECTION_DISABLED'),
        }),
      );
    },
  };
}
