import { makeExecutableSchema } from '@graphql-tools/schema';
import { specifiedRules, type GraphQLSchema, type ValidationRule } from 'graphql';
import { depthLimitRule } from './depth-limit';
import { resolvers } from './resolvers';
import { typeDefs } from './type-defs';

/** The executable schema (type definitions with their resolvers). */
export function createSchema(): GraphQLSchema {
  return makeExecutableSchema({ typeDefs, resolvers });
}

/** Our validation rules on top of GraphQL's own. */
export function extraRules(maxQueryDepth: number): ValidationRule[] {
  return [depthLimitRule(maxQueryDepth)];
}

export function allRules(maxQueryDepth: number): ValidationRule[] {
  return [...specifiedRules, ...extraRules(maxQueryDepth)];
}
