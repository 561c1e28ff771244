import { defineConfig } from 'vitest/config';

/**
 * Tests that time how long deliveries wait while something heavy runs beside them. On two cores, a
 * test file running alongside (spawning servers, fsyncing) delays those answers as much as what they
 * measure: `inlet prune` in another process took 8 s instead of 3.5 s there, and one delivery waited
 * 126 ms against 30–49 ms alone. They run after the rest, one file at a time.
 */
const ALONE = ['test/prune.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: end-to-end tests spawn servers; keep parallelism modest so timings stay honest.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ALONE,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
