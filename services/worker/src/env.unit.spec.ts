/**
 * @jest-environment-options {"database": false}
 */
import { ConfigError } from '@blog/shared';
import { readWorkerEnv, workerConfigFromEnv } from './env';

describe('worker configuration', () => {
  it('has defaults for everything but DATABASE_URL', () => {
    const config = workerConfigFromEnv(readWorkerEnv({ DATABASE_URL: 'postgres://u@h:5432/db' }));
    expect(config).toEqual({
      databaseUrl: 'postgres://u@h:5432/db',
      batchSize: 100,
      concurrency: 1,
      pollIntervalMs: 50,
      shutdownTimeoutMs: 10_000,
      superviseIntervalSeconds: 10,
      lagRetentionHours: 48,
      eventRetentionDays: 90,
      healthPort: 8001,
      unhealthyAfterMs: 30_000,
      name: 'blog-worker',
    });
  });

  it('reads every variable', () => {
    const env = readWorkerEnv({
      DATABASE_URL: 'postgresql://u@h/db',
      WORKER_BATCH_SIZE: '250',
      WORKER_CONCURRENCY: '4',
      WORKER_POLL_INTERVAL_MS: '750',
      WORKER_SHUTDOWN_TIMEOUT_MS: '3000',
      WORKER_SUPERVISE_INTERVAL_SECONDS: '5',
      WORKER_LAG_RETENTION_HOURS: '72',
      EVENT_RETENTION_DAYS: '0',
      WORKER_HEALTH_PORT: '0',
      WORKER_UNHEALTHY_AFTER_MS: '5000',
      WORKER_NAME: 'worker-7',
      LOG_LEVEL: 'debug',
    });
    expect(env.LOG_LEVEL).toBe('DEBUG');
    expect(workerConfigFromEnv(env)).toMatchObject({
      batchSize: 250,
      concurrency: 4,
      pollIntervalMs: 750,
      healthPort: 0,
      name: 'worker-7',
      eventRetentionDays: 0,
    });
  });

  it('reports every bad variable by name, at once', () => {
    const read = () =>
      readWorkerEnv({ WORKER_BATCH_SIZE: '0', WORKER_POLL_INTERVAL_MS: '5', WORKER_HEALTH_PORT: 'x', EVENT_RETENTION_DAYS: '-1' });
    expect(read).toThrow(ConfigError);
    try {
      read();
    } catch (err) {
      const message = (err as Error).message;
      expect(message).toMatch(/DATABASE_URL: is required/);
      expect(message).toMatch(/WORKER_BATCH_SIZE: must be at least 1/);
      expect(message).toMatch(/WORKER_POLL_INTERVAL_MS: must be at least 10/);
      expect(message).toMatch(/WORKER_HEALTH_PORT: must be a number/);
      expect(message).toMatch(/EVENT_RETENTION_DAYS: must be at least 0/);
    }
  });

  it('reads OPERATOR_TOKEN (at least 16 characters; empty means unset)', () => {
    const base = { DATABASE_URL: 'postgres://u@h/db' };
    expect(workerConfigFromEnv(readWorkerEnv({ ...base, OPERATOR_TOKEN: 't'.repeat(16) })).operatorToken).toBe('t'.repeat(16));
    expect(workerConfigFromEnv(readWorkerEnv({ ...base, OPERATOR_TOKEN: '' })).operatorToken).toBeUndefined();
    expect(() => readWorkerEnv({ ...base, OPERATOR_TOKEN: 'short' })).toThrow(/OPERATOR_TOKEN: must be at least 16 characters/);
  });
});
