import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { chunkAsker, chunkRequest, greet, pushedLayer } from './chunk-answers.js'
import { useSwarms } from './swarm-fixture.js'

/**
 * An edge answers each asker's stream rarest first, as a gateway does: of the requests queued
 * on a stream, the chunk the fewest of its other neighbours hold goes first (ties in arrival
 * order). In the simulator at 1000 nodes, edges answering in arrival order kept a chunk they
 * alone held behind each asker's older requests, and a chunk the gateway sent went on from its
 * first holder seconds late. Real edge (libp2p over TCP, a real store); the asker and the
 * other neighbour are bare libp2p peers speaking the protocols by hand.
 */

const CHUNKS = 8

describe('an edge serving its neighbours', () => {
  const { node, tempDir } = useSwarms()

  it('sends first, of one asker\'s queued requests, the chunk no other neighbour holds', async () => {
    const edge = await node()
    const { bundleId, object } = await pushedLayer(edge.store, await tempDir(), CHUNKS, 3119)
    const asker = await Attacker.start()
    const other = await Attacker.start()
    try {
      // The other neighbour holds chunks 0-3.
      await greet(await other.connect(edge.address), bundleId, { object, bitmap: Uint8Array.of(0b1111_0000) })
      const fromEdge = await chunkAsker(await asker.connect(edge.address), bundleId)
      const chunks = fromEdge.stream

      // The asker takes chunk 7, then asks for 6, 0 and 5 in one write: 6 fills the pace's mark
      // (upload-pace.ts) and 0 and 5 wait queued at the edge until most of it is across.
      const first = fromEdge.next(7)
      chunks.send(chunkRequest(object, 7))
      expect(await first).toBe(ChunkResponse.Status.OK)
      const five = fromEdge.next(5)
      const zero = fromEdge.next(0)
      chunks.send(new Uint8ArrayList(chunkRequest(object, 6), chunkRequest(object, 0), chunkRequest(object, 5)).subarray())
      expect(await five).toBe(ChunkResponse.Status.OK)
      expect(await zero).toBe(ChunkResponse.Status.OK)
      // 5 nobody else holds, 0 the other neighbour does: 5 went first.
      expect(fromEdge.order.map(r => r.index)).toEqual([7, 6, 5, 0])
    } finally {
      await asker.stop()
      await other.stop()
    }
  })
})
