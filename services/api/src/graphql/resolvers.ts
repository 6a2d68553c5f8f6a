import type { GraphQLResolveInfo, OperationDefinitionNode } from 'graphql';
import type { Commands } from '../commands/commands';
import type { ReadEngine } from '../reads/read-engine';
import { encodeCursor } from '../validate';

/** What every resolver receives: one per HTTP request. */
export interface ApiContext {
  reads: ReadEngine;
  commands: Commands;
  /** The one read statement of each operation in this request (see ReadEngine.rootValue). */
  readMemo: Map<OperationDefinitionNode, Promise<Map<string, unknown>>>;
  /** Who sent the request, for the mutation rate limit (limits/rate-limit.ts, clientKey). */
  clientKey?: string;
}

type Args = Record<string, unknown>;

const read = (_parent: unknown, _args: Args, ctx: ApiContext, info: GraphQLResolveInfo) => ctx.reads.rootValue(info, ctx.readMemo);

/** Documents from tv_* / preview carry createdAt and id; read answers carry a cursor computed in SQL. */
const cursor = (doc: { cursor?: string; createdAt: string; id: string }) => doc.cursor ?? encodeCursor(doc.createdAt, doc.id);

/**
 * Resolvers for the Apollo path. Reads: every Query field takes its part of the operation's one
 * statement. Mutations: the Commands (one transaction each). Nested fields use graphql-js's default
 * resolvers: a type's fields are the keys of its JSON document.
 */
export const resolvers = {
  Query: {
    posts: read,
    post: read,
    users: read,
    user: read,
    comments: read,
    syncMetrics: read,
  },
  Mutation: {
    createUser: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.createUser(a, ctx.commands.syncMode(a.sync)),
    updateUser: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.updateUser(a, ctx.commands.syncMode(a.sync)),
    createPost: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.createPost(a, ctx.commands.syncMode(a.sync)),
    updatePost: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.updatePost(a, ctx.commands.syncMode(a.sync)),
    publishPost: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.publishPost(a, ctx.commands.syncMode(a.sync)),
    deletePost: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.deletePost(a, ctx.commands.syncMode(a.sync)),
    createComment: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.createComment(a, ctx.commands.syncMode(a.sync)),
    deleteComment: (_: unknown, a: Args, ctx: ApiContext) => ctx.commands.deleteComment(a, ctx.commands.syncMode(a.sync)),
  },
  User: { cursor },
  Post: { cursor },
  Comment: { cursor },
};
