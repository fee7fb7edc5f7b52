import { afterEach, describe, expect, it, vi } from 'vitest'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { HostilePeer } from './hostile-peer.js'
import { connect, nextEvent, patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * An edge whose requests sit at a holder that delivers nothing, while nothing arrives from
 * anyone, asks another holder as well once they are overdue (OVERDUE_MIN_MS, 5 s). It looked
 * for overdue requests only at the scheduler's tick, up to a second past the rule (hostile
 * row 2: a silent claimer held a starting pull 5.5-5.7 s); now also when the first would turn
 * overdue. Here the edge's tick never fires (its setInterval is faked), so without that wake
 * its pull never ends. Real gateway, real edge, a real libp2p claimer that never answers.
 */

const MiB = 1024 * 1024

describe('an edge whose requests sit at a silent holder', () => {
  const { node, tempDir } = useSwarms()
  afterEach(() => { vi.useRealTimers() })

  it('asks the gateway as well once they are overdue, with no tick to look', async () => {
    const gateway = await node({ gateway: true })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(4 * MiB, 1322) })
    const { bundleId, bundle } = await pushTree(gateway.store, tree)
    const objects = bundle.entries.filter(e => e.type === 'F').map(e => e.checksum ?? '')
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const edge = await node()
    const peer = await HostilePeer.start()
    try {
      await connect(edge, gateway)
      await peer.connect(edge.address)
      const joined = nextEvent(edge.swarm, 'neighbour:joined', e => e.peer === peer.peerId)
      await peer.claimEverything(bundleId, objects, 'silent')
      await joined
      await edge.swarm.pull(bundleId, { signal: AbortSignal.timeout(30_000) })
      expect((await verifyStore(edge.store, { bundleId })).ok).toBe(true)
      const requests = edge.swarm.stats().requests
      console.log(`silent claimer: the edge asked it ${peer.chunkRequests} chunks, ${requests.overdue} of them of the gateway as well once overdue`)
      // The case under test: the claimer was asked first (it is not the gateway), and what it
      // sat on was asked of the gateway as overdue.
      expect(peer.chunkRequests).toBeGreaterThan(0)
      expect(requests.overdue).toBeGreaterThan(0)
    } finally {
      await peer.stop()
      // Stopped while its fake interval is still the one installed (clearInterval is faked too).
      await edge.swarm.stop()
    }
  })
})
