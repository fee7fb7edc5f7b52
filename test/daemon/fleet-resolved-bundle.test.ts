import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Daemon } from '../../src/daemon/index.js'
import { commitBlobBundle, pushTree, type Store } from '../../src/store/index.js'
import { registryOf, useStartedDaemons, type TestDaemon } from '../helpers/daemon-in-process.js'
import { until } from '../helpers/until.js'
import { unnamedImage, type WrittenImage } from './image-layout.js'

const MIB = 1024 * 1024
const LAYER_BYTES = 24 * MIB

/** Whether every object of `bundleId` is whole in `store`. */
async function complete (store: Store, bundleId: string): Promise<true | undefined> {
  const summary = (await store.listBundles()).find(b => b.id === bundleId)
  return summary?.complete === true ? true : undefined
}

/**
 * Issue 8, the fleet-resolution race: containerd asks an edge for a tag moments before the
 * gateway's signed ref record reaches it, so a trusted peer resolves the tag. The image's
 * bundle must then move as it does for a recorded tag: one pull, started by the manifest
 * request, and no second bundle assembled from the blobs (which read the layer back).
 *
 * The record is held back by giving the gateway's ref no record at first (a local ref, which is
 * never signed nor sent: RefTarget.local); it is published once the edge's pull is under way.
 */
