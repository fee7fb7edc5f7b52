import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['./src/polyfill.ts'],
    // Tests spawn bin/shoal.js, which runs dist/: build it from the current sources first.
    globalSetup: ['./test/build-dist.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests start real daemons, LevelDB stores and subprocesses; two cores are all we have.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
})
