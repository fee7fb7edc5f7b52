import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const BUILD_SCRIPT = fileURLToPath(new URL('../scripts/build-dist.js', import.meta.url))

/**
 * vitest globalSetup: tests spawn bin/shoal.js, which runs dist/, so dist/ is built from the
 * sources as they are before any test starts: a test never runs a stale build. tsc is
 * incremental, so this costs a few seconds when nothing changed.
 */
export default async function buildDist (): Promise<void> {
  try {
    await promisify(execFile)(process.execPath, [BUILD_SCRIPT], { maxBuffer: 16 * 1024 * 1024 })
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string, stderr?: string }
    throw new Error(`the build the tests run (npm run build) failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: err })
  }
}
