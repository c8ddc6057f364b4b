import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      // tests/renderer: the Pinia stores, against a fake API client (they need no DOM).
      { test: { name: 'unit', include: ['tests/unit/**/*.test.ts', 'tests/renderer/**/*.test.ts'], environment: 'node' } },
      {
        test: {
          name: 'integration',
          include: ['tests/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 60_000,
          hookTimeout: 60_000
        }
      },
      {
        test: {
          name: 'e2e',
          include: ['tests/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // One Chromium at a time on a 2-core machine.
          fileParallelism: false,
          // A busy 2-core machine can take more than the default second to re-render after a key; a poll that
          // never comes true still fails, just later.
          expect: { poll: { timeout: 10_000 } }
        }
      }
    ]
  }
})
