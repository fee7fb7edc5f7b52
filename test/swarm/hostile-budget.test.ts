import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { CHUNK_PROTOCOL } from '../../src/swarm/index.js'
import { STRANGER_UNREAD_BYTES } from '../../src/swarm/constants.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { connect, patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * Issue 13's flood, the part that cost bytes: an asker that never reads what it asked for gets
 * a stranger's budget of chunk bytes from a real gateway (libp2p over TCP, a real store), not
 * two yamux windows; one that starts reading gets the rest. Measured against an honest edge
 * pulling the same bundle from the same gateway at the same time.
 */

const MiB = 1024 * 1024
const CHUNKS = 24
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
})
