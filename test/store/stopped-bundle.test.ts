import { createHash } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { blake3Hex } from '../../src/hash/index.js'
import { openStore, pushTree, type Store } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** A tree filing each text under blobs/sha256/<its sha256>, pushed into `store`; its bundle ID. */
async function pushBlobs (store: Store, texts: string[]): Promise<string> {
  const dir = join(await tempDir(), 'tree')
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true })
  for (const text of texts) await writeFile(join(dir, 'blobs', 'sha256', sha256(text)), text)
  return (await pushTree(store, dir)).bundleId
}

/** Such a bundle's description alone in `store`, as a pull records it before any chunk: none of its objects here. */
async function described (store: Store, texts: string[]): Promise<string> {
  const elsewhere = await openStore({ dir: await tempDir() })
  try {
    const id = await pushBlobs(elsewhere, texts)
    const encoded = await elsewhere.getEncodedBundle(id)
    if (encoded === undefined) throw new Error('pushed bundle has no description')
    return (await store.addBundle(encoded, { expectedId: id })).id
  } finally {
    await elsewhere.close()
  }
}

const texts = ['the other image\'s config', 'the other image\'s layer']

describe('what a stopped pull added, taken back (Store.dropStoppedBundle)', () => {
  it('removes the description and the sha256 entries it filed that nothing else names, holds or leases', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      // Held here already, by a bundle of its own: the config. Leased (a push in flight): a third blob.
      const held = await pushBlobs(store, [texts[0] ?? ''])
      const id = await described(store, [...texts, 'a blob of a push in flight'])
      store.leaseObject(blake3Hex(Buffer.from('a blob of a push in flight')), 60_000)
      expect(await store.objectBySha256(sha256(texts[1] ?? ''))).toBe(blake3Hex(Buffer.from(texts[1] ?? '')))
      expect(await store.dropStoppedBundle(id)).toBe('removed')
      expect(await store.getBundle(id)).toBeUndefined()
      expect(await store.bundleIds()).toEqual([held])
      expect(await store.bundlesNaming(blake3Hex(Buffer.from(texts[1] ?? '')))).toEqual([])
      expect(await store.objectBySha256(sha256(texts[1] ?? ''))).toBeUndefined()
      expect(await store.objectBySha256(sha256(texts[0] ?? ''))).toBe(blake3Hex(Buffer.from(texts[0] ?? '')))
      expect(await store.objectBySha256(sha256('a blob of a push in flight'))).toBeDefined()
      expect(await store.dropStoppedBundle(id)).toBe('gone already')
    } finally {
      await store.close()
    }
  })

  it('keeps a bundle something else holds: a pin, a ref, a preheat record, a use', async () => {
    const store = await openStore({ dir: await tempDir() })
    try {
      const pinned = await described(store, ['pinned'])
      await store.setPinned(pinned, true)
      expect(await store.dropStoppedBundle(pinned)).toBe('pinned')
      const named = await described(store, ['named by a ref'])
      await store.setRef({ ref: 'registry.example.com/app:1.0', bundleId: named, manifestDigest: `sha256:${'a'.repeat(64)}`, local: true, at: Date.now() })
      expect(await store.dropStoppedBundle(named)).toBe('a ref')
      const preheated = await described(store, ['asked by a preheat record'])
      expect(await store.acceptPreheatRecord({ bundleId: preheated, sequence: 1, cancelled: false, signed: new Uint8Array([1]) })).toBe('accepted')
      expect(await store.dropStoppedBundle(preheated)).toBe('a preheat record')
      const used = await described(store, ['in use'])
      const release = store.useBundle(used)
      expect(await store.dropStoppedBundle(used)).toBe('in use')
      expect((await store.bundleIds()).sort()).toEqual([pinned, named, preheated, used].sort())
      expect(await store.objectBySha256(sha256('in use'))).toBeDefined()
      // Once nothing holds it, it goes.
      release()
      expect(await store.dropStoppedBundle(used)).toBe('removed')
      expect(await store.objectBySha256(sha256('in use'))).toBeUndefined()
    } finally {
      await store.close()
    }
  })
})
