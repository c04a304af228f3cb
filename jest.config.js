/** Jest: unit tests are pure; integration/workflow/replay tests use the real stack that
 * test/global-setup.ts starts (the same launcher as `npm run dev`). */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.tsx?$': ['@swc/jest', { jsc: { target: 'es2022' } }] },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
  testTimeout: 60000,
  maxWorkers: 1,
  // Servers are stopped by globalTeardown; a stray client handle must not keep CI waiting.
  forceExit: true,
};
