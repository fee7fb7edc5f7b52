import { describe, expect, it } from 'vitest'
import { run, wireSizes } from '../../scripts/simulate-gossip.js'
import { statusIntervalMs, statusLimits } from '../../src/swarm/index.js'

describe('the status gossip simulation', () => {
  it('reaches nearly every node each period within the byte budget, and no node looks stale while alive', async () => {
    const sizes = await wireSizes()
    // A real refresh is far smaller than a full status: the design rests on that.
    expect(sizes.refresh).toBeLessThanOrEqual(statusLimits.STATUS_REFRESH_WIRE_BYTES + 4)
    expect(sizes.full).toBeGreaterThan(4 * sizes.refresh)
    const result = run(300, { nodes: [300], degree: 12, periods: 6, change: 0.02, seed: 7 }, sizes)
    expect(result.periodS).toBe(statusIntervalMs(300) / 1000)
    expect(result.reachMean).toBeGreaterThan(0.9)
    expect(result.falseStalePairs).toBeLessThan(300 * 300 * 0.001)
    expect(result.recvBytesPerS.mean).toBeGreaterThan(0)
    expect(result.framedRecvBytesPerS.mean).toBeLessThanOrEqual(1024)
    expect(result.sentBytesPerS.mean).toBeCloseTo(result.recvBytesPerS.mean, 6)
  })
})
