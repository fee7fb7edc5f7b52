import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { Attacker } from './attacker.js'
import { askBehindProbe, chunkAsker, chunkRequest, PROBE_INDEX, pushedLayer, takeThenQueue } from './chunk-answers.js'
import { useSwarms } from './swarm-fixture.js'

/**
 * A gateway sends every chunk once before it sends any twice (gateway-seeding.ts
 * secondCopyWaitMs): a copy of a chunk it already sent waits while another neighbour's stream
 * has a chunk never sent queued. In the simulator at 1000 nodes most of the gateway's second
 * copies left mid-seeding, each delaying the chunks nobody else held by a chunk time. Real
 * gateway (libp2p over TCP, a real store); the two askers are bare libp2p peers that greet on
 * the have protocol as neighbours and speak the chunk protocol by hand, so the test chooses
 * what is queued where. The wait is stretched to a minute, so only the queues' changes release it.
 */

const CHUNKS = 8

describe('a gateway\'s second copies', () => {
  const { node, tempDir } = useSwarms()

  it('wait while another neighbour has a chunk never sent queued, and go once that queue empties', async () => {
    // No deferrals: every request is queued, so what is tested is only the order of sending.
    const gateway = await node({ gateway: true, seeding: { secondCopyWaitMs: 60_000, maxDeferralsPerAsker: 0 } })
    const { bundleId, object } = await pushedLayer(gateway.store, await tempDir(), CHUNKS, 2417)
    const a = await Attacker.start()
    const b = await Attacker.start()
    try {
      const fromA = await chunkAsker(await a.connect(gateway.address), bundleId)
      const fromB = await chunkAsker(await b.connect(gateway.address), bundleId)

      // A takes chunk 0, then stops reading and asks for 1-6: one goes on its way, the rest stay
      // queued at the gateway, never sent to anyone.
      await takeThenQueue(fromA, object, 0, [1, 2, 3, 4, 5, 6])

      // B asks for chunk 0, a second copy: sent at once, it would be answered before the probe
      // behind it; held, the probe's NOT_PRESENT overtakes it.
      const zero = await askBehindProbe(fromB, object, 0)
      expect(fromB.order.map(r => r.index)).toEqual([PROBE_INDEX])

      // A withdraws what it had queued: no first copy waits anywhere, and B's 0 goes.
      const withdrawn = new Uint8ArrayList()
      for (let index = 1; index <= 6; index++) withdrawn.append(chunkRequest(object, index, true))
      fromA.stream.send(withdrawn)
      expect(await zero.answer).toBe(ChunkResponse.Status.OK)
      expect(fromB.order.map(r => r.index)).toEqual([PROBE_INDEX, 0])
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
