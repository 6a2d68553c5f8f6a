import { GraphQLError, type ASTVisitor, type ValidationContext } from 'graphql';

/**
 * Refuses operations of a type the schema does not have (this API has no subscriptions). GraphQL's
 * own rules let `subscription { ... }` through validation when the schema has no Subscription
 * type, and execution then failed with an error that reached clients as a 500-class
 * INTERNAL_SERVER_ERROR; this makes it a 400 GRAPHQL_VALIDATION_FAILED naming the problem.
 */
export function knownOperationTypeRule(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(node) {
      if (context.getSchema().getRootType(node.operation)) return;
      context.reportError(
        new GraphQLError(`This API has no ${node.operation} operations (only query and mutation).`, {
          nodes: [node],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        }),
      );
    },
  };
}
