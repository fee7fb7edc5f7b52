import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { askBehindProbe, chunkAsker, chunkRequest, greet, PROBE_INDEX, pushedLayer, takeThenQueue } from './chunk-answers.js'
import { useSwarms } from './swarm-fixture.js'

/**
 * An edge sends the chunks only it holds before chunks its other edge neighbours hold too,
 * across its askers' streams (sole-copies.ts): a stream whose next chunk another neighbour
 * holds waits while another asker has a chunk only this edge holds queued. In the simulator
 * the streams took turns, a chunk the gateway had just sent an edge waited behind chunks others
 * could send, and askers that found no edge copy went back to the gateway for a second one.
 * Real edge (libp2p over TCP, a real store); the askers and the other neighbour are bare
 * libp2p peers speaking the protocols by hand. The hold is stretched to a minute, so only the
 * queues' changes release it.
 */

const CHUNKS = 8

describe('an edge serving several askers', () => {
  const { node, tempDir } = useSwarms()

  it('holds back a chunk another neighbour holds while another asker has a chunk only this edge holds queued, and sends it once that queue empties', async () => {
    const edge = await node({ soleCopyHoldMs: 60_000 })
    const { bundleId, object } = await pushedLayer(edge.store, await tempDir(), CHUNKS, 5153)
    const other = await Attacker.start()
    const a = await Attacker.start()
    const b = await Attacker.start()
    try {
      // The other neighbour holds chunks 0-3; 4-7 only the edge holds.
      await greet(await other.connect(edge.address), bundleId, { object, bitmap: Uint8Array.of(0b1111_0000) })
      const fromA = await chunkAsker(await a.connect(edge.address), bundleId)
      const fromB = await chunkAsker(await b.connect(edge.address), bundleId)

      // A takes chunk 7, then stops reading and asks for 4-6: one goes on its way, the others
      // stay queued at the edge, chunks only it holds.
      await takeThenQueue(fromA, object, 7, [4, 5, 6])

      // B asks for chunk 0, which the other neighbour holds too: sent at once, it would be
      // answered before the probe behind it; held, the probe's NOT_PRESENT overtakes it.
      const zero = await askBehindProbe(fromB, object, 0)
      expect(fromB.order.map(r => r.index)).toEqual([PROBE_INDEX])

      // A withdraws what it had queued: no chunk only the edge holds waits for anyone, and 0 goes.
      fromA.stream.send(new Uint8ArrayList(chunkRequest(object, 4, true), chunkRequest(object, 5, true), chunkRequest(object, 6, true)).subarray())
      expect(await zero.answer).toBe(ChunkResponse.Status.OK)
      expect(fromB.order.map(r => r.index)).toEqual([PROBE_INDEX, 0])
    } finally {
      await a.stop()
      await b.stop()
      await other.stop()
    }
  })
})
