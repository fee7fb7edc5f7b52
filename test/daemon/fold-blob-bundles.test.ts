import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { ImageAssembler } from '../../src/daemon/index.js'
import { commitBlobBundle, ingestBlobBytes, openStore, type Store } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const tempDir = useTempDirs()
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const REF = 'registry.example.com/team/app:1.0'

/** What a gateway holds after pulling an image through for its edges blob by blob: each blob an object and a one-blob bundle. */
async function pulledThroughBlobByBlob (store: Store): Promise<{ digest: string, blobBundles: string[], layerObject: string }> {
  const config = await ingestBlobBytes(store, Buffer.from('{"architecture":"amd64"}'))
  const layer = await ingestBlobBytes(store, Buffer.alloc(2 * 1024 * 1024 + 7, 'z'))
  const descriptor = (b: { sha256: string, size: number }, mediaType: string): object => ({ mediaType, digest: `sha256:${b.sha256}`, size: b.size })
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: MANIFEST, config: descriptor(config, 'application/vnd.oci.image.config.v1+json'), layers: [descriptor(layer, 'application/vnd.oci.image.layer.v1.tar')],
  }))
  // As the content sources store a manifest: checked against its digest and indexed by it.
  const manifest = await ingestBlobBytes(store, bytes, { sha256: createHash('sha256').update(bytes).digest('hex') })
  const blobBundles = [
    (await commitBlobBundle(store, { sha256: config.sha256, object: config.object, size: config.size })).bundleId,
    (await commitBlobBundle(store, { sha256: layer.sha256, object: layer.object, size: layer.size })).bundleId,
  ]
  return { digest: `sha256:${manifest.sha256}`, blobBundles, layerObject: layer.object }
}

async function assembled (store: Store, assembler: ImageAssembler, digest: string): Promise<string> {
  const made = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error('the image was not made a bundle within 10 s')) }, 10_000)
    store.on('ref:set', e => { if (e.ref === REF) { clearTimeout(timer); resolve(e.bundleId) } })
  })
  assembler.expect(REF, digest, MANIFEST)
  return await made
}

describe('one-blob bundles made during a pull-through', () => {
  it('are folded into the image\'s bundle once it is made: `shoal ls` lists the image, its blobs still read', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    const assembler = new ImageAssembler({ store, foldAfterMs: 0 })
    try {
      const { digest, blobBundles, layerObject } = await pulledThroughBlobByBlob(store)
      const removed = new Set<string>()
      const allRemoved = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error(`only ${removed.size} of ${blobBundles.length} one-blob bundles removed within 10 s`)) }, 10_000)
        store.on('bundle:removed', ({ id }) => {
          removed.add(id)
          if (blobBundles.every(b => removed.has(b))) { clearTimeout(timer); resolve() }
        })
      })
      const image = await assembled(store, assembler, digest)
      await allRemoved
      expect([...removed].sort()).toEqual([...blobBundles].sort())
      expect((await store.listBundles()).map(b => ({ id: b.id, refs: b.refs, complete: b.complete }))).toEqual([{ id: image, refs: [REF], complete: true }])
      expect((await store.readChunk(layerObject, 2)).length).toBe(7)
    } finally {
      await assembler.close()
      await store.close()
    }
  })

  it('stay until FOLD_BLOB_BUNDLES_AFTER_MS has passed (a peer told their IDs may still ask for them)', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    const assembler = new ImageAssembler({ store })
    try {
      const { digest, blobBundles } = await pulledThroughBlobByBlob(store)
      const image = await assembled(store, assembler, digest)
      expect((await store.bundleIds()).sort()).toEqual([image, ...blobBundles].sort())
    } finally {
      await assembler.close()
      await store.close()
    }
  })
})
