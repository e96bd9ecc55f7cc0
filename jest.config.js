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
  // The real-Zabbix end-to-end test runs when test/e2e/zabbix/up.sh has started a Zabbix (see README, .ci/run).
  testPathIgnorePatterns: process.env.ZABBIX_E2E_URL ? ['/node_modules/'] : ['/node_modules/', '<rootDir>/test/e2e/'],
  testTimeout: 30000,
};
