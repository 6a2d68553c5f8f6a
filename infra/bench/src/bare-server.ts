#!/usr/bin/env node
/**
 * The ceiling: the least a Node server can do to answer our read documents. node:http and pg, no
 * GraphQL library and no framework: it finds the document's statement by the query text (like a
 * persisted query), runs that one SQL statement as a prepared statement, and writes the JSON text
 * PostgreSQL returns into the response without parsing it.
 *
 * The statements come from a JSON file (BARE_STATEMENTS): for each query text, the SQL, its
 * parameters and how the rows become the response:
 * - 'data': one row, one text column holding the whole `data` object (the statement our API runs
 *   for the document, captured on the wire by the benchmark);
 * - 'list': each row's column is one item of data.<key> (SELECT data::text FROM tv_post ...);
 * - 'object': the first row's column is data.<key>, or null.
 *
 *   PORT=... DATABASE_URL=... BARE_STATEMENTS=statements.json [POOL_MAX=10] node dist/bare-server.js
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import pg from 'pg';

export interface BareStatement {
  sql: string;
  params: (string | null)[];
  shape: 'data' | 'list' | 'object';
  key?: string;
  /** Where the statement comes from, for the report. */
  source: string;
}

export type BareStatements = Record<string, BareStatement>;

function main(): void {
  const port = Number(process.env.PORT ?? 5680);
  const file = process.env.BARE_STATEMENTS;
  if (!process.env.DATABASE_URL || !file) {
    process.stderr.write('bare server: DATABASE_URL and BARE_STATEMENTS are required\n');
    process.exit(2);
  }
  const statements = new Map(
    Object.entries(JSON.parse(readFileSync(file, 'utf8')) as BareStatements).map(([query, s], i) => [query, { ...s, name: `bare_${i}` }]),
  );
  const pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.POOL_MAX ?? 10),
    application_name: 'bench-bare',
  });
  pool.on('error', () => undefined);

  const send = (res: http.ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') return send(res, 200, '{"status":"ok"}');
    if (req.method !== 'POST' || req.url !== '/graphql') return send(res, 404, '{"errors":[{"message":"Not found"}]}');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let query: unknown;
      try {
        query = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { query?: unknown }).query;
      } catch {
        return send(res, 400, '{"errors":[{"message":"invalid JSON"}]}');
      }
      const s = typeof query === 'string' ? statements.get(query) : undefined;
      if (!s) return send(res, 400, '{"errors":[{"message":"unknown document"}]}');
      pool.query<unknown[]>({ name: s.name, text: s.sql, values: s.params, rowMode: 'array' }).then(
        ({ rows }) => {
          const cells = rows.map((r) => String(r[0]));
          const body =
            s.shape === 'data'
              ? `{"data":${cells[0]}}`
              : s.shape === 'list'
                ? `{"data":{"${s.key}":[${cells.join(',')}]}}`
                : `{"data":{"${s.key}":${cells[0] ?? 'null'}}}`;
          send(res, 200, body);
        },
        (err: Error) => send(res, 500, JSON.stringify({ errors: [{ message: err.message }] })),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(port, '127.0.0.1');
  const stop = () => {
    server.close();
    void pool.end().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
