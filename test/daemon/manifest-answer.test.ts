import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { enforceQuota, pushTree, type Store } from '../../src/store/index.js'
import { registryOf, useStartedDaemons } from '../helpers/daemon-in-process.js'
import { until } from '../helpers/until.js'
import { within } from '../helpers/within.js'
import { unnamedImage } from './image-layout.js'

const MIB = 1024 * 1024
const ACCEPT = { accept: 'application/vnd.oci.image.manifest.v1+json' }

/**
 * Issue 8's start: an edge answers a recorded tag's HEAD from the manifest bytes its neighbour
 * handed over (checked against the record's digest) while its store still writes them, so the
 * write (file, fdatasync, LevelDB: ~50 ms at load) is off containerd's critical path. The
 * store's write is held by a hook until the test lets it go: before, the HEAD waited for it.
 * containerd's GET of the digest right after the HEAD must still be served.
 */
/**
 * Holds the store's write of `object` (a manifest handed over) at its look at the object before
 * the rename, until the returned function lets it go: only the write's look (from
 * ingestBlobFile), not a pull's or a read's. The write's file is fdatasynced by then.
 */
function holdManifestWrite (store: Store, object: string | undefined): () => void {
  let letGo: () => void = () => {}
  const held = new Promise<void>(resolve => { letGo = resolve })
  const hasObject = store.hasObject.bind(store)
  store.hasObject = async (hash: string): Promise<boolean> => {
    if (hash === object && (new Error().stack ?? '').includes('ingestBlobFile')) await held
    return await hasObject(hash)
  }
  return letGo
}

