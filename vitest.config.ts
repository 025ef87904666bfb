import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'demo-app/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    // The reference master's tests also run on Postgres: a throwaway cluster, started on first use.
    globalSetup: ['demo-app/server/pg-test-cluster.ts'],
    // Rows carry the master's `_version`; comparisons that do not name one leave it out (the file says why).
    setupFiles: ['test/setup/versions.ts'],
  },
});
