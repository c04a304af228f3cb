/** Jest for the pure unit tests only: no stack, no global setup/teardown.
 * Run with `npx jest --config test/unit/jest.unit.config.js`. */
module.exports = {
  rootDir: '../..',
  testEnvironment: 'node',
  transform: { '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
  testTimeout: 60000,
  maxWorkers: 1,
};