describe('a recorded tag\'s manifest handed over by the fleet', () => {
  const daemons = useStartedDaemons('manifest-answer')

  it('is answered before the store has written it, and so are a GET of the tag and one of its digest', async () => {
    const image = await unnamedImage(join(daemons.work, 'image'), 'registry.example.com/answer/app:1.0', MIB)
    const gateway = (await daemons.start('gateway', { gateway: true })).daemon
    const { bundleId } = await pushTree(gateway.store, image.dir)
    const manifestHex = image.manifestDigest.slice('sha256:'.length)
    const manifestObject = await gateway.store.objectBySha256(manifestHex)
    if (manifestObject === undefined) throw new Error('the gateway does not index the manifest it was pushed')
    const edge = (await daemons.start('edge', { bootstrap: [gateway.swarm.addresses()[0] ?? ''], trust: [gateway.swarm.peerId] })).daemon
    await gateway.store.setRef({ ref: image.ref, bundleId, manifestDigest: image.manifestDigest, local: true, at: Date.now() })
    await gateway.swarm.publishRefs([{ ref: image.ref, bundleId, manifestDigest: image.manifestDigest }])
    await until('the gateway\'s record on the edge', async () => (await edge.store.getRef(image.ref))?.publisher === gateway.swarm.peerId ? true : undefined)

    // The hook: the store's write of the manifest stops where it asks whether the object exists
    // (after the staged file's fdatasync, before the rename and the LevelDB batch) until let go;
    // so does every other look at that object meanwhile (the bundle's pull, a read).
    const events: string[] = []
    let letGo: () => void = () => {}
    const held = new Promise<void>(resolve => { letGo = resolve })
    const hasObject = edge.store.hasObject.bind(edge.store)
    edge.store.hasObject = async (object: string): Promise<boolean> => {
      // No write of the manifest gets past this before the test lets it go.
      if (object === manifestObject && !events.includes('write let go')) await held
      return await hasObject(object)
    }

    const base = `${registryOf(edge)}/v2/answer/app`
    const ns = '?ns=registry.example.com'
    const head = await within(fetch(`${base}/manifests/1.0${ns}`, { method: 'HEAD', headers: ACCEPT }), 20_000, 'the HEAD answered')
    events.push('HEAD answered')
    expect(head.status).toBe(200)
    expect(head.headers.get('docker-content-digest')).toBe(image.manifestDigest)
    // A GET of the tag meanwhile: the same bytes, from memory.
    const byTag = await within(fetch(`${base}/manifests/1.0${ns}`, { headers: ACCEPT }), 20_000, 'the GET of the tag answered')
    events.push('GET of the tag answered')
    expect(`sha256:${createHash('sha256').update(Buffer.from(await byTag.arrayBuffer())).digest('hex')}`).toBe(image.manifestDigest)
    // containerd's GET of the digest, right after: the same bytes, from memory too (the bundle's
    // description may name the object already, and the store's look at it waits for the write).
    const byDigest = await within(fetch(`${base}/manifests/${image.manifestDigest}${ns}`, { headers: ACCEPT }), 20_000, 'the GET of the digest answered')
    events.push('GET of the digest answered')
    expect(byDigest.status).toBe(200)
    expect(`sha256:${createHash('sha256').update(Buffer.from(await byDigest.arrayBuffer())).digest('hex')}`).toBe(image.manifestDigest)
    events.push('write let go')
    letGo()
    expect(events).toEqual(['HEAD answered', 'GET of the tag answered', 'GET of the digest answered', 'write let go'])
    // Durability follows: the store holds the manifest, and a GET of the digest reads it from there.
    await until('the manifest written', async () => await edge.store.wholeObjectBySha256(manifestHex) !== undefined ? true : undefined)
    const stored = await fetch(`${base}/manifests/${image.manifestDigest}${ns}`, { headers: ACCEPT })
    expect(`sha256:${createHash('sha256').update(Buffer.from(await stored.arrayBuffer())).digest('hex')}`).toBe(image.manifestDigest)
  }, 120_000)

  it('is answered before the store has written it when the fleet resolves the tag (no record yet), and so is a GET of its digest', async () => {
    const image = await unnamedImage(join(daemons.work, 'fleet-image'), 'registry.example.com/answer/fleet:1.0', MIB)
    const gateway = (await daemons.start('fleet-gateway', { gateway: true })).daemon
    const { bundleId } = await pushTree(gateway.store, image.dir)
    // The gateway's ref and no record: the edge asks the fleet what the tag names (RefTarget.local is never sent).
    await gateway.store.setRef({ ref: image.ref, bundleId, manifestDigest: image.manifestDigest, local: true, at: Date.now() })
    const manifestObject = await gateway.store.objectBySha256(image.manifestDigest.slice('sha256:'.length))
    const edge = (await daemons.start('fleet-edge', { bootstrap: [gateway.swarm.addresses()[0] ?? ''], trust: [gateway.swarm.peerId] })).daemon
    await until('the edge connected to its gateway', async () => edge.swarm.peers().some(p => p.connected) ? true : undefined)

    const letGo = holdManifestWrite(edge.store, manifestObject)
    const base = `${registryOf(edge)}/v2/answer/fleet`
    const ns = '?ns=registry.example.com'
    try {
      const head = await within(fetch(`${base}/manifests/1.0${ns}`, { method: 'HEAD', headers: ACCEPT }), 20_000, 'the HEAD answered')
      expect(head.status).toBe(200)
      expect(head.headers.get('docker-content-digest')).toBe(image.manifestDigest)
      const byDigest = await within(fetch(`${base}/manifests/${image.manifestDigest}${ns}`, { headers: ACCEPT }), 20_000, 'the GET of the digest answered')
      expect(`sha256:${createHash('sha256').update(Buffer.from(await byDigest.arrayBuffer())).digest('hex')}`).toBe(image.manifestDigest)
      expect(await edge.store.wholeObjectBySha256(image.manifestDigest.slice('sha256:'.length))).toBeUndefined()
    } finally {
      letGo()
    }
    await until('the manifest written', async () => await edge.store.wholeObjectBySha256(image.manifestDigest.slice('sha256:'.length)) !== undefined ? true : undefined)
  }, 120_000)

  it('orders the tag\'s bundle from the handed-over bytes, before the store has written them', async () => {
    const image = await unnamedImage(join(daemons.work, 'order-image'), 'registry.example.com/answer/order:1.0', 6 * MIB, { smallLayerBytes: 2 * MIB })
    // Paced, as a real link is: the order is the edge's to choose, and what the gateway reads is what the edge asked for.
    const gateway = (await daemons.start('order-gateway', { gateway: true, maxUploadBytesPerSecond: 16 * MIB })).daemon
    const { bundleId } = await pushTree(gateway.store, image.dir)
    const manifestObject = await gateway.store.objectBySha256(image.manifestDigest.slice('sha256:'.length))
    const layers = await Promise.all([image.layerDigest, image.smallLayerDigest ?? ''].map(async digest => await gateway.store.objectBySha256(digest.slice('sha256:'.length))))
    if (manifestObject === undefined || layers.includes(undefined)) throw new Error('the gateway does not index what it was pushed')
    const reads: string[] = []
    const readChunk = gateway.store.readChunk.bind(gateway.store)
    gateway.store.readChunk = async (hash, index, options) => {
      if (layers.includes(hash)) reads.push(`${hash}:${index}`)
      return await readChunk(hash, index, options)
    }
    const edge = await daemons.start('order-edge', { bootstrap: [gateway.swarm.addresses()[0] ?? ''], trust: [gateway.swarm.peerId] })
    await gateway.store.setRef({ ref: image.ref, bundleId, manifestDigest: image.manifestDigest, local: true, at: Date.now() })
    await gateway.swarm.publishRefs([{ ref: image.ref, bundleId, manifestDigest: image.manifestDigest }])
    await until('the gateway\'s record on the edge', async () => (await edge.daemon.store.getRef(image.ref))?.publisher === gateway.swarm.peerId ? true : undefined)

    // Held until the pull is over.
    const letGo = holdManifestWrite(edge.daemon.store, manifestObject)
    try {
      const head = await fetch(`${registryOf(edge.daemon)}/v2/answer/order/manifests/1.0?ns=registry.example.com`, { method: 'HEAD', headers: ACCEPT })
      expect(head.status).toBe(200)
      await until('the image\'s pull completed', async () => edge.logs.find(line => line.msg === 'pull completed' && line.bundleId === bundleId), 60_000)
    } finally {
      letGo()
    }
    // The layers were asked for in the manifest's order, each in chunk order: the order came from
    // the bytes the gateway handed over. Before, it was read from the store once the write ended
    // (here: never, within the 2 s the pull waits), and the layers came in the swarm's own order.
    const [big, small] = layers
    expect(reads).toEqual([...[0, 1, 2, 3, 4, 5].map(i => `${big}:${i}`), `${small}:0`, `${small}:1`])
  }, 120_000)

  it('keeps the tag\'s bundle from the quota for the read grace, as a stored manifest\'s read does', async () => {
    const image = await unnamedImage(join(daemons.work, 'grace-image'), 'registry.example.com/answer/grace:1.0', MIB)
    const gateway = (await daemons.start('grace-gateway', { gateway: true })).daemon
    const { bundleId } = await pushTree(gateway.store, image.dir)
    // A quota the edge's pinned 3 MiB bundle and the tag's 1 MiB image do not fit in together:
    // once the image is whole, the quota evicts it unless a client's read holds it.
    const edge = await daemons.start('grace-edge', { bootstrap: [gateway.swarm.addresses()[0] ?? ''], trust: [gateway.swarm.peerId], quotaBytes: 3.5 * MIB })
    const pinned = await unnamedImage(join(daemons.work, 'grace-pinned'), 'registry.example.com/answer/pinned:1.0', 3 * MIB)
    await edge.daemon.store.setPinned((await pushTree(edge.daemon.store, pinned.dir)).bundleId, true)
    await gateway.store.setRef({ ref: image.ref, bundleId, manifestDigest: image.manifestDigest, local: true, at: Date.now() })
    await gateway.swarm.publishRefs([{ ref: image.ref, bundleId, manifestDigest: image.manifestDigest }])
    await until('the gateway\'s record on the edge', async () => (await edge.daemon.store.getRef(image.ref))?.publisher === gateway.swarm.peerId ? true : undefined)

    // containerd's HEAD of the tag, answered from the bytes the gateway handed over (the
    // manifest is not here); its bundle's pull starts with it.
    const base = `${registryOf(edge.daemon)}/v2/answer/grace`
    const head = await fetch(`${base}/manifests/1.0?ns=registry.example.com`, { method: 'HEAD', headers: ACCEPT })
    expect(head.status).toBe(200)
    await until('the image\'s pull completed', async () => edge.logs.find(line => line.msg === 'pull completed' && line.bundleId === bundleId))
    // The quota's pass after the pull (the keeper's own may have run already): the image stays.
    // Before, it was evicted here, and containerd's next GETs found nothing.
    expect(await enforceQuota(edge.daemon.store)).toEqual([])
    expect(edge.logs.filter(line => line.msg === 'evicted bundles to stay within the quota')).toEqual([])
    expect(await edge.daemon.store.getBundle(bundleId)).toBeDefined()
    expect(await edge.daemon.store.wholeObjectBySha256(image.layerDigest.slice('sha256:'.length))).toBeDefined()
  }, 120_000)
})
