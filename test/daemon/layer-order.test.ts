import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { imageObjectOrder } from '../../src/daemon/layer-order.js'
import { commitImageBundle, ingestBlobBytes, openStore, type Store } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { connect, patternBytes, useSwarms, withReadChunk } from '../swarm/swarm-fixture.js'
import type { SwarmStore } from '../../src/swarm/index.js'

const tempDir = useTempDirs()
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const INDEX = 'application/vnd.oci.image.index.v1+json'

describe('an image\'s objects put in the swarm\'s order before a client asks', () => {
  it('go config first, then the layers as the manifest lists them', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const config = await ingestBlobBytes(store, Buffer.from('{"architecture":"amd64"}'))
      const layers = [
        await ingestBlobBytes(store, Buffer.alloc(2 * 1024 * 1024 + 1, 'x')),
        await ingestBlobBytes(store, Buffer.from('small layer')),
        await ingestBlobBytes(store, Buffer.alloc(3 * 1024 * 1024, 'y')),
      ]
      const descriptor = (b: { sha256: string, size: number }, mediaType: string): object => ({ mediaType, digest: `sha256:${b.sha256}`, size: b.size })
      const bytes = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: descriptor(config, 'application/vnd.oci.image.config.v1+json'),
        layers: layers.map(l => descriptor(l, 'application/vnd.oci.image.layer.v1.tar')),
      }))
      const manifest = await ingestBlobBytes(store, bytes)
      // The bundle's manifest is what indexes a blob's sha256 on an edge: commit the image as one.
      const blobs = [manifest, config, ...layers].map(b => ({ sha256: b.sha256, object: b.object, size: b.size }))
      await commitImageBundle(store, { ref: 'registry.example.com/team/app:1.0', manifest: { mediaType: MANIFEST, digest: `sha256:${manifest.sha256}`, size: manifest.size }, blobs })

      expect(await imageObjectOrder(store, manifest.sha256)).toEqual([config.object, ...layers.map(l => l.object)])
    } finally {
      await store.close()
    }
  })

  it('leaves the order alone for an index (the client\'s platform is not known yet) or a manifest not here', async () => {
    const store = await openStore({ dir: await tempDir(), fsync: false })
    try {
      const child = await ingestBlobBytes(store, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST, config: {}, layers: [] })))
      const index = await ingestBlobBytes(store, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: MANIFEST, digest: `sha256:${child.sha256}`, size: child.size }] })))
      await commitImageBundle(store, {
        ref: 'registry.example.com/team/multi:1.0',
        manifest: { mediaType: INDEX, digest: `sha256:${index.sha256}`, size: index.size },
        blobs: [index, child].map(b => ({ sha256: b.sha256, object: b.object, size: b.size })),
      })
      expect(await imageObjectOrder(store, index.sha256)).toEqual([])
      expect(await imageObjectOrder(store, 'f'.repeat(64))).toEqual([])
    } finally {
      await store.close()
    }
  })
})

/** An image of a config and `layers` layers (MiB sizes) committed to `store` as a bundle; what it is made of. */
async function commitImage (store: Store, layerMiB: number[]): Promise<{ bundleId: string, manifest: { sha256: string, object: string }, config: { object: string }, layers: Array<{ object: string }> }> {
  const config = await ingestBlobBytes(store, Buffer.from('{"architecture":"amd64","os":"linux"}'))
  const layers = []
  for (const [i, mib] of layerMiB.entries()) layers.push(await ingestBlobBytes(store, patternBytes(mib * 1024 * 1024, 100 + i)))
  const descriptor = (b: { sha256: string, size: number }, mediaType: string): object => ({ mediaType, digest: `sha256:${b.sha256}`, size: b.size })
  const manifest = await ingestBlobBytes(store, Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: descriptor(config, 'application/vnd.oci.image.config.v1+json'),
    layers: layers.map(l => descriptor(l, 'application/vnd.oci.image.layer.v1.tar')),
  })))
  const { bundleId } = await commitImageBundle(store, {
    ref: 'registry.example.com/team/ordered:1.0',
    manifest: { mediaType: MANIFEST, digest: `sha256:${manifest.sha256}`, size: manifest.size },
    blobs: [manifest, config, ...layers].map(b => ({ sha256: b.sha256, object: b.object, size: b.size })),
  })
  return { bundleId, manifest, config, layers }
}

