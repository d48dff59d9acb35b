import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'stripe-emulator/**/*.test.ts', 'test/**/*.test.ts'],
    // Integration suites start servers, PGlite instances and child processes; two cores, so two workers.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
