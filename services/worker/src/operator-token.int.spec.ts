import { silentLogger } from '@blog/shared';
import { testWorkerConfig } from '../test/helpers';
import { startHealthServer, type HealthServer } from './health';
import { createWorker, type ProjectionWorker } from './worker';

/** OPERATOR_TOKEN on the worker's health port: /metrics needs it, /health does not. */
const TOKEN = 'worker-operator-token-0123456789';

describe('operator token on the worker health port', () => {
  let worker: ProjectionWorker;
  let guarded: HealthServer;
  let open: HealthServer;

  beforeAll(async () => {
    worker = createWorker(testWorkerConfig({ name: 'blog-worker-operator' }));
    await worker.start();
    guarded = await startHealthServer(worker, 0, silentLogger, { operatorToken: TOKEN });
    open = await startHealthServer(worker, 0, silentLogger);
  });
  afterAll(async () => {
    await guarded?.close();
    await open?.close();
    await worker?.stop();
  });

  const get = (server: HealthServer, path: string, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${server.port}${path}`, { headers });

  it('answers /metrics 401 (JSON) without the token or with a wrong one', async () => {
    const attempts: Record<string, string>[] = [{}, { authorization: 'Bearer nope' }, { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, { authorization: TOKEN }];
    for (const headers of attempts) {
      const res = await get(guarded, '/metrics', headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toEqual({ errors: [{ message: expect.stringContaining('OPERATOR_TOKEN'), extensions: { code: 'UNAUTHENTICATED' } }] });
    }
  });

  it('answers /metrics 200 with the token', async () => {
    const res = await get(guarded, '/metrics', { authorization: `Bearer ${TOKEN}` });
    expect(res.status).toBe(200);
    expect(await res.text()).toMatch(/# TYPE /);
  });

  it('keeps /health open, and /metrics open when no token is configured', async () => {
    expect((await get(guarded, '/health')).status).toBe(200);
    expect((await get(open, '/metrics')).status).toBe(200);
  });
});
