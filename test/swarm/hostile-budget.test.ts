import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { MAX_CHUNK_RESPONSE_BYTES, STRANGER_UNREAD_BYTES } from '../../src/swarm/constants.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { connect, nextEvent, patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * Issue 13's flood, the part that cost bytes: an asker that never reads what it asked for gets
 * a stranger's budget of chunk bytes from a real gateway (libp2p over TCP, a real store), not
 * two yamux windows; one that starts reading gets the rest. Measured against an honest edge
 * pulling the same bundle from the same gateway at the same time.
 */

const MiB = 1024 * 1024
const CHUNKS = 24
/** A stranger's budget of one chunk, and room for the small answers a reader credits late. */
const ONE_CHUNK_BUDGET = MAX_CHUNK_RESPONSE_BYTES + 4096
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

describe('a stranger that does not read', () => {
  const { node, tempDir } = useSwarms()

  it('is sent no more than its budget while an honest edge pulls, and the rest once it reads', async () => {
    const gateway = await node({ gateway: true })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(CHUNKS * MiB, 1313) })
    const { bundle } = await pushTree(gateway.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    // The edge pulls another bundle: the gateway's seeding would defer chunks it just sent the edge.
    const otherTree = await tempDir()
    await writeTree(otherTree, { 'other.bin': patternBytes(CHUNKS * MiB, 1314) })
    const { bundleId } = await pushTree(gateway.store, otherTree)
    const attacker = await Attacker.start()
    try {
      const connection = await attacker.connect(gateway.address)
      const answered: number[] = []
      let allAnswered: () => void = () => {}
      const done = new Promise<void>((resolve) => { allAnswered = resolve })
      // Two chunk streams (as many as one connection may open), half the chunks on each: the
      // budget is the peer's, not each stream's.
      const streams = [await connection.newStream(CHUNK_PROTOCOL), await connection.newStream(CHUNK_PROTOCOL)]
      for (const [s, stream] of streams.entries()) {
        readFrames(stream, {
          maxFrameBytes: 2 * MiB,
          messageTimeoutMs: 120_000,
          onFrame: (bytes) => {
            const response = ChunkResponse.decode(bytes)
            if (response.status === ChunkResponse.Status.OK) answered.push(response.index)
            if (answered.length === CHUNKS) allAnswered()
          },
        })
        // It asks for every chunk and takes nothing: yamux credits the gateway nothing back.
        stream.pause()
        const requests = new Uint8ArrayList()
        for (let index = s; index < CHUNKS; index += 2) requests.append(frame(ChunkRequest.encode({ object: Buffer.from(object, 'hex'), index, cancel: false })))
        stream.send(requests)
      }

      // An honest edge pulls 24 MiB from the same gateway meanwhile: time enough to send the
      // stranger its whole yamux window (16 MiB; 15 MiB were sent before the budget).
      const edge = await node()
      await connect(edge, gateway)
      await edge.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
      expect((await verifyStore(edge.store, { bundleId })).ok).toBe(true)
      const sentWhileUnread = gateway.swarm.stats().perPeer[attacker.peerId]?.bytesUploaded ?? 0
      console.log(`stranger's budget: the gateway sent ${(sentWhileUnread / MiB).toFixed(2)} MiB to an asker that read nothing while an edge pulled ${CHUNKS} MiB`)
      expect(sentWhileUnread).toBeGreaterThan(0)
      expect(sentWhileUnread).toBeLessThanOrEqual(STRANGER_UNREAD_BYTES)

      // Reading, it earns its allowance: every chunk it asked for comes.
      for (const stream of streams) stream.resume()
      await done
      expect(answered.sort((a, b) => a - b)).toEqual([...Array(CHUNKS).keys()])
      expect(gateway.swarm.stats().perPeer[attacker.peerId]?.bytesUploaded).toBe(CHUNKS * MiB)
    } finally {
      await attacker.stop()
    }
  })

  /**
   * A taker (a stranger) waits up to a second for its turn while an asker that shares has
   * requests queued, and on main that turn came between the budget check and the chunk's
   * reservation: every one of its streams passed the check in that second and each was sent a
   * chunk, one per stream past its budget. Here the gateway's upload cap keeps the edge's
   * requests queued, so the stranger's two streams both take the turn; its budget is one chunk
   * and a few KiB: a small answer (a lane's, yamux's) is credited only once more data follows, so
   * with exactly one chunk an honest new edge's next chunk waited behind 43 bytes unread.
   */
  it('gets no more than its budget across streams that wait for a taker\'s turn together', async () => {
    const gateway = await node({ gateway: true, maxUploadBytesPerSecond: 8 * MiB, strangerUnreadBytes: ONE_CHUNK_BUDGET })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(CHUNKS * MiB, 1315) })
    const { bundle } = await pushTree(gateway.store, tree)
    const object = Buffer.from(bundle.entries.find(e => e.type === 'F')?.checksum ?? '', 'hex')
    const otherTree = await tempDir()
    await writeTree(otherTree, { 'other.bin': patternBytes(CHUNKS * MiB, 1316) })
    const { bundleId } = await pushTree(gateway.store, otherTree)
    const edge = await node()
    await connect(edge, gateway)
    const attacker = await Attacker.start()
    try {
      const connection = await attacker.connect(gateway.address)
      const streams = [await connection.newStream(CHUNK_PROTOCOL), await connection.newStream(CHUNK_PROTOCOL)]
      for (const stream of streams) {
        readFrames(stream, { maxFrameBytes: 2 * MiB, messageTimeoutMs: 120_000, onFrame: () => {} })
        stream.pause()
      }
      const pulled = edge.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
      // The edge is being served, with more asked than the cap lets go at once.
      await nextEvent(edge.swarm, 'chunk:received')
      for (const [s, stream] of streams.entries()) {
        const requests = new Uint8ArrayList()
        for (let index = s; index < CHUNKS; index += 2) requests.append(frame(ChunkRequest.encode({ object, index, cancel: false })))
        stream.send(requests)
      }
      await pulled
      expect((await verifyStore(edge.store, { bundleId })).ok).toBe(true)
      const sent = gateway.swarm.stats().perPeer[attacker.peerId]?.bytesUploaded ?? 0
      console.log(`a taker's two streams, budget one chunk: sent ${(sent / MiB).toFixed(2)} MiB unread while an edge pulled ${CHUNKS} MiB`)
      expect(sent).toBeLessThanOrEqual(MiB)
    } finally {
      await attacker.stop()
    }
  })
})
