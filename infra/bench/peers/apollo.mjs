// The conventional GraphQL server the seed describes as the baseline: Apollo Server 5 with one
// resolver per field, each reading the command tables (tb_*) with its own SQL statement. For a
// list of posts with their authors and comments that is the "N+1" pattern: one statement for the
// list, then one per post for its author, its comment count and its comments, then one per
// comment for its author.
//
// With LOADER=dataloader the same resolvers go through per-request DataLoaders, which batch the
// keys one level of the query asks for into one statement (`= ANY($1)`), the usual fix.
//
//   PORT=... DATABASE_URL=... POOL_MAX=10 [LOADER=dataloader] node apollo.mjs
import { Buffer } from 'node:buffer';
import http from 'node:http';
import process from 'node:process';
import { URL } from 'node:url';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import DataLoader from 'dataloader';
import pg from 'pg';

const port = Number(process.env.PORT ?? 5679);
const useLoaders = process.env.LOADER === 'dataloader';
if (!process.env.DATABASE_URL) {
  process.stderr.write('apollo peer: DATABASE_URL is required\n');
  process.exit(2);
}
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.POOL_MAX ?? 10),
  application_name: useLoaders ? 'bench-apollo-dataloader' : 'bench-apollo',
});
pool.on('error', () => undefined);

// The same field names and shapes as our API's schema, so the same documents run unchanged.
const typeDefs = /* GraphQL */ `
  type User {
    id: ID!
    email: String!
    username: String!
    fullName: String!
    bio: String
    createdAt: String!
    postCount: Int!
    publishedPostCount: Int!
    commentCount: Int!
  }
  type Post {
    id: ID!
    title: String!
    content: String!
    published: Boolean!
    createdAt: String!
    author: User!
    commentCount: Int!
    comments: [Comment!]!
  }
  type Comment {
    id: ID!
    postId: ID!
    content: String!
    createdAt: String!
    author: User!
    post: Post!
  }
  type Query {
    posts(limit: Int = 20): [Post!]!
    post(id: ID!): Post
    user(id: ID!): User
  }
  type Mutation {
    createPost(title: String!, content: String!, authorId: ID!, published: Boolean = false): Post!
    createComment(postId: ID!, authorId: ID!, content: String!): Comment!
  }
`;

const USER = 'id, email, username, full_name, bio, created_at';
const POST = 'id, author_id, title, content, published, created_at';
const COMMENT = 'id, post_id, author_id, content, created_at';

const one = async (sql, values) => (await pool.query(sql, values)).rows[0] ?? null;
const many = async (sql, values) => (await pool.query(sql, values)).rows;

/** Per-field data access, one statement per call. */
const direct = {
  user: (id) => one(`SELECT ${USER} FROM tb_user WHERE id = $1`, [id]),
  post: (id) => one(`SELECT ${POST} FROM tb_post WHERE id = $1`, [id]),
  commentsOfPost: (postId) => many(`SELECT ${COMMENT} FROM tb_comment WHERE post_id = $1 ORDER BY created_at, id`, [postId]),
  commentCountOfPost: async (postId) => (await one('SELECT count(*)::int AS n FROM tb_comment WHERE post_id = $1', [postId])).n,
  postCountOfUser: async (userId) => (await one('SELECT count(*)::int AS n FROM tb_post WHERE author_id = $1', [userId])).n,
  publishedPostCountOfUser: async (userId) =>
    (await one('SELECT count(*)::int AS n FROM tb_post WHERE author_id = $1 AND published', [userId])).n,
  commentCountOfUser: async (userId) => (await one('SELECT count(*)::int AS n FROM tb_comment WHERE author_id = $1', [userId])).n,
};

/** Groups rows by a key, in the order DataLoader asked for the keys. */
const byKey = (keys, rows, key, empty) => {
  const map = new Map(keys.map((k) => [k, empty()]));
  for (const row of rows) {
    const v = map.get(row[key]);
    if (Array.isArray(v)) v.push(row);
    else map.set(row[key], row);
  }
  return keys.map((k) => map.get(k));
};
const countsBy = async (sql, keys) => {
  const rows = await many(sql, [keys]);
  const map = new Map(rows.map((r) => [r.k, r.n]));
  return keys.map((k) => map.get(k) ?? 0);
};

