import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { CHUNK_PROTOCOL, HAVE_PROTOCOL } from '../../src/swarm/index.js'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { HaveMessage } from '../../src/swarm/pb/swarm-have.pb.js'
import { Attacker } from './attacker.js'
import { connect, patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * Issue 13's flood, the part that cost honest edges time: a gateway defers an asker for a
 * chunk it just sent another neighbour, so the copy spreads from there. A peer that greets on
 * the have protocol with no interest in the bundle will never advertise what it got; counted as
 * a copy, each throwaway identity of the flood made the gateway tell the honest edges to wait
 * for its chunks (the edges asked 4-24 chunks again; pulls 1.6-2.2x slower). Real gateway,
 * real edge, a real libp2p stranger.
 */

const MiB = 1024 * 1024
const CHUNKS = 8
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

describe('a stranger that greets with no interest', () => {
  const { node, tempDir } = useSwarms()

  it('is sent chunks, and the gateway does not make an honest edge wait for copies the stranger will never pass on', async () => {
    const gateway = await node({ gateway: true })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(CHUNKS * MiB, 1315) })
    const { bundleId, bundle } = await pushTree(gateway.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    const edge = await node()
    await connect(edge, gateway)
    const stranger = await Attacker.start()
    try {
      const connection = await stranger.connect(gateway.address)
      // Greets as the flood does: a neighbour, interested in no bundle of ours.
      const have = await connection.newStream(HAVE_PROTOCOL)
      readFrames(have, { maxFrameBytes: 4 * MiB, messageTimeoutMs: 120_000, onFrame: () => {} })
      have.send(frame(HaveMessage.encode({ hello: { gateway: false, bundles: [] } })))
      // Asks for every chunk and reads each: the gateway sends them all.
      const chunks = await connection.newStream(CHUNK_PROTOCOL)
      let received = 0
      const all = new Promise<void>((resolve) => {
        readFrames(chunks, {
          maxFrameBytes: 2 * MiB,
          messageTimeoutMs: 120_000,
          onFrame: (bytes) => {
            if (ChunkResponse.decode(bytes).status === ChunkResponse.Status.OK) received++
            if (received === CHUNKS) resolve()
          },
        })
      })
      const requests = new Uint8ArrayList()
      for (let index = 0; index < CHUNKS; index++) requests.append(frame(ChunkRequest.encode({ object: Buffer.from(object, 'hex'), index, cancel: false })))
      chunks.send(requests)
      await all

      // Right after (well within the 2 s a recipient has to advertise), the edge pulls: every
      // chunk it asks for was just sent to the stranger.
      await edge.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
      expect((await verifyStore(edge.store, { bundleId })).ok).toBe(true)
      const requested = edge.swarm.stats().requests
      console.log(`stranger without interest: the edge asked ${requested.first} chunks, ${requested.again} again`)
      // Asked once each: no DEFERRED answer sent it back to wait.
      expect(requested.again).toBe(0)
      expect(gateway.swarm.stats().perPeer[stranger.peerId]?.bytesUploaded).toBe(CHUNKS * MiB)
    } finally {
      await stranger.stop()
    }
  })
})
