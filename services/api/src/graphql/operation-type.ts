import { GraphQLError, type ASTVisitor, type ValidationContext } from 'graphql';

/**
 * Over HTTP, refuses subscriptions (served over WebSocket only) and operations of a type the schema
 * does not have: execution would otherwise fail with an error that reaches clients as a 500-class
 * INTERNAL_SERVER_ERROR; this makes it a 400 GRAPHQL_VALIDATION_FAILED naming the problem.
 */
export function knownOperationTypeRule(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(node) {
      const message =
        node.operation === 'subscription'
          ? 'Subscriptions are served over WebSocket at /graphql (protocol graphql-transport-ws), not over HTTP.'
          : context.getSchema().getRootType(node.operation)
            ? undefined
            : `This API has no ${node.operation} operations.`;
      if (!message) return;
      context.reportError(new GraphQLError(message, { nodes: [node], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }));
    },
  };
}

/** Over WebSocket: subscriptions only (queries and mutations go over HTTP, with their limits and tokens). */
export function onlySubscriptionsRule(context: ValidationContext): ASTVisitor {
  return {
    OperationDefinition(node) {
      if (node.operation === 'subscription') return;
      context.reportError(
        new GraphQLError(`Over WebSocket this API serves subscriptions only; send ${node.operation} operations as HTTP POST to /graphql.`, {
          nodes: [node],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
        }),
      );
    },
  };
}
