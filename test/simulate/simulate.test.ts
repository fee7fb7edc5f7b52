import { describe, expect, it } from 'vitest'
import { CHUNK_SIZE_BYTES } from '../../src/manifest/index.js'
import { HAVE_BATCH_INTERVAL_MS, MAX_NEIGHBOURS, SCHEDULER_TICK_MS } from '../../src/swarm/constants.js'
import { EventQueue } from '../../scripts/simulate/event-queue.js'
import { parseSimulateArgs } from '../../scripts/simulate/options.js'
import { plotSvg } from '../../scripts/simulate/plot.js'
import { seededRandom } from '../../scripts/simulate/random.js'
import { checkGoals, summarise } from '../../scripts/simulate/report.js'
import { DAEMON_CONSTANTS, simulate, type SimConfig, type SimResult } from '../../scripts/simulate/swarm-sim.js'
import { buildTopology } from '../../scripts/simulate/topology.js'

const MiB = 1024 * 1024

const small = (nodes: number, seed = 1): SimConfig => ({
  nodes, bundleBytes: 8 * MiB, objects: 4, rateBitsPerSecond: 20e6, delayMs: 10, neighbours: 20, seed,
})

/** Everything but the simulator's own run time. */
function outcome (result: SimResult): Omit<SimResult, 'wallMs' | 'cpuMs'> {
  const { wallMs: _wall, cpuMs: _cpu, ...rest } = result
  return rest
}

describe('swarm simulation', () => {
  for (const nodes of [10, 50]) {
    it(`delivers an 8 MiB bundle to every one of ${nodes} nodes, no sooner than the links allow`, () => {
      const result = simulate(small(nodes))
      expect(result.incompleteNodes).toBe(0)
      expect(Number.isFinite(result.lastS)).toBe(true)
      // 8 MiB over 20 Mbit/s is 3.36 s: no edge can have it sooner.
      expect(result.lowerBoundS).toBeCloseTo(8 * MiB * 8 / 20e6, 3)
      expect(result.medianS).toBeGreaterThanOrEqual(result.lowerBoundS)
      expect(result.lastS).toBeGreaterThanOrEqual(result.medianS)
      // Every transfer the edges needed happened, plus the duplicates (and a few still on the wire at the end).
      expect(result.chunkTransfers).toBeGreaterThanOrEqual((nodes - 1) * result.chunks + result.duplicateChunks)
    })
  }

  it('has the gateway upload at least one copy of the bundle and at most two', () => {
    // Measured over seeds 1–10 (at this commit): 1.125 at 10 nodes, 1.5–1.875 at 50.
    for (const nodes of [10, 50]) {
      const result = simulate(small(nodes))
      expect(result.gatewayUploadBytes).toBeGreaterThanOrEqual(8 * MiB)
      expect(result.gatewayUploadOverBundle).toBeLessThanOrEqual(2)
    }
  })

  it('gives the same results twice for one seed, and other results for another', () => {
    const first = simulate(small(50, 7))
    const second = simulate(small(50, 7))
    expect(outcome(second)).toEqual(outcome(first))
    const other = simulate(small(50, 8))
    expect(outcome(other)).not.toEqual(outcome(first))
  })

  it('samples where the edges\' downlink time goes: every pulling edge is receiving, starved, contended or unmatched', () => {
    const result = simulate({ ...small(50), timelineMs: 250 })
    const timeline = result.timeline ?? []
    expect(timeline.length).toBeGreaterThan(4)
    // At the start nobody but the gateway holds anything: every edge is starved.
    expect(timeline[0]).toMatchObject({ s: 0, pulling: 49, downBusy: 0, idleStarved: 49, idleContended: 0, idleUnmatched: 0 })
    for (const t of timeline) {
      const idle = t.idleStarved + t.idleContended + t.idleUnmatched
      expect(idle).toBeLessThanOrEqual(t.pulling)
      expect(idle + t.downBusy).toBeGreaterThanOrEqual(t.pulling)
    }
    // Mid-pull, chunks are spreading between edges: some edges hold what an idle neighbour lacks.
    expect(timeline.some(t => t.idleContended + t.idleUnmatched > 0)).toBe(true)
  })

  it('uses the daemon constants it copies', () => {
    expect(DAEMON_CONSTANTS.HAVE_BATCH_INTERVAL_MS).toBe(HAVE_BATCH_INTERVAL_MS)
    expect(DAEMON_CONSTANTS.SCHEDULER_TICK_MS).toBe(SCHEDULER_TICK_MS)
    expect(DAEMON_CONSTANTS.CHUNK_SIZE_BYTES).toBe(CHUNK_SIZE_BYTES)
    expect(DAEMON_CONSTANTS.MAX_NEIGHBOURS).toBe(MAX_NEIGHBOURS)
  })

  it('summarises runs per size, checks the goals on the medians and plots them', () => {
    const ten = simulate(small(10))
    const fifty = simulate(small(50))
    const summaries = summarise([ten, { ...fifty, nodes: 1000 }])
    expect(summaries.map(s => [s.nodes, s.runs, s.lastOverLowerBound.median])).toEqual([[10, 1, ten.lastOverLowerBound], [1000, 1, fifty.lastOverLowerBound]])
    const checks = checkGoals(summaries)
    expect(checks.map(c => c.met)).toEqual([
      fifty.lastOverLowerBound / ten.lastOverLowerBound <= 1.5,
      Math.max(ten.lastOverLowerBound, fifty.lastOverLowerBound) <= 1.5,
      Math.max(ten.gatewayUploadOverBundle, fifty.gatewayUploadOverBundle) <= 1.3,
    ])
    const svg = plotSvg(summarise([ten, fifty, simulate(small(50, 2))]), 'test')
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
    expect(svg.match(/<polyline /g)).toHaveLength(3)
    // Two seeds at 50 nodes: their range is drawn as a bar.
    expect(svg).toMatch(/<line [^>]*opacity="0.6"/)
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true)
  })
})