describe('an edge answering a tag the fleet resolves before the gateway\'s record comes', () => {
  const daemons = useStartedDaemons('fleet-resolved')
  let image: WrittenImage

  beforeAll(async () => {
    image = await unnamedImage(join(daemons.work, 'image'), 'registry.example.com/race/app:1.0', LAYER_BYTES)
  }, 120_000)

  /**
   * A gateway holding an image's bundle and a one-blob bundle of its config, as it would have
   * moved the config for a peer before the image was a bundle (the smallest bundle naming it, so
   * a digest question names that one), and an edge trusting it that folds at once.
   */
  async function withConfigBundle (name: string): Promise<{ tagged: WrittenImage, gateway: Daemon, edge: TestDaemon, bundleId: string, blobBundle: string, removed: string[] }> {
    const tagged = await unnamedImage(join(daemons.work, name), `registry.example.com/race/${name}:1.0`, 2 * MIB)
    const gateway = (await daemons.start(`gateway-${name}`, { gateway: true })).daemon
    const bundleId = (await pushTree(gateway.store, tagged.dir)).bundleId
    const configHex = tagged.configDigest.slice('sha256:'.length)
    const config = await gateway.store.wholeObjectBySha256(configHex)
    if (config === undefined) throw new Error('the gateway does not hold the config it was pushed')
    const blobBundle = (await commitBlobBundle(gateway.store, { sha256: configHex, object: config.hash, size: config.size })).bundleId
    const edge = await daemons.start(`edge-${name}`, { bootstrap: [gateway.swarm.addresses()[0] ?? ''], trust: [gateway.swarm.peerId] }, { foldBlobBundlesAfterMs: 0 })
    const removed: string[] = []
    edge.daemon.store.on('bundle:removed', ({ id }) => { removed.push(id) })
    return { tagged, gateway, edge, bundleId, blobBundle, removed }
  }

  /**
   * A gateway holding the bundles of two images, the tag's (`right`) and another one (`wrong`),
   * and an edge trusting it that records every chunk it stores of the other image's layer.
   */
  async function withWrongBundle (name: string): Promise<{ tagged: WrittenImage, unrelated: WrittenImage, gateway: TestDaemon, edge: TestDaemon, right: string, wrong: string, unrelatedLayer: string, unrelatedChunks: number[] }> {
    const tagged = await unnamedImage(join(daemons.work, name), `registry.example.com/race/${name}:1.0`, 2 * MIB)
    const unrelated = await unnamedImage(join(daemons.work, `${name}-unrelated`), `registry.example.com/race/${name}-unrelated:1.0`, 2 * MIB)
    const gateway = await daemons.start(`gateway-${name}`, { gateway: true })
    const right = (await pushTree(gateway.daemon.store, tagged.dir)).bundleId
    const wrong = (await pushTree(gateway.daemon.store, unrelated.dir)).bundleId
    const edge = await daemons.start(`edge-${name}`, { bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId] })
    const unrelatedLayer = await gateway.daemon.store.objectBySha256(unrelated.layerDigest.slice('sha256:'.length))
    if (unrelatedLayer === undefined) throw new Error('the gateway does not index the layer it was pushed')
    const unrelatedChunks: number[] = []
    edge.daemon.store.on('chunk:stored', ({ object, index }) => { if (object === unrelatedLayer) unrelatedChunks.push(index) })
    return { tagged, unrelated, gateway, edge, right, wrong, unrelatedLayer, unrelatedChunks }
  }

  /** The edge's pull of the image's bundle completes, the one-blob bundle folds into it (before: it stayed: only an image made here scheduled the fold), and the config still reads. */
  async function expectFolded ({ tagged, edge, bundleId, blobBundle, removed }: Omit<Awaited<ReturnType<typeof withConfigBundle>>, 'gateway'>, configUrl: string): Promise<void> {
    const pulled = (line: Record<string, unknown>): boolean => line.msg === 'pull completed' && line.bundleId === bundleId
    await until('the pull to complete', async () => edge.logs.some(pulled) ? true : undefined)
    await until('the one-blob bundle folded', async () => removed.includes(blobBundle) ? true : undefined, 20_000)
    expect(await edge.daemon.store.bundleIds()).toEqual([bundleId])
    const again = await fetch(configUrl)
    expect(`sha256:${createHash('sha256').update(Buffer.from(await again.arrayBuffer())).digest('hex')}`).toBe(tagged.configDigest)
  }

  it('pulls the image\'s bundle once from the manifest request, makes no bundle of its own, and takes the record that comes mid-pull', async () => {
    // Paced, so the pull is still under way when the record comes (~6 s for the layer).
    const gateway = await daemons.start('gateway', { gateway: true, maxUploadBytesPerSecond: 4 * MIB })
    const pushed = await pushTree(gateway.daemon.store, image.dir)
    expect(pushed.refs).toEqual([])
    const bundleId = pushed.bundleId
    await gateway.daemon.store.setRef({ ref: image.ref, bundleId, manifestDigest: image.manifestDigest, local: true, at: Date.now() })

    const edge = await daemons.start('edge', { bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId] })
    const layerObject = await gateway.daemon.store.objectBySha256(image.layerDigest.slice('sha256:'.length))
    if (layerObject === undefined) throw new Error('the gateway does not index the layer it was pushed')
    const stored = new Map<number, number>()
    edge.daemon.store.on('chunk:stored', ({ object, index }) => { if (object === layerObject) stored.set(index, (stored.get(index) ?? 0) + 1) })

    // containerd's tag request, asked again until the edge is connected to its gateway.
    const base = `${registryOf(edge.daemon)}/v2/race/app`
    const ns = '?ns=registry.example.com'
    const digest = await until('the edge to resolve the tag', async () => {
      const res = await fetch(`${base}/manifests/1.0${ns}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      return res.status === 200 ? res.headers.get('docker-content-digest') ?? '' : undefined
    })
    expect(digest).toBe(image.manifestDigest)
    expect(await edge.daemon.store.getRef(image.ref).then(r => r?.publisher)).toBeUndefined()
    expect(edge.logs.some(line => line.msg === 'tag resolved by the fleet')).toBe(true)

    // The manifest request alone started the bundle's pull (before: nothing moved until a blob
    // was asked for, each through its own lookup).
    await until('the gateway\'s bundle described on the edge', async () => await edge.daemon.store.getBundle(bundleId) !== undefined ? true : undefined, 20_000)
    await until('the tag to point at the pulled bundle', async () => (await edge.daemon.store.getRef(image.ref))?.bundleId === bundleId ? true : undefined)

    // The record comes mid-pull: it takes the tag over and starts no second pull.
    await gateway.daemon.swarm.publishRefs([{ ref: image.ref, bundleId, manifestDigest: image.manifestDigest }])
    await until('the gateway\'s record on the edge', async () => (await edge.daemon.store.getRef(image.ref))?.publisher === gateway.daemon.swarm.peerId ? true : undefined)
    // containerd asks again, now with the record here, and reads the image.
    const again = await fetch(`${base}/manifests/1.0${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(again.status).toBe(200)
    const layer = await fetch(`${base}/blobs/${image.layerDigest}${ns}`)
    expect(layer.status).toBe(200)
    expect(`sha256:${createHash('sha256').update(Buffer.from(await layer.arrayBuffer())).digest('hex')}`).toBe(image.layerDigest)
    expect((await fetch(`${base}/blobs/${image.configDigest}${ns}`)).status).toBe(200)

    const pulled = (line: Record<string, unknown>): boolean => line.msg === 'pull completed' && line.bundleId === bundleId
    await until('the pull to complete', async () => edge.logs.some(pulled) ? true : undefined, 60_000)
    expect(await complete(edge.daemon.store, bundleId)).toBe(true)
    // One bundle for the image, the gateway's; one pull of it (a second one under way at the
    // same time would have logged its own completion); each layer chunk stored once.
    expect(await edge.daemon.store.bundleIds()).toEqual([bundleId])
    expect(edge.logs.filter(pulled)).toHaveLength(1)
    expect(edge.logs.filter(line => line.msg === 'image made a bundle')).toEqual([])
    expect(stored.size).toBe(LAYER_BYTES / MIB)
    expect([...stored.values()].every(n => n === 1)).toBe(true)
    expect(await edge.daemon.store.getRef(image.ref)).toMatchObject({ bundleId, publisher: gateway.daemon.swarm.peerId })
  }, 180_000)
  it('does not point the tag at a bundle the answer names that does not hold the tag\'s manifest, and still serves the image', async () => {
    const { tagged, unrelated, gateway, edge, wrong, unrelatedLayer, unrelatedChunks } = await withWrongBundle('other')
    // A trusted peer whose ref for the tag names this manifest and another image's bundle.
    await gateway.daemon.store.setRef({ ref: tagged.ref, bundleId: wrong, manifestDigest: tagged.manifestDigest, local: true, at: Date.now() })

    const base = `${registryOf(edge.daemon)}/v2/race/other`
    const ns = '?ns=registry.example.com'
    const manifest = await until('the edge to resolve the tag', async () => {
      const res = await fetch(`${base}/manifests/1.0${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      return res.status === 200 ? Buffer.from(await res.arrayBuffer()) : undefined
    })
    expect(`sha256:${createHash('sha256').update(manifest).digest('hex')}`).toBe(tagged.manifestDigest)
    await until('the named bundle judged', async () => edge.logs.find(line => line.msg === 'a peer named a bundle for a tag that does not hold the tag\'s manifest: the image is made a bundle here from its blobs'))
    // The manifest is still served under its digest, and the image's blobs come, blob by blob.
    const byDigest = await fetch(`${base}/manifests/${tagged.manifestDigest}${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(byDigest.status).toBe(200)
    expect(Buffer.from(await byDigest.arrayBuffer()).equals(manifest)).toBe(true)
    for (const digest of [tagged.configDigest, tagged.layerDigest]) {
      const blob = await fetch(`${base}/blobs/${digest}${ns}`)
      expect(blob.status).toBe(200)
      expect(`sha256:${createHash('sha256').update(Buffer.from(await blob.arrayBuffer())).digest('hex')}`).toBe(digest)
    }
    // The tag never pointed at the other image's bundle; the image was made a bundle here.
    const made = await until('the image made a bundle on the edge', async () => edge.logs.find(line => line.msg === 'image made a bundle'))
    const ref = await edge.daemon.store.getRef(tagged.ref)
    expect(ref?.bundleId).toBe(made.bundleId)
    expect(ref?.bundleId).not.toBe(wrong)
    // The named bundle was judged on its description: its pull stopped before any chunk of the
    // other image came (before: the whole other image was pulled all the same).
    const stopped = await until('the named bundle\'s pull stopped', async () => edge.logs.find(line => line.msg === 'pull stopped before its first chunk: the bundle is not what it was asked for' && line.bundleId === wrong))
    expect(unrelatedChunks).toEqual([])
    expect(await edge.daemon.store.hasObject(unrelatedLayer)).toBe(false)
    expect(edge.logs.filter(line => line.msg === 'pull completed' && line.bundleId === wrong)).toEqual([])
    // What the stopped pull added is gone (before: the other image's description stayed, a bundle
    // of none of its objects, and the digests it filed pointed at objects nothing here held).
    expect(stopped.description).toBe('removed')
    expect(await edge.daemon.store.getBundle(wrong)).toBeUndefined()
    expect(await edge.daemon.store.bundleIds()).not.toContain(wrong)
    for (const digest of [unrelated.manifestDigest, unrelated.configDigest, unrelated.layerDigest]) {
      expect(await edge.daemon.store.objectBySha256(digest.slice('sha256:'.length))).toBeUndefined()
    }
    // The tag's own manifest is indexed under its digest still.
    expect(await edge.daemon.store.wholeObjectBySha256(tagged.manifestDigest.slice('sha256:'.length))).toBeDefined()
  }, 120_000)

  it('stops the pull of a bundle a signed record names that does not hold the tag\'s manifest, saying what the record claimed and what the bundle held', async () => {
    const { tagged, gateway, edge, right, wrong, unrelatedLayer, unrelatedChunks } = await withWrongBundle('recorded')

    // The publisher's mistake: its signed record names the tag's manifest and the other image's bundle.
    await gateway.daemon.store.setRef({ ref: tagged.ref, bundleId: wrong, manifestDigest: tagged.manifestDigest, local: true, at: Date.now() })
    await gateway.daemon.swarm.publishRefs([{ ref: tagged.ref, bundleId: wrong, manifestDigest: tagged.manifestDigest }])
    await until('the gateway\'s record on the edge', async () => (await edge.daemon.store.getRef(tagged.ref))?.publisher === gateway.daemon.swarm.peerId ? true : undefined)

    const base = `${registryOf(edge.daemon)}/v2/race/recorded`
    const ns = '?ns=registry.example.com'
    const res = await fetch(`${base}/manifests/1.0${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(res.status).toBe(200)
    expect(`sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`).toBe(tagged.manifestDigest)
    const judged = await until('the record\'s bundle judged', async () => edge.logs.find(line => line.msg === 'a signed ref record names a bundle that does not hold the tag\'s manifest: its pull stopped before its first chunk'))
    expect(judged).toMatchObject({
      ref: tagged.ref,
      claimed: { bundleId: wrong, manifestDigest: tagged.manifestDigest, publisher: gateway.daemon.swarm.peerId },
      held: `no blob under ${tagged.manifestDigest}`,
      bundleBlobs: 3,
    })
    const stopped = await until('the pull stopped', async () => edge.logs.find(line => line.msg === 'pull stopped before its first chunk: the bundle is not what it was asked for' && line.bundleId === wrong))
    // The record asked for it: its description stays, its ref too.
    expect(stopped.description).toBe('kept (a ref)')
    expect(await edge.daemon.store.getRef(tagged.ref)).toMatchObject({ bundleId: wrong, publisher: gateway.daemon.swarm.peerId })
    // The image is still served, blob by blob from the bundle that holds it (before: the other image was pulled whole).
    for (const digest of [tagged.manifestDigest, tagged.configDigest, tagged.layerDigest]) {
      const kind = digest === tagged.manifestDigest ? 'manifests' : 'blobs'
      const blob = await fetch(`${base}/${kind}/${digest}${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      expect(blob.status).toBe(200)
      expect(`sha256:${createHash('sha256').update(Buffer.from(await blob.arrayBuffer())).digest('hex')}`).toBe(digest)
    }
    expect(await edge.daemon.store.bundleIds()).toContain(right)
    expect(unrelatedChunks).toEqual([])
    expect(await edge.daemon.store.hasObject(unrelatedLayer)).toBe(false)
    expect(edge.logs.filter(line => line.msg === 'pull completed' && line.bundleId === wrong)).toEqual([])
  }, 120_000)

  it('folds a one-blob bundle fetched before the bundle was named into the pulled bundle, and makes no bundle for an answer that named none', async () => {
    const { tagged, gateway, edge, bundleId, blobBundle, removed } = await withConfigBundle('folded')
    // First the gateway's ref names no bundle described there (as a gateway that resolved the
    // tag through its upstream only): its answer names none.
    await gateway.store.setRef({ ref: tagged.ref, bundleId: '0'.repeat(64), manifestDigest: tagged.manifestDigest, local: true, at: Date.now() })

    const base = `${registryOf(edge.daemon)}/v2/race/folded`
    const ns = '?ns=registry.example.com'
    const resolve = async (): Promise<void> => {
      await until('the edge to resolve the tag', async () => {
        const res = await fetch(`${base}/manifests/1.0${ns}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
        return res.status === 200 ? true : undefined
      })
    }
    await resolve()
    expect(edge.logs.filter(line => line.msg === 'tag resolved by the fleet').map(line => line.bundleId)).toEqual([undefined])
    // The config asked for before any answer named the image's bundle: its one-blob bundle comes.
    const configRes = await fetch(`${base}/blobs/${tagged.configDigest}${ns}`)
    expect(configRes.status).toBe(200)
    await configRes.arrayBuffer()
    expect(await edge.daemon.store.getBundle(blobBundle)).toBeDefined()

    // Now the gateway's ref names its bundle; containerd asks the tag again (no ref here yet).
    await gateway.store.setRef({ ref: tagged.ref, bundleId, manifestDigest: tagged.manifestDigest, local: true, at: Date.now() })
    await resolve()
    await until('the tag to point at the pulled bundle', async () => (await edge.daemon.store.getRef(tagged.ref))?.bundleId === bundleId ? true : undefined)
    // The one-blob bundle folds into the whole image's bundle; the config still reads.
    await expectFolded({ tagged, edge, bundleId, blobBundle, removed }, `${base}/blobs/${tagged.configDigest}${ns}`)
    // The first answer's pending image is gone: nothing was made a bundle here (before: the
    // assembler made the image a second bundle once the pull brought its layer).
    expect(edge.logs.filter(line => line.msg === 'image made a bundle')).toEqual([])
    expect(await edge.daemon.store.getRef(tagged.ref)).toMatchObject({ bundleId })
  }, 120_000)

  it('folds a one-blob bundle fetched before a record came into the bundle the record names, once the held path pulled it', async () => {
    const { tagged, gateway, edge, bundleId, blobBundle, removed } = await withConfigBundle('held')

    // The config asked for by digest before the tag is known here: its one-blob bundle comes.
    const base = `${registryOf(edge.daemon)}/v2/race/held`
    const ns = '?ns=registry.example.com'
    await until('the edge to fetch the config', async () => {
      const res = await fetch(`${base}/blobs/${tagged.configDigest}${ns}`)
      await res.arrayBuffer()
      return res.status === 200 ? true : undefined
    })
    expect(await edge.daemon.store.getBundle(blobBundle)).toBeDefined()

    // The gateway's record comes; the tag request takes the held path and pulls its bundle.
    await gateway.store.setRef({ ref: tagged.ref, bundleId, manifestDigest: tagged.manifestDigest, local: true, at: Date.now() })
    await gateway.swarm.publishRefs([{ ref: tagged.ref, bundleId, manifestDigest: tagged.manifestDigest }])
    await until('the gateway\'s record on the edge', async () => (await edge.daemon.store.getRef(tagged.ref))?.publisher === gateway.swarm.peerId ? true : undefined)
    const res = await fetch(`${base}/manifests/1.0${ns}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(res.status).toBe(200)
    expect(edge.logs.filter(line => line.msg === 'tag resolved by the fleet')).toEqual([])
    // The one-blob bundle folds into the whole image's bundle; the config still reads.
    await expectFolded({ tagged, edge, bundleId, blobBundle, removed }, `${base}/blobs/${tagged.configDigest}${ns}`)
  }, 120_000)
})
