/**
 * Four tiers: unit tests beside their source, emulator tests in test/ (they start the
 * emulators), the fault suite in test/faults/ (on the emulators too), and browser tests beside
 * their page (`*.browser.ts`, in Debian's Chromium).
 */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };

/** The emulator tiers' own: jest's global setup starts the emulators, and its teardown stops them. */
const onEmulators = {
  testEnvironment: 'node',
  transform,
  testMatch: ['**/*.test.ts'],
  globalSetup: '<rootDir>/test/global-setup.ts',
  globalTeardown: '<rootDir>/test/global-teardown.ts',
};

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 120_000,
  // Two test files at a time, whatever the machine: on 2 cores jest would run one, and most of
  // an emulator test's time is spent waiting (for emulators and services to start, for ticks,
  // retries and stops), so two take about 380 s where one took about 580. Each test has its own
  // project id, and the tests that freeze or kill an emulator start their own.
  maxWorkers: 2,
  // A worker whose files are done exits by itself, code 0, but on this machine tearing down its
  // heap (450 to 750 MiB of RSS by then) took 460 to 540 ms, past jest's default 500: jest then
  // killed it and printed "A worker process has failed to exit gracefully". Nothing was left
  // open: the worker's event loop had emptied the moment it was told to end.
  workerGracefulExitTimeout: 5_000,
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
      ...onEmulators,
      displayName: 'emulator',
      roots: ['<rootDir>/test'],
      // The fault suite is a project of its own: `npm run test:faults`, after `npm test` in CI.
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/faults/'],
    },
    {
      ...onEmulators,
      // Scenarios of many notifications under faults (test/faults/): about 6 minutes of test
      // files at CI's size, which would take `npm test` past 10 minutes.
      displayName: 'faults',
      roots: ['<rootDir>/test/faults'],
    },
    {
      // In a real browser (Debian's Chromium): `npm run test:browser`, not part of `npm test`,
      // as it needs Chromium installed (.ci/run installs it).
      displayName: 'browser',
      testEnvironment: 'node',
      transform,
      roots: ['<rootDir>/dispatcher'],
      testMatch: ['**/*.browser.ts'],
    },
  ],
};
