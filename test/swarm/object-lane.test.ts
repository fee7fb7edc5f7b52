import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { exportTree, type Store } from '../../src/store/index.js'
import { connect, nextEvent, patternBytes, seed, useSwarms, withReadChunk, type TestNode } from './swarm-fixture.js'

const MiB = 1024 * 1024

/** A holder's store reads, as a hostile one does them. */
type ReadChunkWrap = (store: Store, hash: string, index: number, options?: { signal?: AbortSignal, into?: Uint8Array }) => Promise<Buffer>

/** The object of `path` in a bundle `node` holds. */
async function objectOf (node: TestNode, bundleId: string, path: string): Promise<string> {
  const object = (await node.store.getBundle(bundleId))?.entries.find(entry => entry.path === path)?.checksum
  if (object === undefined) throw new Error(`${path} is not in bundle ${bundleId}`)
  return object
}

/** Pulls `bundleId` into `asker` while a client waits on `object` (as the registry API does for a blob), and checks every file's bytes. */
async function pullWaiting (asker: TestNode, bundleId: string, object: string, files: Record<string, Buffer | string>, out: string): Promise<void> {
  const release = asker.swarm.waitFor(object)
  try {
    await asker.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
  } finally {
    release()
  }
  await exportTree(asker.store, bundleId, out)
  for (const [path, content] of Object.entries(files)) expect((await readFile(join(out, path))).equals(Buffer.from(content)), path).toBe(true)
}

