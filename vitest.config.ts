import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: more workers only add contention to the real-Redis and child-process tests.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
