import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn the built CLI and start local servers; two workers fit a 2-core CI machine.
    maxWorkers: 2,
  },
});
