import { MODEL } from '@blog/shared';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { specifiedRules, type GraphQLSchema, type ValidationRule } from 'graphql';
import { COMMAND_MODULES } from '../commands/modules';
import { costLimitRule } from '../limits/cost';
import { noIntrospectionRule } from '../limits/introspection';
import { depthLimitRule } from './depth-limit';
import { modelTypeDefs } from './model-sdl';
import { knownOperationTypeRule, onlySubscriptionsRule } from './operation-type';
import { resolvers } from './resolvers';
import { typeDefs } from './type-defs';

/** The executable schema (type definitions with their resolvers). */
export function createSchema(): GraphQLSchema {
  const commandTypeDefs = COMMAND_MODULES.flatMap((m) => (m.typeDefs ? [m.typeDefs] : []));
  return makeExecutableSchema({ typeDefs: [modelTypeDefs(MODEL), typeDefs, ...commandTypeDefs], resolvers });
}

/** What our validation rules enforce (from ApiConfig). */
export interface RuleLimits {
  maxQueryDepth: number;
  maxQueryCost: number;
  defaultPageSize: number;
  maxPageSize: number;
  /** false: __schema and __type are refused (INTROSPECTION_DISABLED). */
  introspection: boolean;
}

/**
 * Our validation rules on top of GraphQL's own. Both read paths validate with them: Apollo Server
 * (validationRules) and the compiled fast path (allRules, once per document), so a document one
 * path refuses, the other refuses too.
 */
export function extraRules(limits: RuleLimits): ValidationRule[] {
  return [
    knownOperationTypeRule,
    depthLimitRule(limits.maxQueryDepth),
    costLimitRule(limits),
    ...(limits.introspection ? [] : [noIntrospectionRule]),
  ];
}

export function allRules(limits: RuleLimits): ValidationRule[] {
  return [...specifiedRules, ...extraRules(limits)];
}

/** The rules of WebSocket operations: the same limits, and subscriptions only (see operation-type.ts). */
export function subscriptionRules(limits: RuleLimits): ValidationRule[] {
  return [...specifiedRules, ...extraRules(limits).filter((r) => r !== knownOperationTypeRule), onlySubscriptionsRule];
}
