import { spawn } from 'node:child_process';
import net from 'node:net';
import { startApi, type TestApi } from './support';

/**
 * A body over MAX_BODY_BYTES is answered 413 while the client is still sending it. The client must
 * always read that answer: the server lets it out, half-closes and keeps discarding what still
 * arrives for a while (a lingering close). Closing a socket with unread data instead makes the
 * kernel reset the connection, and the client then fails with EPIPE or ECONNRESET, often before it
 * has read the 413.
 *
 * The clients run in a child process: with client and server on one event loop the reset does not
 * show (the client always reads the answer before the server's close), with two it does.
 */
const MAX_BODY_BYTES = 1024 * 1024;
const TRIES = 20;

let api: TestApi;
beforeAll(async () => {
  api = await startApi({ maxBodyBytes: MAX_BODY_BYTES });
});
afterAll(() => api?.close());

/**
 * Sends TRIES bodies of 5 MB with the given client and prints how each ended: `413 PAYLOAD_TOO_LARGE`,
 * or `failed: <code>`. Clients: fetch; http.request writing 64 KiB chunks with Content-Length;
 * the same without it (chunked transfer encoding).
 */
const CLIENT = `
const http = require('node:http');
const [url, client, tries] = process.argv.slice(1);
const data = Buffer.from(JSON.stringify({ query: '{ posts { id } }', variables: { x: 'x'.repeat(5 * 1024 * 1024) } }));
const code = (json) => JSON.parse(json).errors?.[0]?.extensions?.code;
async function withFetch() {
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: data });
    return res.status + ' ' + code(await res.text());
  } catch (err) {
    return 'failed: ' + (err.cause?.code ?? err.cause?.message ?? err.message);
  }
}
function withHttpRequest(declareLength) {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (outcome) => { if (!settled) resolve(outcome); settled = true; };
    const headers = { 'content-type': 'application/json' };
    if (declareLength) headers['content-length'] = String(data.length);
    const req = http.request(url, { method: 'POST', agent: false, headers });
    req.on('response', (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => settle(res.statusCode + ' ' + code(Buffer.concat(chunks).toString())));
      res.on('error', (err) => settle('failed: ' + (err.code ?? err.message)));
    });
    req.on('error', (err) => settle('failed: ' + (err.code ?? err.message)));
    let offset = 0;
    const pump = () => {
      while (offset < data.length) {
        const chunk = data.subarray(offset, offset + 64 * 1024);
        offset += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}
(async () => {
  const outcomes = [];
  for (let i = 0; i < Number(tries); i++) {
    outcomes.push(client === 'fetch' ? await withFetch() : await withHttpRequest(client === 'content-length'));
  }
  process.stdout.write(JSON.stringify(outcomes));
})();
`;

function sendBigBodies(client: 'fetch' | 'content-length' | 'chunked'): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', CLIENT, `${api.url}/graphql`, client, String(TRIES)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the client exited with ${code}: ${err}`));
      resolve(JSON.parse(out) as string[]);
    });
  });
}

const EVERY_TIME_413 = new Array<string>(TRIES).fill('413 PAYLOAD_TOO_LARGE');

test(`5 MB bodies sent with fetch get their 413 every time (${TRIES} tries), never a reset`, async () => {
  expect(await sendBigBodies('fetch')).toEqual(EVERY_TIME_413);
});

test(`5 MB bodies written in chunks with Content-Length get their 413 every time (${TRIES} tries)`, async () => {
  expect(await sendBigBodies('content-length')).toEqual(EVERY_TIME_413);
});

test(`5 MB chunked bodies (no Content-Length) get their 413 every time (${TRIES} tries)`, async () => {
  expect(await sendBigBodies('chunked')).toEqual(EVERY_TIME_413);
});

test('the 413 says Connection: close, and the API answers the next request on a new connection', async () => {
  const res = await fetch(`${api.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ posts { id } }', variables: { x: 'x'.repeat(2 * MAX_BODY_BYTES) } }),
  });
  expect(res.status).toBe(413);
  expect(res.headers.get('connection')).toBe('close');
  await res.text();
  expect((await api.gql('{ posts(limit: 1) { id } }')).status).toBe(200);
});

test('a client that never stops sending is cut off after a bounded amount, having been answered 413', async () => {
  const { port } = new URL(api.url);
  const outcome = await new Promise<{ answer: string; sent: number; ms: number }>((resolve) => {
    const started = Date.now();
    // Half-open: it goes on writing after the server's FIN, as an uploading client does.
    const socket = net.connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
    let answer = '';
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, 'x');
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    socket.on('error', () => undefined); // EPIPE / ECONNRESET once the server gives up: expected
    socket.on('close', () => resolve({ answer, sent, ms: Date.now() - started }));
    socket.on('connect', () => {
      socket.write('POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      const pump = () => {
        while (!socket.destroyed && socket.writable) {
          sent += chunk.length;
          if (!socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString()}\r\n`)) return void socket.once('drain', pump);
        }
      };
      pump();
    });
  });
  expect(outcome.answer).toMatch(/^HTTP\/1\.1 413 /);
  // LINGER_MAX_BYTES (32 MiB) past the 1 MiB limit, or LINGER_MS (5 s), whichever comes first.
  expect(outcome.sent).toBeLessThan(128 * 1024 * 1024);
  expect(outcome.ms).toBeLessThan(8000);
}, 15_000);
