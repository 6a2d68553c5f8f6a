/**
 * The GraphQL documents the benchmark sends, and how each system's answer is reduced to one
 * canonical form so that answers can be compared with each other and with the truth computed from
 * tb_* (see reference.ts).
 *
 * Our API, the two Apollo peers and the bare server get the example operations verbatim
 * (SEED_OPERATIONS, shared/src/seed: GetRecentPosts, GetUser, CreatePost, AddComment); GetRecentPosts is
 * also sent with limit 50, GetUser names a user of the generated dataset instead of the seed's
 * alice, and the write documents take their ids as variables (so that each request writes for a
 * random user and post while the document text stays the same, as a real client's would).
 * PostGraphile has its own schema, generated from the tables: it gets the equivalent documents in
 * its names, aliased to the same response keys.
 */
import { SEED_OPERATIONS } from '@blog/shared';

export type SystemId = 'ours' | 'ours-cached' | 'constant' | 'bare' | 'postgraphile' | 'apollo-dataloader' | 'apollo';
export type ReadDocId = 'recent5' | 'recent50' | 'user';
export type WriteDocId = 'writes-inline' | 'writes-queued' | 'writes';
export type DocId = ReadDocId | WriteDocId;

export interface GraphqlRequest {
  query: string;
  operationName: string;
  variables?: Record<string, unknown>;
}

export interface CanonicalPost {
  id: string;
  title: string;
  author: { username: string; fullName: string };
  commentCount: number;
  comments: { content: string; author: { username: string } }[];
}

export interface CanonicalUser {
  username: string;
  fullName: string;
  publishedPostCount: number;
  commentCount: number;
}

export const READ_DOCS: readonly ReadDocId[] = ['recent5', 'recent50', 'user'];

export const DOC_LABELS: Record<DocId, string> = {
  recent5: 'GetRecentPosts (limit 5)',
  recent50: 'GetRecentPosts (limit 50)',
  user: 'GetUser',
  'writes-inline': 'write mix, INLINE sync',
  'writes-queued': 'write mix, QUEUED sync',
  writes: 'write mix (tb_* only)',
};

/** The seed's GetRecentPosts (one copy, in @blog/shared), verbatim except for the limit. */
export function recentPostsDocument(limit: number): string {
  return replaceOnce(SEED_OPERATIONS.GetRecentPosts, 'posts(limit: 5)', `posts(limit: ${limit})`);
}

/** The seed's GetUser, verbatim except for the id (a user of the generated dataset). */
export function userDocument(userId: string): string {
  return replaceOnce(SEED_OPERATIONS.GetUser, 'user(id: "00000000-0000-0000-0000-000000000001")', `user(id: "${userId}")`);
}

