/**
 * The GraphQL schema (PRODUCT.md, "The GraphQL API"). Types mirror the tv_* documents: a field of a
 * type is the key of the same name in the entity's JSON document, so a read is a projection of
 * `tv_*.data` (see reads/compiler.ts). Embedded shapes have their own types (Author, PostComment,
 * PostSummary): they carry exactly what the documents embed, so every field can be answered from
 * the one row that embeds it.
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

  "The author of a post or comment, as embedded in it."
  type Author {
    id: ID!
    username: String!
    fullName: String!
  }

  "The post a comment belongs to, as embedded in the comment."
  type PostSummary {
    id: ID!
    title: String!
  }

  "A comment as embedded in its post (oldest first)."
  type PostComment {
    id: ID!
    content: String!
    createdAt: String!
    author: Author!
  }

  type User {
    id: ID!
    email: String!
    username: String!
    fullName: String!
    bio: String
    createdAt: String!
    updatedAt: String!
    postCount: Int!
    publishedPostCount: Int!
    commentCount: Int!
    "Opaque position of this user in the users list; pass it as \`after\` for the next page."
    cursor: String!
  }

  type Post {
    id: ID!
    title: String!
    content: String!
    published: Boolean!
    createdAt: String!
    updatedAt: String!
    author: Author!
    commentCount: Int!
    comments: [PostComment!]!
    "Opaque position of this post in a posts list; pass it as \`after\` for the next page."
    cursor: String!
  }

  type Comment {
    id: ID!
    postId: ID!
    content: String!
    createdAt: String!
    updatedAt: String!
    author: Author!
    post: PostSummary!
    "Opaque position of this comment in its post's comments list; pass it as \`after\` for the next page."
    cursor: String!
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

  type Query {
    "Posts, newest first. limit defaults to the server's page size and may not exceed its maximum."
    posts(limit: Int, after: String, published: Boolean, authorId: ID): [Post!]!
    post(id: ID!): Post
    "Users, newest first."
    users(limit: Int, after: String): [User!]!
    user(id: ID!): User
    "Comments of a post, oldest first."
    comments(postId: ID!, limit: Int, after: String): [Comment!]!
    "entityType: user, post or comment."
    syncMetrics(entityType: String!): SyncMetrics!
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
