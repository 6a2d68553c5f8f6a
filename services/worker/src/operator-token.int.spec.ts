import { silentLogger } from '@blog/shared';
import { testPool } from '@blog/shared/test/helpers';
import { testWorkerConfig, waitFor } from '../test/helpers';
import { startHealthServer, type HealthServer } from './health';
import { createWorker, type ProjectionWorker } from './worker';

/** OPERATOR_TOKEN on the worker's health port: /metrics needs it, /health does not. */
const TOKEN = 'worker-operator-token-0123456789';
const NAME = 'blog-worker-operator';

describe('operator token on the worker health port', () => {
  let worker: ProjectionWorker;
  let guarded: HealthServer;
  let open: HealthServer;

  beforeAll(async () => {
    worker = createWorker(testWorkerConfig({ name: NAME }));
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
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer nope' },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: TOKEN },
    ];
    for (const headers of attempts) {
      const res = await get(guarded, '/metrics', headers);
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toEqual({
        errors: [{ message: expect.stringContaining('OPERATOR_TOKEN'), extensions: { code: 'UNAUTHENTICATED' } }],
      });
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

  it('shows the last error on /health only with the token (its text may name internal addresses)', async () => {
    // An error of the worker's: the server ends its connections (pg-boss reports the lost ones).
    const pool = testPool(1);
    try {
      await pool.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1',
        [NAME],
      );
    } finally {
      await pool.end();
    }
    await waitFor('the worker to record the error', async () => worker.status().lastError !== null);
    for (const [server, headers] of [
      [guarded, {}],
      [guarded, { authorization: 'Bearer nope' }],
      [open, {}],
    ] as const) {
      const body = (await (await get(server, '/health', headers)).json()) as Record<string, unknown>;
      expect(body).toHaveProperty('jobsCompleted');
      expect(body).not.toHaveProperty('lastError');
    }
    const body = (await (await get(guarded, '/health', { authorization: `Bearer ${TOKEN}` })).json()) as Record<string, unknown>;
    expect(body.lastError).toEqual(expect.any(String));
  });
});
