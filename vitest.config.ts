import { defineConfig } from 'vitest/config';

// onnxruntime-node rejects typed arrays from another realm, so the vm pools are out (docs/runtime.md §6).
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
