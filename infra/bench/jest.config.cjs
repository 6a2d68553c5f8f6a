// The peers folder is a separate npm project (its own node_modules): not part of this workspace's tests.
module.exports = {
  ...require('@blog/shared/test/jest-preset.cjs')(__dirname),
  modulePathIgnorePatterns: ['<rootDir>/peers/'],
  watchPathIgnorePatterns: ['<rootDir>/peers/'],
};
