/**
 * @jest-environment-options {"database": false}
 */
import { ConfigError } from '@blog/shared';
import { loadConfig } from '../src/env';

const URL = 'postgres://u@h:5432/db';

test('defaults: port 8000, QUEUED, 30 s deferral, pages of 20 up to 100, depth 15, 1 MiB bodies', () => {
  expect(loadConfig({ DATABASE_URL: URL })).toMatchObject({
    port: 8000,
    host: '0.0.0.0',
    databaseUrl: URL,
    defaultSyncMode: 'QUEUED',
    deferSeconds: 30,
    defaultPageSize: 20,
    maxPageSize: 100,
    maxQueryDepth: 15,
    maxBodyBytes: 1_048_576,
  });
});

test('values are read and sync modes are case-insensitive', () => {
  const c = loadConfig({ DATABASE_URL: URL, PORT: '9000', DEFAULT_SYNC_MODE: 'inline', DEFER_SECONDS: '5', MAX_PAGE_SIZE: '50' });
  expect(c).toMatchObject({ port: 9000, defaultSyncMode: 'INLINE', deferSeconds: 5, maxPageSize: 50 });
});

test('every bad variable is reported at once, by name, with the value given', () => {
  let error: unknown;
  try {
    loadConfig({ PORT: 'eighty', DEFAULT_SYNC_MODE: 'SOMETIMES', MAX_BODY_BYTES: '10' });
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(ConfigError);
  const message = (error as Error).message;
  expect(message).toContain('DATABASE_URL: is required');
  expect(message).toContain('PORT: must be a number (got "eighty")');
  expect(message).toContain('DEFAULT_SYNC_MODE: must be one of INLINE, QUEUED, DEFERRED (got "SOMETIMES")');
  expect(message).toContain('MAX_BODY_BYTES: must be at least 1024 (got "10")');
});

test('a default page size above the maximum is refused', () => {
  expect(() => loadConfig({ DATABASE_URL: URL, DEFAULT_PAGE_SIZE: '200', MAX_PAGE_SIZE: '100' })).toThrow(
    /DEFAULT_PAGE_SIZE: must not exceed MAX_PAGE_SIZE/,
  );
});

test('DATABASE_URL must be a postgres URL', () => {
  expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL: must be a postgres/);
});
