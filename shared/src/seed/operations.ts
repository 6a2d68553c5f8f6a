/**
 * The GraphQL documents of the product's original specification, verbatim: clients written against
 * it keep working, so these must run as written.
 * One copy for everything that sends them: the API's tests, the IDE's default query, the
 * persisted-operations list (`npm run persisted-operations -w @blog/api -- --seed`).
 */
export const SEED_OPERATIONS = {
  GetRecentPosts: `query GetRecentPosts {
  posts(limit: 5) {
    id
    title
    author {
      username
      fullName
    }
    commentCount
    comments {
      content
      author {
        username
      }
    }
  }
}`,
  GetUser: `query GetUser {
  user(id: "00000000-0000-0000-0000-000000000001") {
    username
    fullName
    publishedPostCount
    commentCount
  }
}`,
  CreatePost: `mutation CreatePost {
  createPost(
    title: "My New Post"
    content: "This is the content..."
    authorId: "00000000-0000-0000-0000-000000000001"
    published: true
  ) {
    id
    title
    author {
      username
    }
  }
}`,
  AddComment: `mutation AddComment {
  createComment(
    postId: "00000000-0000-0000-0001-000000000001"
    authorId: "00000000-0000-0000-0000-000000000002"
    content: "Great post!"
  ) {
    id
    content
    author {
      username
    }
  }
}`,
  SyncMetrics: `query SyncMetrics {
  syncMetrics(entityType: "post") {
    totalSyncs24h
    avgDurationMs
    successRate
    failures24h
  }
}`,
} as const;
