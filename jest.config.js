/**
 * ESM TypeScript under jest: @swc/jest strips types (fast; `npm run typecheck`
 * type-checks the tests), Node runs the result as ES modules
 * (node --experimental-vm-modules, see package.json scripts).
 */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // The real-Zabbix end-to-end tests run when test/e2e/zabbix/up.sh (6.0) and test/e2e/zabbix7/up.sh (7.0) have
  // started a Zabbix and their API URLs are set (see README, .ci/run); otherwise they are not selected at all.
  testPathIgnorePatterns: [
    '/node_modules/',
    ...(process.env.ZABBIX_E2E_URL ? [] : ['<rootDir>/test/e2e/']),
    ...(process.env.ZABBIX7_E2E_URL ? [] : ['<rootDir>/test/e2e/zabbix7/']),
  ],
  testTimeout: 30000,
  // Two workers on the 2-core CI machine (jest's default there is one): the real-Zabbix end-to-end files spend
  // most of their minutes waiting for Zabbix's clocks, and the other files run beside them.
  maxWorkers: 2,
};
