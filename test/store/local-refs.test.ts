import { describe, expect, it } from 'vitest'
import {
  commitBlobBundle, commitImageBundle, foldBlobBundles, ingestBlobBytes, openStore, type ImageBlob, type Store, type StoreEvents,
} from '../../src/store/index.js'
import { createPeerKey } from '../../src/swarm/index.js'
import { signRefRecord, verifyRefRecord } from '../../src/swarm/ref-record.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const REF = 'registry.example.com/team/app:1.0'
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json'

/** A small image whose blobs are objects here: its manifest, a config and a layer. */
async function image (store: Store, seed: string): Promise<{ manifest: { mediaType: string, digest: string, size: number }, blobs: ImageBlob[] }> {
  const config = await ingestBlobBytes(store, Buffer.from(`{"config":"${seed}"}`))
  const layer = await ingestBlobBytes(store, Buffer.alloc(3 * 1024 * 1024 + 5, seed))
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: { digest: `sha256:${config.sha256}` }, layers: [{ digest: `sha256:${layer.sha256}` }] }))
  const manifest = await ingestBlobBytes(store, bytes)
  const blobs = [manifest, config, layer].map(b => ({ sha256: b.sha256, object: b.object, size: b.size }))
  return { manifest: { mediaType: MANIFEST_TYPE, digest: `sha256:${manifest.sha256}`, size: manifest.size }, blobs }
}

/** A trusted publisher's record for REF, signed by a fresh key and verified as the swarm hands it to the store. */
async function trustedRecord (fields: { bundleId: string, manifestDigest?: string, sequence: number }): ReturnType<typeof verifyRefRecord> {
  return await verifyRefRecord((await signRefRecord(await createPeerKey(), { ref: REF, ...fields })).signed)
}

function refEvents (store: Store): Array<StoreEvents['ref:set']> {
  const seen: Array<StoreEvents['ref:set']> = []
  store.on('ref:set', e => { seen.push(e) })
  return seen
}

describe('refs an edge makes by assembling what the fleet said', () => {
  it('are marked local (the daemon does not publish them) and give way to any trusted record', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const events = refEvents(store)
      const made = await commitImageBundle(store, { ref: REF, ...await image(store, 'a'), local: true })
      expect(made.revision?.local).toBe(true)
      expect(events).toEqual([expect.objectContaining({ ref: REF, bundleId: made.bundleId, local: true })])
      expect(await store.getRef(REF)).toMatchObject({ bundleId: made.bundleId, local: true })
      expect(await store.refRecords()).toEqual([])

      // A record with a sequence far in the past still replaces the local ref: the fleet's word wins.
      const record = await trustedRecord({ bundleId: made.bundleId, manifestDigest: made.revision?.manifestDigest, sequence: 1 })
      expect(await store.acceptRefRecord(record)).toBe('accepted')
      expect(await store.getRef(REF)).toMatchObject({ bundleId: made.bundleId, publisher: record.publisher, sequence: 1 })
      expect((await store.getRef(REF))?.local).toBeUndefined()
    } finally {
      await store.close()
    }
  })

  it('never replace a trusted record already held for the tag', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const other = 'c'.repeat(64)
      const record = await trustedRecord({ bundleId: other, sequence: 7 })
      await store.acceptRefRecord(record)
      const events = refEvents(store)
      const made = await commitImageBundle(store, { ref: REF, ...await image(store, 'b'), local: true })
      expect(made.created).toBe(true)
      expect(made.revision).toBeUndefined()
      expect(events).toEqual([])
      expect(await store.getRef(REF)).toMatchObject({ bundleId: other, publisher: record.publisher, sequence: 7 })
      expect(await store.bundleRecord(made.bundleId)).toBeDefined()
    } finally {
      await store.close()
    }
  })

  it('leave a trusted record that arrives while the image\'s bundle is written in place', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const other = 'd'.repeat(64)
      const record = await trustedRecord({ bundleId: other, sequence: 3 })
      // The record lands after the assembly began and before its bundle is committed (a
      // gateway's record reaching an edge that assembles the same image at that moment).
      const bundleRecord = store.bundleRecord.bind(store)
      store.bundleRecord = async (id) => {
        await store.acceptRefRecord(record)
        return await bundleRecord(id)
      }
      const events = refEvents(store)
      const made = await commitImageBundle(store, { ref: REF, ...await image(store, 'e'), local: true })
      expect(made.created).toBe(true)
      expect(made.revision).toBeUndefined()
      expect(events).toEqual([])
      expect(await store.getRef(REF)).toMatchObject({ bundleId: other, publisher: record.publisher, sequence: 3 })
      expect((await store.revisions(REF)).at(-1)).toMatchObject({ publisher: record.publisher })
    } finally {
      await store.close()
    }
  })

  it('are not local when the image came from this node\'s own upstream or a push', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const events = refEvents(store)
      const made = await commitImageBundle(store, { ref: REF, ...await image(store, 'c') })
      expect(events).toEqual([expect.objectContaining({ ref: REF, bundleId: made.bundleId })])
      expect(events[0]?.local).toBeUndefined()
    } finally {
      await store.close()
    }
  })
})

describe('one-blob bundles once the image\'s bundle covers them', () => {
  it('are removed, their objects kept and readable; pinned ones and blobs of other images stay', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const img = await image(store, 'd')
      const [, config, layer] = img.blobs as [ImageBlob, ImageBlob, ImageBlob]
      const stray = await ingestBlobBytes(store, Buffer.from('a blob of another image'))
      const layerBundle = (await commitBlobBundle(store, layer)).bundleId
      const configBundle = (await commitBlobBundle(store, config)).bundleId
      const strayBundle = (await commitBlobBundle(store, { sha256: stray.sha256, object: stray.object, size: stray.size })).bundleId
      await store.setPinned(configBundle, true)
      const made = await commitImageBundle(store, { ref: REF, ...img })

      expect(await foldBlobBundles(store, made.bundleId)).toEqual([layerBundle])
      expect((await store.bundleIds()).sort()).toEqual([made.bundleId, configBundle, strayBundle].sort())
      expect(await store.hasObject(layer.object)).toBe(true)
      expect((await store.readChunk(layer.object, 3)).length).toBe(5)
      expect(await store.objectBySha256(layer.sha256)).toBe(layer.object)
      // One a client is reading is folded too, and the image's bundle is in use in its stead
      // (the quota spares the objects that client reads).
      await store.setPinned(configBundle, false)
      const release = store.useBundle(configBundle)
      expect(store.isBundleInUse(made.bundleId)).toBe(false)
      expect(await foldBlobBundles(store, made.bundleId)).toEqual([configBundle])
      expect(store.isBundleInUse(made.bundleId)).toBe(true)
      release()
      expect(await store.hasObject(config.object)).toBe(true)
    } finally {
      await store.close()
    }
  })
})