describe('event queue', () => {
  it('pops events in time order, ties in the order they were pushed', () => {
    const random = seededRandom(3)
    const queue = new EventQueue<{ time: number, order: number }>()
    const pushed: Array<{ time: number, order: number }> = []
    for (let order = 0; order < 2000; order++) {
      const event = { time: Math.floor(random() * 50), order }
      pushed.push(event)
      queue.push(event.time, event)
      // Interleave pops with pushes, as the simulation does.
      if (order % 7 === 6) {
        const expected = earliest(pushed)
        pushed.splice(pushed.indexOf(expected), 1)
        expect(queue.pop()).toBe(expected)
      }
    }
    const popped: Array<{ time: number, order: number }> = []
    for (let e = queue.pop(); e !== undefined; e = queue.pop()) popped.push(e)
    expect(popped).toHaveLength(pushed.length)
    for (let i = 1; i < popped.length; i++) {
      const a = popped[i - 1] as { time: number, order: number }
      const b = popped[i] as { time: number, order: number }
      expect(a.time < b.time || (a.time === b.time && a.order < b.order)).toBe(true)
    }
  })
})

function earliest (events: Array<{ time: number, order: number }>): { time: number, order: number } {
  return events.reduce((best, e) => (e.time < best.time || (e.time === best.time && e.order < best.order) ? e : best))
}

describe('topology', () => {
  it('links every node to about K others, both ways, in one connected graph', () => {
    const { neighbours, minDegree, maxDegree } = buildTopology(500, 20, 20, seededRandom(5))
    for (const [node, list] of neighbours.entries()) {
      expect(list).not.toContain(node)
      for (const other of list) expect(neighbours[other]).toContain(node)
    }
    expect(maxDegree).toBeLessThanOrEqual(21)
    expect(minDegree).toBeGreaterThanOrEqual(15)
    const seen = new Set([0])
    const stack = [0]
    while (stack.length > 0) {
      for (const next of neighbours[stack.pop() as number] ?? []) {
        if (seen.has(next)) continue
        seen.add(next)
        stack.push(next)
      }
    }
    expect(seen.size).toBe(500)
  })

  it('is complete when every node fits in the neighbour cap', () => {
    const { neighbours } = buildTopology(10, 20, 20, seededRandom(1))
    for (const list of neighbours) expect(list).toHaveLength(9)
  })
})

describe('options', () => {
  it('defaults to the issue\'s sizes, a 64 MiB bundle and 20 Mbit/s, 10 ms links', () => {
    const parsed = parseSimulateArgs([])
    expect(parsed.kind).toBe('run')
    if (parsed.kind !== 'run') return
    expect(parsed.options.sizes).toEqual([10, 100, 1000, 5000])
    expect(parsed.options.base).toMatchObject({ bundleBytes: 64 * MiB, rateBitsPerSecond: 20e6, delayMs: 10, neighbours: 20, seed: 1 })
  })

  it('parses the quantities in the fleet bed\'s units', () => {
    const parsed = parseSimulateArgs(['--nodes', '10,50', '--size', '8MiB', '--rate', '1gbit', '--delay', '2ms', '--neighbours', '8', '--seed', '9', '--out', '/tmp/x'])
    if (parsed.kind !== 'run') throw new Error('expected a run')
    expect(parsed.options.sizes).toEqual([10, 50])
    expect(parsed.options.out).toBe('/tmp/x')
    expect(parsed.options.base).toMatchObject({ bundleBytes: 8 * MiB, rateBitsPerSecond: 1e9, delayMs: 2, neighbours: 8, seed: 9 })
    expect(() => parseSimulateArgs(['--nodes', '1'])).toThrow(/nodes/)
    expect(() => parseSimulateArgs(['--serve', 'random'])).toThrow(/serve/)
  })
})
