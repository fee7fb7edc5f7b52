import { afterEach, describe, expect, it, vi } from 'vitest'
import { pushTree, verifyStore } from '../../src/store/index.js'
import { connect, patternBytes, useSwarms, writeTree } from './swarm-fixture.js'

/**
 * A gateway that just sent a chunk to one edge tells the next asker DEFERRED (gateway
 * seeding); the asker may ask it again after GATEWAY_DEFER_MS. An edge deferred for every
 * chunk it lacks has nothing arriving and nothing to ask meanwhile: only a wake at the end of
 * the deferral asks again. Before that wake it waited for the scheduler's next tick, up to a
 * second late (hostile row 10: two edges idle for 2 s after 1 s deferrals). Here the late
 * edge's tick never fires (its setInterval is faked), so without the wake its pull never ends.
 * Real gateway, real edges, libp2p over TCP.
 */

const MiB = 1024 * 1024
const CHUNKS = 6

describe('an edge a gateway deferred', () => {
  const { node, tempDir } = useSwarms()
  afterEach(() => { vi.useRealTimers() })

  it('asks the gateway again when the deferral ends, with nothing else to wake it', async () => {
    const gateway = await node({ gateway: true })
    const tree = await tempDir()
    await writeTree(tree, { 'layer.bin': patternBytes(CHUNKS * MiB, 1321) })
    const { bundleId } = await pushTree(gateway.store, tree)
    // The first edge takes every chunk from the gateway and advertises them to it.
    const first = await node()
    await connect(first, gateway)
    await first.swarm.pull(bundleId, { signal: AbortSignal.timeout(60_000) })

    // The late edge's scheduler tick is a fake interval that never fires; timeouts, I/O and
    // setImmediate are real.
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const late = await node()
    // It cannot reach the first edge (a ban stands in for a route it does not have; else it
    // finds it as a provider and fetches everything there): every chunk it asks the gateway for
    // was just sent to an edge that advertises it, and is deferred.
    late.swarm.ban(first.swarm.peerId, 'unreachable in this test')
    try {
      await connect(late, gateway)
      await late.swarm.pull(bundleId, { signal: AbortSignal.timeout(30_000) })
      expect((await verifyStore(late.store, { bundleId })).ok).toBe(true)
      const requests = late.swarm.stats().requests
      console.log(`late edge: asked ${requests.first} chunks, ${requests.again} again after a deferral`)
      // It was deferred (the case under test), and asked again for what was deferred.
      expect(requests.again).toBeGreaterThan(0)
    } finally {
      // Stopped while its fake interval is still the one installed (clearInterval is faked too).
      await late.swarm.stop()
    }
  })
})
