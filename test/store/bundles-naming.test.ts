import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import { openStore, pushTree, type Store } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()

/** A pushed tree of these files (name → text); its bundle ID. */
async function push (store: Store, files: Record<string, string>): Promise<string> {
  const dir = await tempDir()
  await mkdir(join(dir, 'tree'))
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, 'tree', name), text)
  return (await pushTree(store, join(dir, 'tree'))).bundleId
}

const object = (text: string): string => blake3Hex(Buffer.from(text))

describe('which bundles name an object (Store.bundlesNaming)', () => {
  it('answers from every bundle held, and follows commits and removals made before and after its first answer', async () => {
    const dir = await tempDir()
    const store = await openStore({ dir })
    try {
      const a = await push(store, { base: 'a shared base layer', app: 'app one' })
      // Committed before the first question: read from the manifests when the index is built.
      expect((await store.bundlesNaming(object('a shared base layer'))).sort()).toEqual([a])
      const b = await push(store, { base: 'a shared base layer', app: 'app two' })
      // Committed after it: the index follows.
      expect((await store.bundlesNaming(object('a shared base layer'))).sort()).toEqual([a, b].sort())
      expect(await store.bundlesNaming(object('app two'))).toEqual([b])
      expect(await store.bundlesNaming(object('nobody has this'))).toEqual([])
      await store.removeBundleRecord(a)
      expect(await store.bundlesNaming(object('a shared base layer'))).toEqual([b])
      expect(await store.bundlesNaming(object('app one'))).toEqual([])
    } finally {
      await store.close()
    }
    // Nothing of it is kept on disk: a store opened again builds it from what it holds.
    const reopened = await openStore({ dir })
    try {
      expect((await reopened.bundlesNaming(object('a shared base layer'))).length).toBe(1)
      expect(await reopened.bundlesNaming(object('app one'))).toEqual([])
    } finally {
      await reopened.close()
    }
  })

  it('misses no bundle committed or removed while its first answer is being built', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const held = await Promise.all(Array.from({ length: 40 }, async (_, i) => await push(store, { base: 'base', own: `own ${i}` })))
      // The build reads 40 manifests; a commit and a removal land while it does.
      const building = store.bundlesNaming(object('base'))
      const [late] = await Promise.all([push(store, { base: 'base', own: 'late' }), store.removeBundleRecord(held[0] ?? '')])
      await building
      expect((await store.bundlesNaming(object('base'))).sort()).toEqual([...held.slice(1), late].sort())
      expect(await store.bundlesNaming(object('own 0'))).toEqual([])
    } finally {
      await store.close()
    }
  })
})
