// Jest configuration shared by every workspace: `module.exports = require('@blog/shared/test/jest-preset.cjs')(__dirname)`.
// Tests run against a real PostgreSQL; each test file gets its own database cloned from a migrated
// template (see global-setup.ts and environment.cjs).
const path = require('node:path');

module.exports = (rootDir) => ({
  rootDir,
  testEnvironment: path.join(__dirname, 'environment.cjs'),
  globalSetup: path.join(__dirname, 'global-setup.ts'),
  globalTeardown: path.join(__dirname, 'global-teardown.ts'),
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: path.join(rootDir, 'tsconfig.json') }],
  },
  // Tests use the sources of @blog/shared directly: no build needed to run them.
  moduleNameMapper: {
    '^@blog/shared$': path.join(__dirname, '..', 'src', 'index.ts'),
    '^@blog/shared/test/(.*)$': path.join(__dirname, '$1'),
  },
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  testTimeout: 60_000,
  // Database-bound tests spend their time waiting on PostgreSQL, not on the CPU.
  maxWorkers: 2,
});
