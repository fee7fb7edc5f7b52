import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { exportTree, verifyStore, type Store } from '../../src/store/index.js'
import { createPeerKey, createSwarm, type SwarmStore } from '../../src/swarm/index.js'
import { connect, nextEvent, patternBytes, seed, useSwarms, withReadChunk, writeTree } from './swarm-fixture.js'

const MiB = 1024 * 1024

/** A store that serves every chunk with its first byte flipped: a peer that lies on the real protocol. */
function lyingStore (store: Store): SwarmStore {
  return withReadChunk(store, async (hash, index, options) => {
    const bytes = Buffer.from(await store.readChunk(hash, index, options))
    bytes[0] = (bytes[0] ?? 0) ^ 0xff
    return bytes
  })
}

describe('swarm faults', () => {
  const { node, tempDir } = useSwarms()

  it('bans a peer that sends a chunk with a bad hash and completes the pull from others', async () => {
    const files = { 'layer.bin': patternBytes(8 * MiB, 11), 'small.txt': 'small\n' }
    const tree = await tempDir()
    await writeTree(tree, files)
    // The honest holder is a gateway, so the puller prefers the liar (an edge) for every chunk.
    const honest = await node({ gateway: true })
    const id = await seed(honest, tree, files)
    const liar = await node({ storeWrapper: lyingStore })
    await seed(liar, tree, files)
    const puller = await node()
    await connect(puller, liar)
    await connect(puller, honest)

    const banned = nextEvent(puller.swarm, 'peer:banned', e => e.peer === liar.swarm.peerId)
    const hungUp = nextEvent(liar.swarm, 'peer:disconnected', e => e.peer === puller.swarm.peerId)
    await puller.swarm.pull(id, { signal: AbortSignal.timeout(30_000) })
    const ban = await banned

    expect(ban.until).toBeGreaterThan(Date.now())
    expect(puller.swarm.stats().chunksRejected).toBeGreaterThanOrEqual(1)
    expect(puller.swarm.peers().find(p => p.id === liar.swarm.peerId)?.banned).toBe(true)
    const report = await verifyStore(puller.store, { bundleId: id })
    expect(report.ok).toBe(true)
    const out = join(await tempDir(), 'out')
    await exportTree(puller.store, id, out)
    expect((await readFile(join(out, 'layer.bin'))).equals(files['layer.bin'])).toBe(true)
    // The puller hung up on the liar, and the ban holds in both directions.
    await hungUp
    await expect(puller.swarm.dial(liar.address)).rejects.toThrow()
    // The liar may finish its half of a handshake, but the puller's gater drops it at once.
    const dropped = nextEvent(liar.swarm, 'peer:disconnected', e => e.peer === puller.swarm.peerId)
    const redial = await liar.swarm.dial(puller.address).then(() => 'connected', () => 'refused')
    if (redial === 'connected') await dropped
    expect(puller.swarm.peers().find(p => p.id === liar.swarm.peerId)?.connected).toBe(false)
  })

  it('finishes a pull from the remaining peers when a serving peer stops mid-transfer', async () => {
    const files = { 'layer.bin': patternBytes(24 * MiB, 12) }
    const tree = await tempDir()
    await writeTree(tree, files)
    // Capped uploads, so the transfer lasts long enough to lose a peer in the middle.
    const a = await node({ maxUploadBytesPerSecond: 12 * MiB })
    const b = await node({ maxUploadBytesPerSecond: 12 * MiB })
    const id = await seed(a, tree, files)
    await seed(b, tree, files)
    const puller = await node()
    await connect(puller, a)
    await connect(puller, b)

    const pulled = puller.swarm.pull(id, { signal: AbortSignal.timeout(40_000) })
    await nextEvent(puller.swarm, 'chunk:received', e => e.peer === b.swarm.peerId)
    await b.swarm.stop()
    await pulled

    const out = join(await tempDir(), 'out')
    await exportTree(puller.store, id, out)
    expect((await readFile(join(out, 'layer.bin'))).equals(files['layer.bin'])).toBe(true)
    expect(puller.swarm.stats().perPeer[a.swarm.peerId]?.chunksDownloaded ?? 0).toBeGreaterThan(0)
  })

  it('keeps a pull waiting while no holder is connected, until its signal aborts it', async () => {
    const a = await node()
    const id = await seed(a, await tempDir(), { 'f.bin': patternBytes(2 * MiB, 13) })
    const puller = await node()
    await connect(puller, a)
    // The manifest arrives, then the only holder leaves before a chunk is asked for.
    await puller.store.addBundle((await a.store.getEncodedBundle(id)) as Uint8Array, { expectedId: id })
    await a.swarm.stop()
    const controller = new AbortController()
    const pulled = puller.swarm.pull(id, { signal: controller.signal })
    controller.abort(new Error('the test gave up'))
    await expect(pulled).rejects.toThrow('the test gave up')
  })

  it('fails to start on an address in use and leaves nothing running', async () => {
    const a = await node()
    const port = a.address.split('/')[4] ?? ''
    const store = (await node()).store
    const clash = createSwarm({ store }, { privateKey: await createPeerKey(), listen: [`/ip4/127.0.0.1/tcp/${port}`], mdns: false })
    await expect(clash.start()).rejects.toThrow()
    expect(clash.isRunning).toBe(false)
    expect(() => clash.addresses()).toThrow(expect.objectContaining({ code: 'SWARM_NOT_STARTED' }))
  })

  it('fails with BundleNotFoundError when no peer has the manifest', async () => {
    const a = await node()
    const puller = await node({ manifestSearchTimeoutMs: 1_000 })
    await connect(puller, a)
    await expect(puller.swarm.pull('0'.repeat(64))).rejects.toMatchObject({ code: 'SWARM_BUNDLE_NOT_FOUND' })
  })
})
