#!/usr/bin/env node
/**
 * The limit of a cached answer: a node:http server that answers every POST /graphql with one
 * constant JSON text of about 3 KB (CONSTANT_BYTES, 3,072 by default), and GET /health with 200.
 * It reads each request's body to its end, as any server must before it answers, but does not
 * parse it: no GraphQL, no JSON, no lookup, no database. A response cache can at best answer this
 * fast (it also has to find the answer by the request), so this row is the ceiling of the cached
 * rows, as the bare node:http + pg server is the ceiling of the SQL path.
 *
 * Its answers are not checked against the data (they cannot be: the text is the same whatever is
 * asked); the benchmark says so in its report.
 *
 *   PORT=... [CONSTANT_BYTES=3072] node dist/constant-server.js
 */
import http from 'node:http';

/** A JSON text of exactly `bytes` bytes (at least the envelope's 24), shaped like a GraphQL answer. */
export function constantBody(bytes: number): string {
  const head = '{"data":{"constant":"';
  const tail = '"}}';
  const room = Math.max(0, bytes - head.length - tail.length);
  const filler = 'The same answer every time. '.repeat(Math.ceil(room / 28)).slice(0, room);
  return `${head}${filler}${tail}`;
}

function main(): void {
  const port = Number(process.env.PORT ?? 5681);
  const bytes = Number(process.env.CONSTANT_BYTES ?? 3072);
  if (!Number.isInteger(bytes) || bytes < 24) {
    process.stderr.write('constant server: CONSTANT_BYTES must be an integer >= 24\n');
    process.exit(2);
  }
  const answer = Buffer.from(constantBody(bytes));
  const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(answer.length) };
  const health = Buffer.from('{"status":"ok"}');
  const notFound = Buffer.from('{"errors":[{"message":"Not found"}]}');

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(health.length) });
      res.end(health);
      return;
    }
    if (req.method !== 'POST' || req.url !== '/graphql') {
      res.writeHead(404, { 'Content-Type': 'application/json', 'Content-Length': String(notFound.length) });
      res.end(notFound);
      return;
    }
    // The body is read to its end (not parsed), then the constant goes out.
    req.on('data', () => undefined);
    req.on('end', () => {
      res.writeHead(200, headers);
      res.end(answer);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
