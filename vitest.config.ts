import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', 'node_modules/**'],
    setupFiles: ['test/helpers/fast-check-setup.ts'],
    testTimeout: 20_000,
    hookTimeout: 300_000,
    // Integration tests boot guests and share the machine's 2 cores: run files one at a time.
    fileParallelism: false,
  },
});
