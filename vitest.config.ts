import { defineConfig } from 'vitest/config'

// Two projects: `unit` (memory transport, no broker needed) and `brokers` (real brokers,
// started by scripts/test-brokers.mjs, which selects the files per broker).
export default defineConfig({
  resolve: { conditions: ['@msgkit/source'] },
  ssr: { resolve: { conditions: ['@msgkit/source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            'packages/*/test/**/*.test.ts',
            'test/unit/**/*.test.ts',
            'examples/**/test/**/*.test.ts',
          ],
          exclude: ['**/*.broker.test.ts', '**/node_modules/**'],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'brokers',
          include: ['packages/*/test/**/*.broker.test.ts', 'test/brokers/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
})
