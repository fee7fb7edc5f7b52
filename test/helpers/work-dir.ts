import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'

/**
 * One temp directory for a whole describe block (fixtures generated once in it), removed
 * after the block; `useTempDirs()` gives per-test ones.
 */
export function useWorkDir (prefix = 'shoal-work-'): () => string {
  let dir: string | undefined
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), prefix)) })
  afterAll(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })
  return () => {
    if (dir === undefined) throw new Error('useWorkDir: the directory exists only inside tests and hooks')
    return dir
  }
}
