import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import { bundleIdOf, createBundleManifest, directoryChecksum, encodeBundleManifest } from '../../src/manifest/index.js'
import { collectGarbage, enforceQuota, openStore, pushTree, type Store } from '../../src/store/index.js'
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

  it('gives an object\'s size beside the bundles naming it, and no size where two bundles disagree on it', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const base = 'a shared base layer'
      const a = await push(store, { base, app: 'app one' })
      expect(await store.objectNamed(object(base))).toEqual({ bundles: [a], size: base.length })
      const b = await push(store, { base, app: 'app two' })
      expect(await store.objectNamed(object(base))).toEqual({ bundles: [a, b], size: base.length })
      expect(await store.objectNamed(object('nobody has this'))).toBeUndefined()
      // A description that gives the same object another size: the index keeps no size for it.
      const entries = [{ type: 'F' as const, perms: '644', checksum: object(base), size: 999, path: './base' }]
      const manifest = createBundleManifest([...entries, { type: 'D', perms: '755', checksum: directoryChecksum([object(base)]), size: 999, path: './' }], new Map())
      const encoded = encodeBundleManifest(manifest)
      const liar = bundleIdOf(encoded)
      await store.commitBundle(liar, encoded, manifest, [])
      expect(await store.objectNamed(object(base))).toEqual({ bundles: [a, b, liar], size: undefined })
      await store.removeBundleRecord(b)
      expect((await store.objectNamed(object('app one')))?.size).toBe('app one'.length)
      expect(await store.objectNamed(object('app two'))).toBeUndefined()
    } finally {
      await store.close()
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

  it('names the smallest bundle holding an object by its kept total, across commits, rm, gc, quota eviction and a restart', async () => {
    const dir = await tempDir()
    const base = 'a shared base layer'
    const bytes = (...texts: string[]): number => texts.reduce((sum, text) => sum + Buffer.byteLength(text), 0)
    const store = await openStore({ dir, quotaBytes: 6000 })
    try {
      const small = await push(store, { base, app: 'y'.repeat(10) })
      const big = await push(store, { base, app: 'x'.repeat(5000) })
      // Built from the manifests on the first question.
      expect(await store.smallestBundleNaming(object(base))).toEqual({ id: small, bytes: bytes(base, 'y'.repeat(10)) })
      expect(await store.smallestBundleNaming(object('x'.repeat(5000)))).toEqual({ id: big, bytes: bytes(base, 'x'.repeat(5000)) })
      expect(await store.smallestBundleNaming(object('nobody has this'))).toBeUndefined()
      // Committed after it: its total is kept as it comes.
      const smaller = await push(store, { base, app: 'z'.repeat(5) })
      expect(await store.smallestBundleNaming(object(base))).toEqual({ id: smaller, bytes: bytes(base, 'z'.repeat(5)) })
      // A bundle named twice over one object counts it once, as its objects are counted everywhere.
      const twice = await push(store, { base, a: 'q', b: 'q' })
      expect(await store.smallestBundleNaming(object(base))).toEqual({ id: twice, bytes: bytes(base, 'q') })
      await store.removeBundleRecord(twice)
      await store.removeBundleRecord(smaller)
      expect(await store.smallestBundleNaming(object(base))).toEqual({ id: small, bytes: bytes(base, 'y'.repeat(10)) })
      // gc takes objects no bundle names, never a bundle: the answer stands.
      expect((await collectGarbage(store)).removedObjects).toBe(2)
      expect(await store.smallestBundleNaming(object(base))).toEqual({ id: small, bytes: bytes(base, 'y'.repeat(10)) })
      // The quota evicts the one bundle it may (the big one pinned): the next smallest is named.
      await store.setPinned(big, true)
      await push(store, { other: 'o'.repeat(2000) }).then(async other => { await store.setPinned(other, true) })
      expect(await enforceQuota(store)).toEqual([small])
      expect(await store.smallestBundleNaming(object(base))).toEqual({ id: big, bytes: bytes(base, 'x'.repeat(5000)) })
      expect(await store.smallestBundleNaming(object('y'.repeat(10)))).toBeUndefined()
    } finally {
      await store.close()
    }
    const reopened = await openStore({ dir })
    try {
      const big = (await reopened.bundlesNaming(object('x'.repeat(5000))))[0]
      expect(await reopened.smallestBundleNaming(object(base))).toEqual({ id: big, bytes: bytes(base, 'x'.repeat(5000)) })
    } finally {
      await reopened.close()
    }
  })
})