describe('objects whole over an object lane (object-streams.ts)', () => {
  const { node, tempDir } = useSwarms()

  it('streams an object a client waits on from a neighbour that holds it whole, every chunk checked, over one lane', async () => {
    const holder = await node()
    const files = { 'layer.bin': patternBytes(24 * MiB + 321, 21), 'small.txt': 'whole\n' }
    const id = await seed(holder, await tempDir(), files)
    const layer = await objectOf(holder, id, './layer.bin')
    const asker = await node()
    await connect(asker, holder)
    await pullWaiting(asker, id, layer, files, join(await tempDir(), 'out'))

    const stats = asker.swarm.stats()
    expect(stats.objectStreams).toEqual({ started: 1, completed: 1, fellBack: 0 })
    // The layer's bytes came over a lane (the object lane; the small file over the chunk lane or libp2p).
    expect(stats.lanes.bytesReceived).toBeGreaterThanOrEqual(24 * MiB)
    expect(stats.chunksRejected).toBe(0)
    expect((await asker.store.objectState(layer)).state).toBe('complete')
  })

  /**
   * A hostile holder (`readChunk`: its store's reads) alone holds the object whole when a client
   * asks for it, so the stream is asked of it; once that stream ended as `reason` says, an honest
   * gateway is connected, and the pull must end with every byte right.
   */
  async function streamFromHostile (readChunk: ReadChunkWrap, seedNumber: number, reason: string): Promise<{ asker: TestNode, hostile: TestNode }> {
    const files = { 'layer.bin': patternBytes(16 * MiB + 77, seedNumber) }
    const hostile = await node({ storeWrapper: store => withReadChunk(store, async (hash, index, options) => await readChunk(store, hash, index, options)) })
    const honest = await node({ gateway: true })
    const tree = await tempDir()
    const id = await seed(hostile, tree, files)
    expect(await seed(honest, tree, files)).toBe(id)
    const layer = await objectOf(hostile, id, './layer.bin')
    const asker = await node()
    await connect(asker, hostile)
    const ended = nextEvent(asker.swarm, 'object-stream:ended', e => e.peer === hostile.swarm.peerId, 30_000)
    const pulled = pullWaiting(asker, id, layer, files, join(await tempDir(), 'out'))
    expect(await ended).toMatchObject({ outcome: 'failed', reason: expect.stringContaining(reason) })
    await connect(asker, honest)
    await pulled
    // The honest holder, once connected, holds it whole: the rest came over a lane from it.
    expect(asker.swarm.stats().objectStreams).toMatchObject({ completed: 1, fellBack: 1 })
    return { asker, hostile }
  }

  it('a holder that sends a chunk that fails its check is charged and the stream ends there; the rest comes from another holder', async () => {
    const { asker, hostile } = await streamFromHostile(async (store, hash, index, options) => {
      const bytes = await store.readChunk(hash, index, options)
      if (index === 5) bytes[100] = (bytes[100] ?? 0) ^ 0xff
      return bytes
    }, 22, 'failed verification')
    expect(asker.swarm.stats().perPeer[hostile.swarm.peerId]?.rejectedChunks).toBeGreaterThanOrEqual(1)
  })

  it('a holder that stops sending mid-object holds it no longer than the stall rule: the rest comes from another holder', async () => {
    // Past chunk 3 it reads nothing until the stream that asked is gone (its chunk requests too).
    await streamFromHostile(async (store, hash, index, options) => {
      if (index > 3) {
        await new Promise<void>((resolve) => {
          if (options?.signal?.aborted === true) resolve()
          options?.signal?.addEventListener('abort', () => { resolve() }, { once: true })
        })
        options?.signal?.throwIfAborted()
      }
      return await store.readChunk(hash, index, options)
    }, 23, 'no whole chunk within')
  })

  it('a second object a client waits on gets the holder\'s lane once the first one\'s stream ends', async () => {
    const files = { 'a.bin': patternBytes(16 * MiB + 1, 25), 'b.bin': patternBytes(16 * MiB + 2, 26) }
    const asker: { node?: TestNode } = {}
    let second = ''
    // The holder reads nothing of the second object until the asker has started its second
    // stream (10 s at most): its chunks cannot all come one by one meanwhile.
    const holder = await node({
      storeWrapper: store => withReadChunk(store, async (hash, index, options) => {
        const deadline = AbortSignal.timeout(10_000)
        while (hash === second && (asker.node?.swarm.stats().objectStreams.started ?? 0) < 2 && !deadline.aborted) await delay(5)
        return await store.readChunk(hash, index, options)
      }),
    })
    const id = await seed(holder, await tempDir(), files)
    const first = await objectOf(holder, id, './a.bin')
    second = await objectOf(holder, id, './b.bin')
    asker.node = await node()
    await connect(asker.node, holder)
    const ends: Array<{ object: string, outcome: string }> = []
    asker.node.swarm.on('object-stream:ended', (e) => { ends.push(e) })
    // Both waited on at once (containerd asks for an image's layers together), the first first: one
    // lane to the holder is for chunks, one for an object, and the first asked takes it.
    const releaseFirst = asker.node.swarm.waitFor(first)
    const releaseSecond = asker.node.swarm.waitFor(second)
    try {
      await pullWaiting(asker.node, id, first, files, join(await tempDir(), 'out'))
    } finally {
      releaseFirst()
      releaseSecond()
    }
    expect(ends.filter(e => e.outcome === 'complete').map(e => e.object)).toEqual([first, second])
    expect(asker.node.swarm.stats().objectStreams).toMatchObject({ started: 2, completed: 2 })
  })

  it('a gateway streams an object to one asker at a time: a second asker gets it chunk by chunk', async () => {
    const files = { 'layer.bin': patternBytes(24 * MiB + 3, 24) }
    let firstStreamRead: () => void = () => {}
    const reading = new Promise<void>((resolve) => { firstStreamRead = resolve })
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    // The gateway's reads of chunk 10 wait until the second asker's stream was answered, so the first stream is still under way then.
    const gateway = await node({
      gateway: true,
      storeWrapper: store => withReadChunk(store, async (hash, index, options) => {
        if (index === 10) {
          firstStreamRead()
          await Promise.race([held, new Promise(resolve => setTimeout(resolve, 20_000))])
        }
        return await store.readChunk(hash, index, options)
      }),
    })
    const id = await seed(gateway, await tempDir(), files)
    const layer = await objectOf(gateway, id, './layer.bin')
    const first = await node()
    const second = await node()
    await connect(first, gateway)
    await connect(second, gateway)
    const firstPull = pullWaiting(first, id, layer, files, join(await tempDir(), 'out1'))
    await reading
    // The second asker's stream is refused (busy) while the first still streams.
    const refused = nextEvent(second.swarm, 'object-stream:ended', () => true, 30_000)
    const secondPull = pullWaiting(second, id, layer, files, join(await tempDir(), 'out2'))
    expect(await refused).toMatchObject({ outcome: 'busy' })
    release()
    await Promise.all([firstPull, secondPull])
    expect(first.swarm.stats().objectStreams).toMatchObject({ completed: 1, fellBack: 0 })
    // Its rest came chunk by chunk, or over a lane from the first asker once that held it whole (an edge, not the gateway).
    expect(second.swarm.stats().objectStreams.fellBack).toBe(1)
  })
})
