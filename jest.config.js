/** Two tiers: unit tests beside their source, emulator tests in test/ (they start the emulators). */
const transform = { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] };

/** @type {import('jest').Config} */
module.exports = {
  testTimeout: 120_000,
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
