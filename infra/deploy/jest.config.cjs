module.exports = require('@blog/shared/test/jest-preset.cjs')(__dirname);
