/** Two tiers: unit tests beside their source, emulator tests in test/ (they start the emulators). */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 120_000,
  // Two test files at a time, whatever the machine: on 2 cores jest would run one, and most of
  // an emulator test's time is spent waiting (for emulators and services to start, for ticks,
  // retries and stops), so two take about 380 s where one took about 580. Each test has its own
  // project id, and the tests that freeze or kill an emulator start their own.
  maxWorkers: 2,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform,
      roots: [
        '<rootDir>/shared',
        '<rootDir>/dispatcher',
        '<rootDir>/notifier',
        '<rootDir>/dev',
        '<rootDir>/bin',
        '<rootDir>/infra',
        '<rootDir>/bench',
      ],
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/bench/results/'],
    },
    {
      displayName: 'emulator',
      testEnvironment: 'node',
      transform,
      roots: ['<rootDir>/test'],
      testMatch: ['**/*.test.ts'],
      globalSetup: '<rootDir>/test/global-setup.ts',
      globalTeardown: '<rootDir>/test/global-teardown.ts',
    },
  ],
};
