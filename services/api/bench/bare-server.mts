/**
 * The ceiling: a bare Node HTTP server that answers every request with ONE given SQL statement,
 * the same text our API generates for the benchmarked document (passed in BARE_SQL / BARE_VALUES),
 * as a prepared statement on a pg pool of the same size, writing PostgreSQL's JSON text as the
 * response. No routing, no GraphQL, no validation: what is left is the database and the socket.
 */
import http from 'node:http';
import pg from 'pg';

const port = Number(process.env.BARE_PORT ?? 0);
const text = process.env.BARE_SQL ?? '';
const values = JSON.parse(process.env.BARE_VALUES ?? '[]') as unknown[];
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DB_POOL_MAX ?? 10),
  application_name: 'blog-bench-bare',
});
const statement = { name: 'bare_read', text, values, rowMode: 'array' as const };

const server = http.createServer((req, res) => {
  const start = process.hrtime.bigint();
  req.resume();
  req.on('end', () => {
    pool.query<unknown[]>(statement).then(
      (result) => {
        const body = `{"data":${String(result.rows[0]![0])}}`;
        res.writeHead(200, {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(body),
          'X-Process-Time': `${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(3)}ms`,
        });
        res.end(body);
      },
      (err: Error) => {
        res.writeHead(500);
        res.end(err.message);
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`bare server listening on ${address.port}\n`);
});
const stop = () => server.close(() => void pool.end().then(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
