import { describe, expect, it } from 'vitest'
import { Scheduler, type ChunkAssignment } from '../../src/swarm/scheduler.js'
import { seededRandom } from '../helpers/seeded-random.js'

/**
 * Hostile row 2 in the scheduler alone: an edge that claims every chunk and answers one request
 * per `chunkMs` keeps its requests, but once its window is full and that queue would take longer
 * than SLOW_EDGE_QUEUE_MS, its claim no longer keeps the gateway away from the rest. An honest
 * edge that is merely busy (its full queue drains within the limit) still does. The clock is the test's.
 */

const MiB = 1024 * 1024
const A = 'a'.repeat(64)
const CHUNKS = 24

function withClaimer (chunkMs: number): { s: Scheduler, toGateway: (now: number) => ChunkAssignment[] } {
  const s = new Scheduler({ chunkSizeBytes: MiB, random: seededRandom(1), initialRequestsPerPeer: 2, minRequestsPerPeer: 2, slowEdgeQueueMs: 8000 })
  s.addPeer('gw', { gateway: true }, 0)
  s.addPeer('claimer', { gateway: false }, 0)
  s.want(A, CHUNKS * MiB, [...Array(CHUNKS).keys()])
  s.addWholeHolder('gw', A)
  s.addWholeHolder('claimer', A)
  const first = s.next(0)
  // Unmeasured, the claimer gets its window and keeps the gateway away from everything.
  expect(first.map(a => a.peer)).toEqual(['claimer', 'claimer'])
  // It answers its first request after chunkMs: now it is measured, and it is asked again.
  const answered = first[0] as ChunkAssignment
  s.delivered('claimer', A, answered.index, chunkMs)
  s.stored(A, answered.index)
  return { s, toGateway: (now) => s.next(now).filter(a => a.peer === 'gw') }
}

describe('Scheduler: a slow edge claimer and the gateway', () => {
  it('a claimer whose full window would take over SLOW_EDGE_QUEUE_MS no longer keeps the gateway away', () => {
    const { toGateway } = withClaimer(14_000)
    expect([...toGateway(14_000), ...toGateway(14_001)].length).toBeGreaterThan(0)
  })

  it('a busy honest edge whose full window drains within the limit still keeps the gateway away', () => {
    const { toGateway } = withClaimer(1_000)
    expect([...toGateway(1_000), ...toGateway(1_001), ...toGateway(1_500)]).toEqual([])
  })
})
