import path from 'node:path';
import { SEED_OPERATIONS } from '@blog/shared';
import express from 'express';

/**
 * The GraphQL IDE (GraphiQL 3) at GET /graphql for browsers, served entirely from our own
 * node_modules: it works with no internet (Apollo's landing pages load from a CDN, so they are off).
 */
const dir = (pkg: string) => path.dirname(require.resolve(`${pkg}/package.json`));

const ASSETS: Record<string, string> = {
  'react.js': path.join(dir('react'), 'umd', 'react.production.min.js'),
  'react-dom.js': path.join(dir('react-dom'), 'umd', 'react-dom.production.min.js'),
  'graphiql.js': path.join(dir('graphiql'), 'graphiql.min.js'),
  'graphiql.css': path.join(dir('graphiql'), 'graphiql.min.css'),
};

const DEFAULT_QUERY =
  '# Welcome to the CQRS blog API. Every read below is answered by one SQL statement.\n' + `${SEED_OPERATIONS.GetRecentPosts}\n`;

export const IDE_ASSET_PREFIX = '/ide/';

export function idePage(endpoint: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>CQRS blog · GraphiQL</title>
<link rel="stylesheet" href="${IDE_ASSET_PREFIX}graphiql.css">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="${IDE_ASSET_PREFIX}react.js"></script>
<script src="${IDE_ASSET_PREFIX}react-dom.js"></script>
<script src="${IDE_ASSET_PREFIX}graphiql.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({ url: ${JSON.stringify(endpoint)} });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher, defaultQuery: ${JSON.stringify(DEFAULT_QUERY)}, defaultEditorToolsVisibility: true }),
  );
</script>
</body>
</html>
`;
}

/** Static files of the IDE, cached by browsers for a day (their names change with no version). */
export function ideAssets(): express.Router {
  const router = express.Router();
  router.get(`${IDE_ASSET_PREFIX}:file`, (req, res, next) => {
    const file = ASSETS[req.params.file ?? ''];
    if (!file) return next();
    res.sendFile(file, { maxAge: '1d' });
  });
  return router;
}

/** True for a browser asking for a page (GET with Accept: text/html and no query in the URL). */
export function wantsIde(req: express.Request): boolean {
  return (
    req.method === 'GET' && !('query' in (req.query as object)) && Boolean(req.accepts(['application/json', 'text/html']) === 'text/html')
  );
}
