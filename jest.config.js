/** @type {import('jest').Config} */
// The domain modules come from their manifests (libs/<module>/src/module.manifest.ts).
const modules = require('./scripts/module-manifests.cjs').boundaryDeclarations(__dirname).DOMAIN.join('|');
const aliases = {
  '^@app/platform$': '<rootDir>/libs/platform/src/index.ts',
  '^@app/platform/tracing$': '<rootDir>/libs/platform/src/tracing/tracing.setup.ts',
  [`^@app/(${modules})$`]: '<rootDir>/libs/$1/src/index.ts',
  [`^@app/(${modules})/contracts$`]: '<rootDir>/libs/$1/src/contracts/index.ts',
  [`^@app/(${modules})/manifest$`]: '<rootDir>/libs/$1/src/module.manifest.ts',
  '^@app/manifests$': '<rootDir>/libs/manifests/src/index.ts',
};

module.exports = {
  rootDir: '.',
  testEnvironment: 'node',
  // Type-checking is `tsc`'s job in `npm test`; jest only transpiles.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
  moduleNameMapper: aliases,
  testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '/fixtures/'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 30_000,
  maxWorkers: 2,
};
