import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'demo-app/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    // The reference master's tests also run on Postgres: a throwaway cluster, started on first use.
    globalSetup: ['demo-app/server/pg-test-cluster.ts'],
  },
});
