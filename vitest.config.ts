import { defineConfig } from 'vitest/config';

/** Tests that bound a latency: they run after all others, with the machine to themselves. */
const ALONE = ['test/alone/**/*.test.ts'];

export default defineConfig({
  test: {
    // Integration suites start servers, PGlite instances and child processes; two cores, so two workers.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['src/**/*.test.ts', 'stripe-emulator/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ALONE,
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: 'alone', include: ALONE, sequence: { groupOrder: 1 } } },
    ],
  },
});
