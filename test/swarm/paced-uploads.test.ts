import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, type Store } from '../../src/store/index.js'
import { CHUNK_PROTOCOL, type SwarmStore } from '../../src/swarm/index.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { UPLOAD_PACE_CAP_BYTES } from '../../src/swarm/constants.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { sleep } from '../../src/wait/index.js'
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

  /**
   * An asker reads `first` chunks (one every 200 ms if `slowly`: its link ~5 MB/s; else as
   * fast as loopback goes), then takes nothing (paused, its yamux credits nothing back) while
   * `more` are asked for, and cancels them all once the holder has put the first on its way.
   * Returns how many of those crossed anyway. Reading earns an allowance of unread bytes
   * (reader-budget.ts) far above the stranger's two chunks, so the pace is what is tested.
   */
  async function cancelAfterReading (first: number, more: number, slowly: boolean): Promise<number> {
    const { holder, object } = await holderWith(first + more)
    const asker = await Attacker.start()
    try {
      const connection = await asker.connect(holder.address)
      const stream = await connection.newStream(CHUNK_PROTOCOL)
      const { byIndex, count } = answers(stream)
      const asked = new Uint8ArrayList()
      for (let index = 0; index < first; index++) asked.append(request(object, index))
      if (slowly) stream.pause()
      stream.send(asked)
      if (slowly) {
        // The pauses are the slow link under test, not a wait for something.
        for (let n = 1; n <= first; n++) {
          stream.resume()
          await count(n)
          stream.pause()
          await sleep(200)
        }
      } else {
        await count(first)
        stream.pause()
      }
      const uploaded = (): number => holder.swarm.stats().perPeer[asker.peerId]?.chunksUploaded ?? 0
      expect(uploaded()).toBe(first)

      const next = new Uint8ArrayList()
      for (let index = first; index < first + more; index++) next.append(request(object, index))
      stream.send(next)
      await waitFor('the first of the next chunks sent', async () => uploaded() > first ? true : undefined, 20_000)
      const cancels = new Uint8ArrayList()
      for (let index = first; index < first + more; index++) cancels.append(request(object, index, true))
      stream.send(cancels)
      stream.resume()
      await count(first + more)

      const sent = [...byIndex].filter(([index, a]) => index >= first && a.status === ChunkResponse.Status.OK)
      const cancelled = [...byIndex].filter(([index, a]) => index >= first && a.status === ChunkResponse.Status.CANCELLED)
      console.log(`paced (${slowly ? 'slow' : 'fast'} asker): ${sent.length} of ${more} cancelled chunks crossed anyway, ${cancelled.length} cancelled in time`)
      expect(sent.length).toBeGreaterThanOrEqual(1)
      expect(cancelled.length).toBe(more - sent.length)
      for (const [, a] of sent) expect(a.bytes).toBe(MiB)
      expect(uploaded()).toBe(first + sent.length)
      return sent.length
    } finally {
      await asker.stop()
    }
  }

  it('sends a slow asker one chunk at a time, so cancels for the rest cost no chunk bytes', async () => {
    // Unpaced, every chunk its allowance covered (7 of 8) was handed to the muxer at once and
    // crossed whole. Paced: the one on the wire, and at most the next (its link's 50 ms is
    // under the floor).
    expect(await cancelAfterReading(8, 8, true)).toBeLessThanOrEqual(2)
  })

  it('lets a fast asker have no more than the cap on its way when it stops taking', async () => {
    // Its link's 50 ms is megabytes: the mark is at most UPLOAD_PACE_CAP_BYTES (8 chunks), and
    // the chunk read ahead beyond it; the rest of 16 are cancelled in time.
    expect(await cancelAfterReading(8, 16, false)).toBeLessThanOrEqual(UPLOAD_PACE_CAP_BYTES / MiB + 2)
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
