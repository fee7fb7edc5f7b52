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
    // Joining takes the view once plus each neighbour's digest, not a whole view from every neighbour.
    expect(result.joinBytes).toBeLessThan(300 * sizes.full * 2)
    expect(sizes.digestPerNode).toBeLessThan(24)
  })

  it('marks a stopped node stale within minutes however large the fleet, and a live node refutes a notice before anyone marks it', async () => {
    const sizes = await wireSizes()
    const result = run(300, { nodes: [300], degree: 12, periods: 1, change: 0.02, seed: 3, departures: 6, churn: 1, probeMs: 10 }, sizes)
    const absence = result.absence
    expect(absence).toBeDefined()
    if (absence === undefined) return
    // The grace (two configured periods, 60 s) plus a witness's delay and the hops: about a minute,
    // where silence alone takes STALE_AFTER_INTERVALS adaptive periods (12 min here, hours at 5,000).
    const grace = statusLimits.ABSENCE_GRACE_INTERVALS * statusLimits.DEFAULT_STATUS_INTERVAL_MS / 1000
    expect(absence.staleAfterS.median).toBeGreaterThanOrEqual(grace)
    expect(absence.staleAfterS.max).toBeLessThan(grace + statusLimits.ABSENCE_WITNESS_DELAY_INTERVALS * statusLimits.DEFAULT_STATUS_INTERVAL_MS / 1000 + 30)
    expect(absence.staleAfterS.max).toBeLessThan(result.staleAfterS)
    expect(absence.coverageMin).toBe(1)
    // Witnesses hold back once two spoke: far fewer notices than the 12 neighbours that lost it.
    expect(absence.noticesSignedMean).toBeLessThan(6)
    expect(absence.refutedAfterS.max).toBeLessThan(grace)
    expect(absence.falseStaleShare).toBe(0)
  })
})