function replaceOnce(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the seed document no longer contains ${from}`);
  return text.replace(from, to);
}

function postgraphileRecentPosts(limit: number): string {
  return `query GetRecentPosts {
  posts: allTbPostsList(first: ${limit}, orderBy: [CREATED_AT_DESC, ROW_ID_DESC]) {
    id: rowId
    title
    author: tbUserByAuthorId {
      username
      fullName
    }
    commentCount: tbCommentsByPostId {
      totalCount
    }
    comments: tbCommentsByPostIdList(orderBy: [CREATED_AT_ASC, ROW_ID_ASC]) {
      content
      author: tbUserByAuthorId {
        username
      }
    }
  }
}`;
}

function postgraphileUser(userId: string): string {
  return `query GetUser {
  user: tbUserByRowId(rowId: "${userId}") {
    username
    fullName
    publishedPostCount: tbPostsByAuthorId(condition: { published: true }) {
      totalCount
    }
    commentCount: tbCommentsByAuthorId {
      totalCount
    }
  }
}`;
}

/** The read request a system gets for a document. */
export function readRequest(system: SystemId, doc: ReadDocId, userId: string): GraphqlRequest {
  const pg = system === 'postgraphile';
  switch (doc) {
    case 'recent5':
    case 'recent50': {
      const limit = doc === 'recent5' ? 5 : 50;
      return { query: pg ? postgraphileRecentPosts(limit) : recentPostsDocument(limit), operationName: 'GetRecentPosts' };
    }
    case 'user':
      return { query: pg ? postgraphileUser(userId) : userDocument(userId), operationName: 'GetUser' };
  }
}

type Json = Record<string, unknown>;

const count = (v: unknown): number => (typeof v === 'object' && v !== null ? Number((v as Json).totalCount) : Number(v));

/**
 * Reduces a read answer's `data` to the canonical form (fields the document asked for, counts as
 * numbers). Extra fields are dropped. Throws when the shape is not the document's.
 */
export function canonicalRead(doc: ReadDocId, data: unknown): CanonicalPost[] | CanonicalUser | null {
  const d = data as Json;
  if (doc === 'user') {
    const u = d.user as Json | null;
    if (u === null) return null;
    return {
      username: String(u.username),
      fullName: String(u.fullName),
      publishedPostCount: count(u.publishedPostCount),
      commentCount: count(u.commentCount),
    };
  }
  const posts = d.posts;
  if (!Array.isArray(posts)) throw new Error('data.posts is not a list');
  return posts.map((p: Json) => {
    const author = p.author as Json;
    const comments = p.comments;
    if (!Array.isArray(comments)) throw new Error('posts[].comments is not a list');
    return {
      id: String(p.id),
      title: String(p.title),
      author: { username: String(author.username), fullName: String(author.fullName) },
      commentCount: count(p.commentCount),
      comments: comments.map((c: Json) => ({ content: String(c.content), author: { username: String((c.author as Json).username) } })),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Writes: CreatePost and AddComment, alternating. @@AUTHOR@@ and @@POST@@ are replaced by ids of
// the generated dataset, drawn at random for each request (by the load generator's script).
// ---------------------------------------------------------------------------------------------

export const AUTHOR_SLOT = '@@AUTHOR@@';
export const POST_SLOT = '@@POST@@';
export const NEW_POST_TITLE = 'My New Post';
export const NEW_COMMENT_CONTENT = 'Great post!';

const POSTGRAPHILE_POST_INPUT =
  `{ tbPost: { title: "${NEW_POST_TITLE}", content: "This is the content...", ` + 'authorId: $authorId, published: true } }';

export interface WriteRequests {
  createPost: GraphqlRequest;
  addComment: GraphqlRequest;
}

/** The write documents of a system; `sync` only for ours (the peers have no projections). */
export function writeRequests(system: SystemId, sync?: 'INLINE' | 'QUEUED'): WriteRequests {
  if (system === 'postgraphile') {
    return {
      createPost: {
        operationName: 'CreatePost',
        query: `mutation CreatePost($authorId: UUID!) {
  createPost: createTbPost(input: ${POSTGRAPHILE_POST_INPUT}) {
    post: tbPost {
      id: rowId
      title
      author: tbUserByAuthorId {
        username
      }
    }
  }
}`,
        variables: { authorId: AUTHOR_SLOT },
      },
      addComment: {
        operationName: 'AddComment',
        query: `mutation AddComment($postId: UUID!, $authorId: UUID!) {
  createComment: createTbComment(input: { tbComment: { postId: $postId, authorId: $authorId, content: "${NEW_COMMENT_CONTENT}" } }) {
    comment: tbComment {
      id: rowId
      content
      author: tbUserByAuthorId {
        username
      }
    }
  }
}`,
        variables: { postId: POST_SLOT, authorId: AUTHOR_SLOT },
      },
    };
  }
  const syncArg = sync ? `\n    sync: ${sync}` : '';
  return {
    createPost: {
      operationName: 'CreatePost',
      query: `mutation CreatePost($authorId: ID!) {
  createPost(
    title: "${NEW_POST_TITLE}"
    content: "This is the content..."
    authorId: $authorId
    published: true${syncArg}
  ) {
    id
    title
    author {
      username
    }
  }
}`,
      variables: { authorId: AUTHOR_SLOT },
    },
    addComment: {
      operationName: 'AddComment',
      query: `mutation AddComment($postId: ID!, $authorId: ID!) {
  createComment(
    postId: $postId
    authorId: $authorId
    content: "${NEW_COMMENT_CONTENT}"${syncArg}
  ) {
    id
    content
    author {
      username
    }
  }
}`,
      variables: { postId: POST_SLOT, authorId: AUTHOR_SLOT },
    },
  };
}

/** A write request with its slots filled. */
export function fillWrite(req: GraphqlRequest, ids: { authorId: string; postId?: string }): GraphqlRequest {
  const variables: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(req.variables ?? {})) {
    variables[k] = v === AUTHOR_SLOT ? ids.authorId : v === POST_SLOT ? ids.postId : v;
  }
  return { ...req, variables };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks a write answer: a new id, the title or content sent, the author asked for. Returns what
 * is wrong, or undefined.
 */
export function checkWrite(kind: 'createPost' | 'createComment', data: unknown, authorUsername: string): string | undefined {
  const d = data as Json | null;
  const root = d?.[kind] as Json | undefined;
  // PostGraphile nests the row in a payload object.
  const entity = (root?.post ?? root?.comment ?? root) as Json | undefined;
  if (!entity) return `no data.${kind}`;
  if (typeof entity.id !== 'string' || !UUID.test(entity.id)) return `${kind}.id is not a uuid: ${JSON.stringify(entity.id)}`;
  if (kind === 'createPost' && entity.title !== NEW_POST_TITLE) return `createPost.title is ${JSON.stringify(entity.title)}`;
  if (kind === 'createComment' && entity.content !== NEW_COMMENT_CONTENT)
    return `createComment.content is ${JSON.stringify(entity.content)}`;
  const username = (entity.author as Json | undefined)?.username;
  if (username !== authorUsername) return `${kind}.author.username is ${JSON.stringify(username)}, expected ${authorUsername}`;
  return undefined;
}

/** The first place two canonical values differ, as a path (for error messages). */
export function firstDifference(a: unknown, b: unknown, path = 'data'): string | undefined {
  if (a === b) return undefined;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    return `${path}: ${JSON.stringify(a)?.slice(0, 80)} instead of ${JSON.stringify(b)?.slice(0, 80)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: list/object mismatch`;
  if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length) return `${path}: ${a.length} items instead of ${b.length}`;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const diff = firstDifference((a as Json)[k], (b as Json)[k], Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`);
    if (diff) return diff;
  }
  return undefined;
}