/** The same access through DataLoaders created for each request. */
function loaders() {
  const users = new DataLoader(async (ids) =>
    byKey(ids, await many(`SELECT ${USER} FROM tb_user WHERE id = ANY($1::uuid[])`, [ids]), 'id', () => null),
  );
  const posts = new DataLoader(async (ids) =>
    byKey(ids, await many(`SELECT ${POST} FROM tb_post WHERE id = ANY($1::uuid[])`, [ids]), 'id', () => null),
  );
  const comments = new DataLoader(async (postIds) =>
    byKey(
      postIds,
      await many(`SELECT ${COMMENT} FROM tb_comment WHERE post_id = ANY($1::uuid[]) ORDER BY created_at, id`, [postIds]),
      'post_id',
      () => [],
    ),
  );
  const commentCounts = new DataLoader((postIds) =>
    countsBy('SELECT post_id AS k, count(*)::int AS n FROM tb_comment WHERE post_id = ANY($1::uuid[]) GROUP BY post_id', postIds),
  );
  const postCounts = new DataLoader((userIds) =>
    countsBy('SELECT author_id AS k, count(*)::int AS n FROM tb_post WHERE author_id = ANY($1::uuid[]) GROUP BY author_id', userIds),
  );
  const publishedCounts = new DataLoader((userIds) =>
    countsBy(
      'SELECT author_id AS k, count(*)::int AS n FROM tb_post WHERE author_id = ANY($1::uuid[]) AND published GROUP BY author_id',
      userIds,
    ),
  );
  const userCommentCounts = new DataLoader((userIds) =>
    countsBy('SELECT author_id AS k, count(*)::int AS n FROM tb_comment WHERE author_id = ANY($1::uuid[]) GROUP BY author_id', userIds),
  );
  return {
    user: (id) => users.load(id),
    post: (id) => posts.load(id),
    commentsOfPost: (id) => comments.load(id),
    commentCountOfPost: (id) => commentCounts.load(id),
    postCountOfUser: (id) => postCounts.load(id),
    publishedPostCountOfUser: (id) => publishedCounts.load(id),
    commentCountOfUser: (id) => userCommentCounts.load(id),
  };
}

const iso = (d) => (d instanceof Date ? d.toISOString() : d);

const resolvers = {
  Query: {
    posts: (_, { limit }) => many(`SELECT ${POST} FROM tb_post ORDER BY created_at DESC, id DESC LIMIT $1`, [limit]),
    post: (_, { id }, { db }) => db.post(id),
    user: (_, { id }, { db }) => db.user(id),
  },
  Mutation: {
    createPost: (_, { title, content, authorId, published }) =>
      one(`INSERT INTO tb_post (author_id, title, content, published) VALUES ($1, $2, $3, $4) RETURNING ${POST}`, [
        authorId,
        title,
        content,
        published,
      ]),
    createComment: (_, { postId, authorId, content }) =>
      one(`INSERT INTO tb_comment (post_id, author_id, content) VALUES ($1, $2, $3) RETURNING ${COMMENT}`, [postId, authorId, content]),
  },
  User: {
    fullName: (u) => u.full_name,
    createdAt: (u) => iso(u.created_at),
    postCount: (u, _, { db }) => db.postCountOfUser(u.id),
    publishedPostCount: (u, _, { db }) => db.publishedPostCountOfUser(u.id),
    commentCount: (u, _, { db }) => db.commentCountOfUser(u.id),
  },
  Post: {
    createdAt: (p) => iso(p.created_at),
    author: (p, _, { db }) => db.user(p.author_id),
    commentCount: (p, _, { db }) => db.commentCountOfPost(p.id),
    comments: (p, _, { db }) => db.commentsOfPost(p.id),
  },
  Comment: {
    postId: (c) => c.post_id,
    createdAt: (c) => iso(c.created_at),
    author: (c, _, { db }) => db.user(c.author_id),
    post: (c, _, { db }) => db.post(c.post_id),
  },
};

const apollo = new ApolloServer({
  typeDefs,
  resolvers,
  introspection: false,
  includeStacktraceInErrorResponses: false,
  plugins: [ApolloServerPluginLandingPageDisabled()],
});
await apollo.start();

// A minimal Node HTTP integration (what @apollo/server's standalone server does, without CORS),
// plus GET /health for the harness.
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"errors":[{"message":"invalid JSON"}]}');
      return;
    }
    const headers = new HeaderMap();
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
    const url = new URL(req.url ?? '/', 'http://localhost');
    apollo
      .executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
        context: async () => ({ db: useLoaders ? loaders() : direct }),
      })
      .then(async (response) => {
        for (const [k, v] of response.headers) res.setHeader(k, v);
        res.statusCode = response.status ?? 200;
        if (response.body.kind === 'complete') {
          res.end(response.body.string);
          return;
        }
        for await (const chunk of response.body.asyncIterator) res.write(chunk);
        res.end();
      })
      .catch((err) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ message: String(err?.message ?? err) }] }));
      });
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () =>
  process.stdout.write(`apollo (${useLoaders ? 'dataloader' : 'resolver per field'}) listening on ${port}\n`),
);

const stop = () => {
  server.close();
  Promise.all([apollo.stop(), pool.end()]).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
