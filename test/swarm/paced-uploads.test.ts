import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, type Store } from '../../src/store/index.js'
import { CHUNK_PROTOCOL, type SwarmStore } from '../../src/swarm/index.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { waitFor } from '../helpers/daemon-process.js'
import { Attacker } from './attacker.js'
import { patternBytes, useSwarms, withReadChunk, writeTree } from './swarm-fixture.js'
import type { Stream } from '@libp2p/interface'

/**
 * Paced uploads (upload-pace.ts): a holder hands an asker's next chunk to the muxer only when
 * the asker's link is nearly empty, so a CANCEL (end game won elsewhere, a request moved to a
 * faster holder, a withdrawal from the gateway) for a chunk not yet on the wire costs no chunk
 * bytes. Real holders (libp2p over TCP, a real store); the asker is a bare libp2p node speaking
 * the chunk protocol by hand, so the test chooses when it reads and when it cancels.
 */

const MiB = 1024 * 1024
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()
const request = (object: string, index: number, cancel = false): Uint8Array =>
  frame(ChunkRequest.encode({ object: Buffer.from(object, 'hex'), index, cancel }))

/** Every answer on a chunk stream, by index, and a way to wait for some number of them. */
function answers (stream: Stream): { byIndex: Map<number, { status: ChunkResponse.Status, bytes: number }>, count: (n: number) => Promise<void> } {
  const byIndex = new Map<number, { status: ChunkResponse.Status, bytes: number }>()
  const waiting: Array<{ n: number, resolve: () => void }> = []
  readFrames(stream, {
    maxFrameBytes: 2 * MiB,
    messageTimeoutMs: 60_000,
    onFrame: (bytes) => {
      const response = ChunkResponse.decode(bytes)
      byIndex.set(response.index, { status: response.status, bytes: response.data.byteLength })
      for (const w of waiting.filter(w => byIndex.size >= w.n)) w.resolve()
    },
  })
  const count = async (n: number): Promise<void> => {
    if (byIndex.size >= n) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${byIndex.size} of ${n} chunk answers within 20 s`)) }, 20_000)
      waiting.push({ n, resolve: () => { clearTimeout(timer); resolve() } })
    })
  }
  return { byIndex, count }
}

describe('paced uploads', () => {
  const { node, tempDir } = useSwarms()

  async function holderWith (chunks: number, storeWrapper?: (store: Store) => SwarmStore): Promise<{ holder: Awaited<ReturnType<typeof node>>, object: string }> {
    const holder = await node({ storeWrapper })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(chunks * MiB, 4242) })
    const { bundle } = await pushTree(holder.store, tree)
    return { holder, object: bundle.entries.find(e => e.type === 'F')?.checksum ?? '' }
  }

  it('sends a slow asker one chunk at a time, so cancels for the rest cost no chunk bytes', async () => {
    const { holder, object } = await holderWith(16)
    const asker = await Attacker.start()
    try {
      const connection = await asker.connect(holder.address)
      const stream = await connection.newStream(CHUNK_PROTOCOL)
      const { byIndex, count } = answers(stream)
      // It reads 8 chunks first: an asker that reads earns an allowance of unread bytes
      // (reader-budget.ts) far above the stranger's two chunks.
      const first = new Uint8ArrayList()
      for (let index = 0; index < 8; index++) first.append(request(object, index))
      stream.send(first)
      await count(8)
      const uploaded = (): number => holder.swarm.stats().perPeer[asker.peerId]?.chunksUploaded ?? 0
      expect(uploaded()).toBe(8)

      // Now its link is full: it takes nothing (yamux credits nothing back) while 8 more are
      // asked for, and cancels them all once the holder has put the first on its way.
      stream.pause()
      const more = new Uint8ArrayList()
      for (let index = 8; index < 16; index++) more.append(request(object, index))
      stream.send(more)
      await waitFor('the first of the next 8 chunks sent', async () => uploaded() > 8 ? true : undefined, 20_000)
      const cancels = new Uint8ArrayList()
      for (let index = 8; index < 16; index++) cancels.append(request(object, index, true))
      stream.send(cancels)
      stream.resume()
      await count(16)

      const sent = [...byIndex].filter(([index, a]) => index >= 8 && a.status === ChunkResponse.Status.OK)
      const cancelled = [...byIndex].filter(([index, a]) => index >= 8 && a.status === ChunkResponse.Status.CANCELLED)
      console.log(`paced: ${sent.length} of 8 cancelled chunks crossed anyway, ${cancelled.length} cancelled in time`)
      // Unpaced, every chunk its allowance covered (7) was handed to the muxer at once and
      // crossed whole. Paced: the one on the wire, and at most the next.
      expect(sent.length).toBeGreaterThanOrEqual(1)
      expect(sent.length).toBeLessThanOrEqual(2)
      expect(cancelled.length).toBe(8 - sent.length)
      for (const [, a] of sent) expect(a.bytes).toBe(MiB)
      expect(uploaded()).toBe(8 + sent.length)
    } finally {
      await asker.stop()
    }
  })

  it('answers CANCELLED for a chunk cancelled while it was read from disk', async () => {
    let entered: () => void = () => {}
    const reading = new Promise<void>((resolve) => { entered = resolve })
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => { release = resolve })
    // The holder's disk is slow for chunk 3: its read starts and waits for the test.
    const slowDisk = (store: Store): SwarmStore => withReadChunk(store, async (hash, index, options) => {
      if (index === 3) {
        entered()
        await gate
      }
      return await store.readChunk(hash, index, options)
    })
    const { holder, object } = await holderWith(4, slowDisk)
    const asker = await Attacker.start()
    try {
      const connection = await asker.connect(holder.address)
      const stream = await connection.newStream(CHUNK_PROTOCOL)
      const { byIndex, count } = answers(stream)
      stream.send(request(object, 3))
      await reading
      stream.send(request(object, 3, true))
      // A request on a second stream of the same connection, sent after the cancel: its
      // answer means the holder has taken the cancel (yamux delivers a connection's frames in
      // order), and it does not wait behind chunk 3.
      const marker = await connection.newStream(CHUNK_PROTOCOL)
      const markerAnswers = answers(marker)
      marker.send(request('00'.repeat(32), 0))
      await markerAnswers.count(1)
      expect(markerAnswers.byIndex.get(0)?.status).toBe(ChunkResponse.Status.NOT_PRESENT)
      release()
      await count(1)
      expect(byIndex.get(3)).toEqual({ status: ChunkResponse.Status.CANCELLED, bytes: 0 })
      expect(holder.swarm.stats().perPeer[asker.peerId]?.bytesUploaded ?? 0).toBe(0)
    } finally {
      release()
      await asker.stop()
    }
  })
})
