/**
 * The hand-written part of the GraphQL schema: sync modes, metrics, the event log and the mutations. The entities'
 * types and Query fields are derived from their declarations (model-sdl.ts).
 */
export const typeDefs = /* GraphQL */ `
  "When a mutation's read projections (tv_*) are refreshed."
  enum SyncMode {
    "Refreshed in the mutation's transaction, before it answers: every reader sees the write at once."
    INLINE
    "Enqueued (high priority) for the worker; the mutation still answers with the current entity."
    QUEUED
    "Enqueued at low priority, available to the worker after the server's deferral delay."
    DEFERRED
  }

  "Sync batches of one entity type over the last 24 hours (from sync_log)."
  type SyncMetrics {
    entityType: String!
    totalSyncs24h: Int!
    "Mean duration of a sync batch in ms; null when there was none."
    avgDurationMs: Float
    "Percentage of successful sync batches; null when there was none."
    successRate: Float
    failures24h: Int!
  }

  type DeleteResult {
    id: ID!
    "Comments deleted with a post (always empty for deleteComment)."
    deletedCommentIds: [ID!]!
  }

  "Served over WebSocket at /graphql (protocol graphql-transport-ws), never over HTTP."
  type Subscription {
    "The post as refreshed, each time its document changes (whichever process refreshed it); ends when the post is deleted."
    postChanged(id: ID!): Post!
    "Each comment added to the post from the moment of subscribing, once."
    commentAdded(postId: ID!): Comment!
  }

  "A command that committed, from the event log: what it did, to what, and who sent it."
  type Event {
    id: ID!
    "When the command's transaction started (ISO 8601, UTC)."
    at: String!
    "The mutation: createPost, tagPost..."
    command: String!
    "The type of the first of entityIds, the entity the command is about."
    entityType: String!
    "That entity, then the other rows the command wrote (a deleted post's comments...) and the post of a comment."
    entityIds: [ID!]!
    "The token's subject; null without a token (AUTH_MODE=none)."
    actorId: ID
    actorAdmin: Boolean!
    "The arguments as the command validated them (JSON text), without sync."
    args: String!
    "Pass it as events(after:) for the next page."
    cursor: String!
  }

  extend type Query {
    "entityType: one of the entity types the sync engine projects (as in sync_log)."
    syncMetrics(entityType: String!): SyncMetrics!
    "Admins only: the commands that wrote the entity (any id in their entityIds), newest first."
    events(entityId: ID!, limit: Int, after: String): [Event!]!
  }

  type Mutation {
    createUser(email: String!, username: String!, fullName: String!, bio: String, sync: SyncMode): User!
    "Changes the given fields only; bio: null clears the bio."
    updateUser(id: ID!, email: String, username: String, fullName: String, bio: String, sync: SyncMode): User!
    "authorId: with AUTH_MODE=jwt, the token's subject when omitted (only an admin may give another)."
    createPost(title: String!, content: String!, authorId: ID, published: Boolean = false, sync: SyncMode): Post!
    updatePost(id: ID!, title: String, content: String, published: Boolean, sync: SyncMode): Post!
    publishPost(id: ID!, sync: SyncMode): Post!
    "Deletes the post and its comments."
    deletePost(id: ID!, sync: SyncMode): DeleteResult!
    "authorId: with AUTH_MODE=jwt, the token's subject when omitted (only an admin may give another)."
    createComment(postId: ID!, authorId: ID, content: String!, sync: SyncMode): Comment!
    deleteComment(id: ID!, sync: SyncMode): DeleteResult!
  }
`;
