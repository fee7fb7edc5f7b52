import { describe, expect, it } from 'vitest'
import { Uint8ArrayList } from 'uint8arraylist'
import { pushTree } from '../../src/store/index.js'
import { CHUNK_PROTOCOL, HAVE_PROTOCOL } from '../../src/swarm/index.js'
import { readFrames } from '../../src/swarm/framing.js'
import { ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import { HaveMessage } from '../../src/swarm/pb/swarm-have.pb.js'
import { Attacker } from './attacker.js'
import { answers, chunkRequest, frame } from './chunk-answers.js'
import { patternBytes, useSwarms, writeTree } from './swarm-fixture.js'
import type { Connection } from '@libp2p/interface'

/**
 * A gateway sends every chunk once before it sends any twice (gateway-seeding.ts
 * secondCopyWaitMs): a copy of a chunk it already sent waits while another neighbour's stream
 * has a chunk never sent queued. In the simulator at 1000 nodes most of the gateway's second
 * copies left mid-seeding, each delaying the chunks nobody else held by a chunk time. Real
 * gateway (libp2p over TCP, a real store); the two askers are bare libp2p peers that greet on
 * the have protocol as neighbours and speak the chunk protocol by hand, so the test chooses
 * what is queued where. The wait is stretched to a minute, so only the queues' changes release it.
 */

const MiB = 1024 * 1024
const CHUNKS = 8
/** A neighbour interested in the bundle, as an edge greets; it never advertises (it is not asked to here). */
async function neighbour (connection: Connection, bundleId: string): Promise<void> {
  const have = await connection.newStream(HAVE_PROTOCOL)
  readFrames(have, { maxFrameBytes: 4 * MiB, messageTimeoutMs: 120_000, onFrame: () => {} })
  have.send(frame(HaveMessage.encode({ hello: { gateway: false, bundles: [Buffer.from(bundleId, 'hex')] } })))
}

describe('a gateway\'s second copies', () => {
  const { node, tempDir } = useSwarms()

  it('wait while another neighbour has a chunk never sent queued, and go once that queue empties', async () => {
    // No deferrals: every request is queued, so what is tested is only the order of sending.
    const gateway = await node({ gateway: true, seeding: { secondCopyWaitMs: 60_000, maxDeferralsPerAsker: 0 } })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(CHUNKS * MiB, 2417) })
    const { bundleId, bundle } = await pushTree(gateway.store, tree)
    const object = bundle.entries.find(e => e.type === 'F')?.checksum ?? ''
    const a = await Attacker.start()
    const b = await Attacker.start()
    try {
      const toA = await a.connect(gateway.address)
      const toB = await b.connect(gateway.address)
      await neighbour(toA, bundleId)
      await neighbour(toB, bundleId)
      const streamA = await toA.newStream(CHUNK_PROTOCOL)
      const streamB = await toB.newStream(CHUNK_PROTOCOL)
      const fromA = answers(streamA)
      const fromB = answers(streamB)

      // A takes chunk 0, then stops reading and asks for 1-6: one goes on its way (the pace's
      // mark), the rest stay queued at the gateway, never sent to anyone.
      const first = fromA.next(0)
      streamA.send(chunkRequest(object, 0))
      expect(await first).toBe(ChunkResponse.Status.OK)
      streamA.pause()
      const queuedAtA = new Uint8ArrayList()
      for (let index = 1; index <= 6; index++) queuedAtA.append(chunkRequest(object, index))
      streamA.send(queuedAtA)

      // B asks for chunk 0, a second copy, then for a chunk of an object nobody holds. Sent at
      // once, 0 would be answered first (one stream answers in the order it sends); held, the
      // NOT_PRESENT answer overtakes it.
      const zero = fromB.next(0)
      const probe = fromB.next(0xffff)
      streamB.send(chunkRequest(object, 0))
      streamB.send(chunkRequest('ab'.repeat(32), 0xffff))
      expect(await probe).toBe(ChunkResponse.Status.NOT_PRESENT)
      expect(fromB.order.map(r => r.index)).toEqual([0xffff])

      // A withdraws what it had queued: no first copy waits anywhere, and B's 0 goes.
      const withdrawn = new Uint8ArrayList()
      for (let index = 1; index <= 6; index++) withdrawn.append(chunkRequest(object, index, true))
      streamA.send(withdrawn)
      expect(await zero).toBe(ChunkResponse.Status.OK)
      expect(fromB.order.map(r => r.index)).toEqual([0xffff, 0])
    } finally {
      await a.stop()
      await b.stop()
    }
  })
})
