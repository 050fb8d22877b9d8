import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One PostgreSQL server for the run (or PUNCTUAL_TEST_POSTGRES_URL's): see test/setup.
    globalSetup: ['test/setup/postgres.global.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
