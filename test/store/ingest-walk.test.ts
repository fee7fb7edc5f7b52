import { execFileSync } from 'node:child_process'
import { mkdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { blake3File } from '../../src/hash/index.js'
import { formatManifest, walkTree, SymlinkEscapeError, type FileHasher } from '../../src/manifest/index.js'
import { bundleOfTree, openStore, pushPath } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

// A push hashes several files at once (walkTree's `concurrency`); what it produces must not
// depend on how many, nor on the order in which hashes finish.
describe('a walk that hashes several files at once', () => {
  const tempDir = useTempDirs()

  async function tree (): Promise<string> {
    const root = await tempDir()
    await mkdir(join(root, 'nested/deeper/deepest'), { recursive: true })
    await mkdir(join(root, 'empty dir'))
    await writeFile(join(root, 'a file with spaces.txt'), 'spaces\n')
    await writeFile(join(root, 'nested/one.bin'), Buffer.alloc(3 * 1024 * 1024 + 5, 9))
    await writeFile(join(root, 'nested/deeper/two.txt'), 'two\n')
    await writeFile(join(root, 'nested/deeper/deepest/same.txt'), 'two\n')
    for (let i = 0; i < 40; i++) await writeFile(join(root, 'nested', `small-${i}`), `small ${i % 7}\n`)
    await symlink('nested/deeper/two.txt', join(root, 'link-to-two'))
    await symlink('nested/deeper', join(root, 'link-to-dir'))
    return root
  }

  /** The default hasher, finishing in a shuffled order. */
  const jitteryHasher: FileHasher = async (path) => {
    await new Promise(resolve => setTimeout(resolve, Math.floor(Math.random() * 5)))
    const { hex, size } = await blake3File(path)
    return { checksum: hex, size }
  }

  it('gives the same entries, in the same order, as the sequential walk and as b3sum', async () => {
    const root = await tree()
    const sequential = await walkTree(root)
    for (const concurrency of [2, 8, 64]) {
      expect(await walkTree(root, { concurrency, hashFile: jitteryHasher })).toEqual(sequential)
    }
    const independent = execFileSync('bash', [join(import.meta.dirname, '../helpers/b3sum-manifest.sh'), root]).toString()
    expect(formatManifest(sequential)).toBe(independent)
  })

  it('never runs more hashes at once than asked', async () => {
    const root = await tree()
    let running = 0
    let most = 0
    const counting: FileHasher = async (path, manifestPath, options) => {
      most = Math.max(most, ++running)
      try {
        return await jitteryHasher(path, manifestPath, options)
      } finally {
        running--
      }
    }
    await walkTree(root, { concurrency: 4, hashFile: counting })
    expect(most).toBe(4)
  })

  it('fails with the failing hash\'s error only once every hash it started has settled, and starts no more', async () => {
    const root = await tree()
    let running = 0
    let startedAfterFailure = 0
    let failed = false
    const failing: FileHasher = async (path, manifestPath, options) => {
      if (failed) startedAfterFailure++
      running++
      try {
        if (manifestPath === './nested/small-10') {
          failed = true
          throw new Error('this file cannot be read')
        }
        await new Promise(resolve => setTimeout(resolve, 20))
        return await jitteryHasher(path, manifestPath, options)
      } finally {
        running--
      }
    }
    await expect(walkTree(root, { concurrency: 8, hashFile: failing })).rejects.toThrow('this file cannot be read')
    expect(running).toBe(0)
    expect(startedAfterFailure).toBe(0)
  })

  it('waits for running hashes before reporting an error of the walk itself', async () => {
    const root = await tree()
    await symlink('/etc/hostname', join(root, 'zz-escapes'))
    let running = 0
    const slow: FileHasher = async (path, manifestPath, options) => {
      running++
      try {
        await new Promise(resolve => setTimeout(resolve, 30))
        return await jitteryHasher(path, manifestPath, options)
      } finally {
        running--
      }
    }
    await expect(walkTree(root, { concurrency: 8, hashFile: slow })).rejects.toThrow(SymlinkEscapeError)
    expect(running).toBe(0)
  })

  it('pushes a tree to the bundle that bundleOfTree computes, whatever the order files finish in', async () => {
    const root = await tree()
    const store = await openStore({ dir: join(await tempDir(), 'data') })
    try {
      const pushed = await pushPath(store, root)
      expect(pushed.bundleId).toBe((await bundleOfTree(root)).bundleId)
      expect(pushed.newObjects).toBe(new Set(pushed.bundle.entries.filter(e => e.type === 'F').map(e => e.checksum)).size)
      expect((await pushPath(store, root)).newObjects).toBe(0)
    } finally {
      await store.close()
    }
  })
})
