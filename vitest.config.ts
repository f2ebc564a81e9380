import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // Tests start real servers on free ports; two workers keep a 2-core machine responsive.
    maxWorkers: 2,
  },
});
