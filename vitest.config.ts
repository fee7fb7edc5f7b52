import { defineConfig } from 'vitest/config'

/**
 * Tests that measure what an attack costs compare two pulls' times in the same test; beside
 * other test files on two cores the ratio measures the neighbours, not the attack. They run
 * alone, after everything else.
 */
const RUN_ALONE = ['test/swarm/hostile.test.ts']

export default defineConfig({
  test: {
    setupFiles: ['./src/polyfill.ts'],
    // Tests spawn bin/shoal.js, which runs dist/: build it from the current sources first.
    globalSetup: ['./test/build-dist.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real daemons, LevelDB stores and subprocesses; two cores are all we have.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: RUN_ALONE, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'alone', include: RUN_ALONE, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
})
