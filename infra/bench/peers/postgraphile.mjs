// PostGraphile 5 over the command tables (tb_*), as a user would run it: the Amber preset, the
// `public` schema, nothing custom. Lists are offered both as connections (for totalCount) and as
// plain lists (`...List` fields), and any column can be ordered by. GraphiQL (Ruru) and watch mode are off.
//
//   PORT=... DATABASE_URL=... POOL_MAX=10 node postgraphile.mjs
import http from 'node:http';
import process from 'node:process';
import { postgraphile } from 'postgraphile';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';

const port = Number(process.env.PORT ?? 5678);
const poolMax = Number(process.env.POOL_MAX ?? 10);
if (!process.env.DATABASE_URL) {
  process.stderr.write('postgraphile peer: DATABASE_URL is required\n');
  process.exit(2);
}

const preset = {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: ['public'],
      poolConfig: { max: poolMax, application_name: 'bench-postgraphile' },
    }),
  ],
  // Plain lists next to connections (connections still give totalCount).
  schema: { defaultBehavior: '+list' },
  // By default only columns that lead an index can be ordered by; comments must be ordered by
  // created_at (the leading column of their index is post_id), as a user would allow.
  disablePlugins: ['PgIndexBehaviorsPlugin'],
  grafserv: { port, graphqlPath: '/graphql', graphiql: false, watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
// Building the schema introspects the database: listen (and so answer /health) only once it is done.
await pgl.getSchema();
// createHandler rather than addTo: no websockets here, and /health is answered before grafserv.
const handle = serv.createHandler();
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  handle(req, res);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`postgraphile listening on ${port}\n`));

const stop = () => {
  server.close();
  Promise.resolve(pgl.release()).finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
