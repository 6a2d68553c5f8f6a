import { isReadTime, MODEL } from '@blog/shared';
import type { GraphQLResolveInfo, OperationDefinitionNode } from 'graphql';
import type { Actor } from '../auth/authenticator';
import { receiptOf, type Commands, type MutationRun } from '../commands/commands';
import { encodeSyncToken } from '../live/sync-tokens';
import { COMMAND_MODULES } from '../commands/modules';
import type { ReadEngine } from '../reads/read-engine';
import { ROOT_FIELDS } from '../reads/root-fields';
import { BadInputError, ForbiddenError, MissingTokenError } from '../errors';
import type { SubscriptionSources } from '../live/subscriptions';
import { encodeCursor, uuid } from '../validate';

/** What every resolver receives: one per HTTP request. */
export interface ApiContext {
  reads: ReadEngine;
  commands: Commands;
  /** The one read statement of each operation in this request (see ReadEngine.rootValue). */
  readMemo: Map<OperationDefinitionNode, Promise<Map<string, unknown>>>;
  /** Who is writing: verifies the request's token on first call (mutations only). */
  actor: () => Promise<Actor>;
  /** Who sent the request, for the mutation rate limit and the read gate (limits/rate-limit.ts, clientKey). */
  clientKey?: string;
  /** The sources of subscriptions (WebSocket connections only). */
  subscriptions?: SubscriptionSources;
  /** What the request's mutations did about their sync (commands.ts, SyncReceipt), added up. */
  synced?: { restQueued: boolean; jobs: string[] };
}

/**
 * The response's `extensions` for what the request's mutations did (undefined when none ran): the
 * sync token of their writes, and `sync.restQueued` when a fan-out was left to the workers.
 */
export function responseExtensions(ctx: ApiContext): Record<string, unknown> | undefined {
  if (!ctx.synced) return undefined;
  return { ...(ctx.synced.restQueued ? { sync: { restQueued: true } } : {}), syncToken: encodeSyncToken(ctx.synced.jobs) };
}

type Args = Record<string, unknown>;

function sources(ctx: ApiContext): SubscriptionSources {
  if (!ctx.subscriptions) throw new BadInputError('Subscriptions are served over WebSocket at /graphql (protocol graphql-transport-ws).');
  return ctx.subscriptions;
}

const read = (_parent: unknown, _args: Args, ctx: ApiContext, info: GraphQLResolveInfo) =>
  ctx.reads.rootValue(info, ctx.readMemo, ctx.clientKey);

/** Documents from tv_* / preview carry createdAt and id; read answers carry a cursor computed in SQL. */
const cursor = (doc: { cursor?: string; createdAt: string; id: string }) => doc.cursor ?? encodeCursor(doc.createdAt, doc.id);

const merged = (source: Record<string, unknown>, _args: Args, ctx: ApiContext, info: GraphQLResolveInfo) =>
  ctx.reads.mergedField(source, info, ctx.clientKey);

/** A mutation: authenticate first (UNAUTHENTICATED before anything else), then the command. */
const write =
  (run: MutationRun) =>
  async (_: unknown, a: Args, ctx: ApiContext): Promise<unknown> => {
    const answer = await run(ctx.commands, a, ctx.commands.syncMode(a.sync), await ctx.actor());
    const receipt = receiptOf(answer);
    if (receipt) {
      ctx.synced ??= { restQueued: false, jobs: [] };
      ctx.synced.restQueued ||= receipt.restQueued;
      ctx.synced.jobs.push(...receipt.jobs);
    }
    return answer;
  };

/**
 * `events`, admins only: the actor is verified for it as for a mutation. A request without a token
 * (AUTH_MODE=jwt) is FORBIDDEN, saying what to send; a token that does not verify is UNAUTHENTICATED.
 */
const events = async (_: unknown, a: Args, ctx: ApiContext): Promise<unknown> => {
  const actor = await ctx.actor().catch((err: unknown) => {
    if (err instanceof MissingTokenError)
      throw new ForbiddenError("Only an admin may read the event log (events): send an admin's token (Authorization: Bearer <JWT>).");
    throw err;
  });
  return ctx.commands.events(a, actor);
};

/**
 * Resolvers for the Apollo path. Reads: every Query field takes its part of the operation's one
 * statement. Mutations: the Commands (one transaction each). Nested fields use graphql-js's default
 * resolvers: a type's fields are the keys of its JSON document.
 */
export const resolvers = {
  // Every Query field (the entities' and syncMetrics) is answered by the read engine, but `events`
  // (admins only, from the primary), which the read engine leaves to Apollo.
  Query: { ...Object.fromEntries(Object.keys(ROOT_FIELDS).map((name) => [name, read])), events },
  Subscription: {
    postChanged: {
      subscribe: (_: unknown, a: Args, ctx: ApiContext) => sources(ctx).postChanged(uuid(a.id, 'id')),
      resolve: (doc: unknown) => doc,
    },
    commentAdded: {
      subscribe: (_: unknown, a: Args, ctx: ApiContext) => sources(ctx).commentAdded(uuid(a.postId, 'postId')),
      resolve: (doc: unknown) => doc,
    },
  },
  Mutation: Object.fromEntries(COMMAND_MODULES.flatMap((m) => Object.entries(m.mutations)).map(([name, run]) => [name, write(run)])),
  // The types of listed entities carry a cursor, and fields merged in at read time have resolvers
  // of their own (their values are not in the documents).
  ...Object.fromEntries(
    MODEL.map((e) => [
      e.graphqlType,
      {
        ...(e.read.list ? { cursor } : {}),
        ...Object.fromEntries(Object.entries(e.fields).flatMap(([name, field]) => (isReadTime(field) ? [[name, merged]] : []))),
      },
    ]),
  ),
};