describe('an edge pulling an image bundle with its objects put in the manifest\'s order', () => {
  const { node } = useSwarms()

  it('completes the config, then each layer in the order the manifest lists them', async () => {
    // A gateway that sends 8 MiB/s: the layers take seconds, as real ones do, so the order is
    // the edge's to choose (on loopback at full speed they were all but here before the manifest
    // could be read, 0.3 s at load 19).
    const gateway = await node({ maxUploadBytesPerSecond: 8 * 1024 * 1024 })
    const image = await commitImage(gateway.store, [6, 6, 6, 6, 6])
    // A narrow window (two requests at a time): what goes first is what the edge asks first.
    const edge = await node({ scheduler: { initialRequestsPerPeer: 2, minRequestsPerPeer: 1, maxRequestsPerPeer: 2 } })
    await connect(edge, gateway)
    const completed: string[] = []
    edge.store.on('object:complete', ({ object }) => { completed.push(object) })
    // Before the order is set the pull fetches in its own order; what it already started may
    // finish first (at load 20 the prioritising came a whole layer late). The claim is about
    // the objects untouched when the order was set.
    const started = new Set<string>()
    edge.swarm.on('chunk:received', ({ object }) => { started.add(object) })
    const manifestHere = new Promise<void>((resolve) => { edge.store.on('object:complete', ({ object }) => { if (object === image.manifest.object) resolve() }) })

    const pull = edge.swarm.pull(image.bundleId, { signal: AbortSignal.timeout(120_000) })
    // What the blob source does for a pull already under way once the manifest is here: the
    // latest prioritize goes first, so the objects are handed over last to first.
    await manifestHere
    const order = await imageObjectOrder(edge.store, image.manifest.sha256)
    const startedBeforeOrder = [...started]
    for (const object of [...order].reverse()) edge.swarm.prioritize(object)
    expect(order).toEqual([image.config.object, ...image.layers.map(l => l.object)])
    await pull
    const untouched = order.filter(object => !startedBeforeOrder.includes(object))
    expect(untouched.length, `only ${untouched.length} of ${order.length} objects had no chunk when the order was set`).toBeGreaterThanOrEqual(3)
    expect(completed.filter(object => untouched.includes(object))).toEqual(untouched)
  })
})

describe('a pull given its first objects before its first chunk request (PullOptions.firstObjects)', () => {
  const { node } = useSwarms()

  /**
   * An edge pulls the image from a gateway, given its order (config, then the layers) as the
   * content sources give it; what each layer's completion read back, and the layer chunks the
   * gateway read for it, in order.
   */
  async function pullWithOrder (edgeStore?: (store: Store) => SwarmStore): Promise<{ reread: Array<number | undefined>, layerReads: string[], expectedReads: string[] }> {
    // Paced, as a real link is: at full loopback speed every chunk of these small layers arrived
    // before the first write committed, so all were hashed from memory in any order.
    const layerReads: string[] = []
    let layerObjects = new Set<string>()
    const gateway = await node({
      maxUploadBytesPerSecond: 16 * 1024 * 1024,
      storeWrapper: store => withReadChunk(store, async (hash, index, options) => {
        if (layerObjects.has(hash)) layerReads.push(`${hash}:${index}`)
        return await store.readChunk(hash, index, options)
      }),
    })
    const image = await commitImage(gateway.store, [4, 6, 5])
    layerObjects = new Set(image.layers.map(l => l.object))
    const edge = await node({ storeWrapper: edgeStore })
    await connect(edge, gateway)
    // Chunks are stored in the order their writes finish (libuv's pool), so the order they
    // arrived in shows only in the hash: every chunk that came in order is hashed from memory.
    const reread = new Map<string, number | undefined>()
    edge.store.on('object:complete', ({ object, rereadBytes }) => { reread.set(object, rereadBytes) })

    // What the content sources do for a held tag: the manifest (here: from the gateway's store,
    // as the fleet hands it over) is in place before the order is read.
    const manifestBytes = await readFile(gateway.store.objectPath(image.manifest.object))
    let ordered: string[] = []
    await edge.swarm.pull(image.bundleId, {
      signal: AbortSignal.timeout(120_000),
      firstObjects: async () => {
        await ingestBlobBytes(edge.store, manifestBytes, { sha256: image.manifest.sha256 })
        ordered = await imageObjectOrder(edge.store, image.manifest.sha256)
        return ordered
      },
    })
    expect(ordered).toEqual([image.config.object, ...image.layers.map(l => l.object)])
    const expectedReads = image.layers.flatMap((l, i) => [...Array([4, 6, 5][i]).keys()].map(index => `${l.object}:${index}`))
    return { reread: image.layers.map(l => reread.get(l.object)), layerReads, expectedReads }
  }

  it('fetches every one of them in index order from the start, so each is hashed as it arrives, without reading its file back', async () => {
    const { reread, layerReads, expectedReads } = await pullWithOrder()
    expect(layerReads).toEqual(expectedReads)
    // Without the order, the pull fetched the layers' chunks rarest first in a random order, and
    // each layer's completion read back all but the chunks before the first one out of order.
    expect(reread).toEqual([0, 0, 0])
  })

  it('asks for no chunk of them before the order is set, however slowly the store says what it holds', async () => {
    // A disk as loaded as a CI run's (LevelDB and stat answers 250 ms late): the pull reads each
    // object's state before it fetches, and over the bundle's objects the scheduler's
    // tick (SCHEDULER_TICK_MS) comes in between. Registered object by object, the layers wanted
    // so far went out in the scheduler's random order before the order was set: a layer's first
    // chunks came after later ones, and its completion read 4 MiB back (a clean-clone CI run).
    const slowStore = (store: Store): SwarmStore => ({
      ...withReadChunk(store, async (hash, index, options) => await store.readChunk(hash, index, options)),
      objectState: async (hash) => {
        await new Promise(resolve => setTimeout(resolve, 250))
        return await store.objectState(hash)
      },
    })
    const { reread, layerReads, expectedReads } = await pullWithOrder(slowStore)
    expect(layerReads).toEqual(expectedReads)
    expect(reread).toEqual([0, 0, 0])
  })
})
