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
 * Issue 13's flood and leech, the part that cost honest edges time: a gateway defers an asker
 * for a chunk it just sent another neighbour, so the copy spreads from there. A peer that
 * greets on the have protocol with no interest in the bundle will never advertise what it got;
 * counted as a copy, each throwaway identity of the flood made the gateway tell the honest
 * edges to wait for its chunks (the edges asked 4-24 chunks again; pulls 1.6-2.2x slower). A
 * leech that is interested but advertises nothing did the same for every chunk it took in its
 * first 2 s (row 10: two edges idle 2-3 s). Real gateway, real edge, a real libp2p peer.
 */

const MiB = 1024 * 1024
const CHUNKS = 8
const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

describe('a recipient that will not pass chunks on', () => {
  const { node, tempDir } = useSwarms()

  /**
   * A real gateway and edge, and a real libp2p peer that greets the gateway on the have
   * protocol interested in `interest` (bundle IDs), asks for every chunk and reads each, and
   * never advertises one. Right after (well within the 2 s a recipient has to advertise), the
   * edge pulls: every chunk it asks for was just sent to that peer. Returns the edge's re-asks.
   */
  async function pullBehind (interest: (bundleId: string) => string[]): Promise<number> {
    const gateway = await node({ gateway: true })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(CHUNKS * MiB, 1315) })
    const { bundleId, bundle } = await pushTree(gateway.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    const edge = await node()
    await connect(edge, gateway)
    const taker = await Attacker.start()
    try {
      const connection = await taker.connect(gateway.address)
      const have = await connection.newStream(HAVE_PROTOCOL)
      readFrames(have, { maxFrameBytes: 4 * MiB, messageTimeoutMs: 120_000, onFrame: () => {} })
      have.send(frame(HaveMessage.encode({ hello: { gateway: false, bundles: interest(bundleId).map(id => Buffer.from(id, 'hex')) } })))
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

      await edge.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })
      expect((await verifyStore(edge.store, { bundleId })).ok).toBe(true)
      // The gateway sent it everything it asked for: it is served, only not waited for.
      expect(gateway.swarm.stats().perPeer[taker.peerId]?.bytesUploaded).toBe(CHUNKS * MiB)
      return edge.swarm.stats().requests.again
    } finally {
      await taker.stop()
    }
  }

  it('greeting with no interest: the gateway does not make an honest edge wait for copies it will never pass on', async () => {
    // As the flood's identities greet: a neighbour, interested in no bundle of ours.
    const again = await pullBehind(() => [])
    console.log(`stranger without interest: the edge asked ${CHUNKS} chunks, ${again} again`)
    // Asked once each: no DEFERRED answer sent it back to wait.
    expect(again).toBe(0)
  })

  it('a leech interested in the bundle that took every chunk at once and advertises none: the gateway does not make an honest edge wait for its copies', async () => {
    // Hostile row 10: interested, so it looks like a neighbour that will pass chunks on, but
    // past TAKER_AFTER_CHUNKS chunks with no advertisement it is not waited for (before, for
    // the 2 s grace from its first chunk: every chunk it took sent the edges back to wait).
    const again = await pullBehind(bundleId => [bundleId])
    console.log(`leech: the edge asked ${CHUNKS} chunks, ${again} again`)
    expect(again).toBe(0)
  })
})
