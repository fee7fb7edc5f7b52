import { describe, expect, it } from 'vitest'
import type { FleetResponse } from '../../src/http/fleet-view.js'
import { createMetrics, type MetricsSwarmEmitter } from '../../src/http/metrics.js'

/** A swarm whose own counters are set by the test, counting how often each is read. */
function countingSwarm (): MetricsSwarmEmitter & { reads: Record<string, number>, dropped: number } {
  const reads: Record<string, number> = { stats: 0, peers: 0, fleetStats: 0, refStats: 0, preheatStats: 0 }
  const read = (name: string): void => { reads[name] = (reads[name] ?? 0) + 1 }
  const swarm = {
    reads,
    dropped: 0,
    stats: () => { read('stats'); return { bytesUploaded: 0 } },
    peers: () => { read('peers'); return [] },
    fleetStats: () => { read('fleetStats'); return { droppedNeighbour: swarm.dropped, droppedGroup: 0, charges: 0 } },
    refStats: () => { read('refStats'); return { untrusted: 0, invalid: 0, overAllowance: swarm.dropped, overAllowanceCharges: 0 } },
    preheatStats: () => { read('preheatStats'); return undefined },
    on: () => {},
  }
  return swarm
}

function sample (text: string, line: string): number {
  const found = text.split('\n').find(l => l.startsWith(`${line} `))
  return found === undefined ? 0 : Number(found.slice(line.length + 1))
}

describe('a /metrics scrape', () => {
  it('reads each of the swarm\'s own counters once, and counts what grew since the last scrape', async () => {
    const metrics = createMetrics()
    const swarm = countingSwarm()
    metrics.watchSwarm(swarm)
    swarm.dropped = 3
    const first = await metrics.text()
    swarm.dropped = 5
    const second = await metrics.text()
    expect(swarm.reads.fleetStats).toBe(2)
    expect(swarm.reads.refStats).toBe(2)
    expect(swarm.reads.preheatStats).toBe(2)
    expect(sample(first, 'shoal_fleet_statuses_dropped_total{allowance="neighbour"}')).toBe(3)
    expect(sample(second, 'shoal_fleet_statuses_dropped_total{allowance="neighbour"}')).toBe(5)
    expect(sample(second, 'shoal_swarm_records_dropped_total{kind="ref",reason="over-allowance"}')).toBe(5)
  })

  it('reads the fleet view once for its three gauges', async () => {
    const metrics = createMetrics()
    let reads = 0
    const view: FleetResponse = { known: 3, stale: 1, nodes: [], truncated: false, bundles: [{ id: 'b1', refs: [], pinned: false, complete: 2, partial: 1, total: 3 }] }
    metrics.watchFleet(async () => { reads++; return view })
    const text = await metrics.text()
    expect(reads).toBe(1)
    expect(sample(text, 'shoal_fleet_nodes{state="live"}')).toBe(2)
    expect(sample(text, 'shoal_fleet_bundle_nodes{bundle="b1",state="partial"}')).toBe(1)
    expect(sample(text, 'shoal_fleet_bundle_target_nodes{bundle="b1"}')).toBe(3)
  })
})
