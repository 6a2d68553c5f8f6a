/**
 * @jest-environment-options {"database": false}
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseWrkOutput, runWrk, wrkScript, wrkVersion } from '../src/wrk';
import { writeRequests } from '../src/documents';

/**
 * The load generator's script against a real HTTP server: read bodies arrive as sent, write bodies
 * get their slots filled with the given ids, and GraphQL errors in answers are counted.
 */
describe('wrk', () => {
  let server: http.Server;
  let url: string;
  const bodies: string[] = [];

  beforeAll(async () => {
    if (!(await wrkVersion())) throw new Error('wrk is not installed: apt-get install -y wrk');
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (bodies.length < 1000) bodies.push(body);
        const failed = body.includes('AddComment');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(failed ? '{"errors":[{"message":"no"}]}' : '{"data":{}}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test('reads: the same body each time; figures parsed', async () => {
    bodies.length = 0;
    const request = { query: 'query Q { posts(limit: 5) { id } }', operationName: 'Q' };
    const r = await runWrk({ url, connections: 2, durationS: 1, timeoutS: 5, load: { kind: 'read', request } });
    expect(r.requests).toBeGreaterThan(10);
    expect(r.rps).toBeGreaterThan(10);
    expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
    expect(r.errors).toEqual({ connect: 0, read: 0, write: 0, timeout: 0, status: 0, graphql: 0 });
    expect(new Set(bodies)).toEqual(new Set([JSON.stringify(request)]));
  });

  test('writes: CreatePost and AddComment alternate with ids from the lists; errors in answers are counted', async () => {
    bodies.length = 0;
    const users = ['00000000-0000-0000-0000-00000000000a', '00000000-0000-0000-0000-00000000000b'];
    const posts = ['00000000-0000-0000-0000-0000000000f1'];
    const r = await runWrk({
      url,
      connections: 1,
      durationS: 1,
      timeoutS: 5,
      load: { kind: 'write', requests: writeRequests('ours', 'QUEUED'), userIds: users, postIds: posts },
    });
    const parsed = bodies.map((b) => JSON.parse(b) as { operationName: string; variables: Record<string, string> });
    // Alternating (wrk builds one request before the run starts, so the first sent may be either).
    for (let i = 1; i < parsed.length; i++) expect(parsed[i]!.operationName).not.toBe(parsed[i - 1]!.operationName);
    expect(new Set(parsed.map((p) => p.operationName))).toEqual(new Set(['CreatePost', 'AddComment']));
    for (const p of parsed) {
      expect(users).toContain(p.variables.authorId);
      if (p.operationName === 'AddComment') expect(p.variables.postId).toBe(posts[0]);
    }
    // Every AddComment answer carried "errors".
    expect(r.errors.graphql).toBeGreaterThanOrEqual(Math.floor(r.requests / 2) - 1);
    expect(r.errors.graphql).toBeLessThanOrEqual(Math.ceil(r.requests / 2) + 1);
  });

  test('a body that contains the long-string closer is still quoted safely', () => {
    const script = wrkScript({ kind: 'read', request: { query: 'x ]=] y ]==]', operationName: 'Q' } });
    expect(script).toContain('[===[');
    expect(() => parseWrkOutput('no result here')).toThrow(/no result line/);
  });
});
