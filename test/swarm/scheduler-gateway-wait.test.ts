import { describe, expect, it } from 'vitest'
import { Scheduler } from '../../src/swarm/scheduler.js'
import { seededRandom } from '../helpers/seeded-random.js'

/**
 * After a gateway answers DEFERRED (it just sent the chunk to another edge), the asker waits
 * for that copy to land and be advertised before asking the gateway again. On the 16-host bed
 * (a 20 Mbit/s gateway uplink shared by 15 edges) a copy took ~6 s to land, edges asked again
 * every second, and the gateway, out of deferrals for them, sent the chunk again: 1.55-1.68
 * copies of the bundle. The clock is the test's.
 */

const MiB = 1024 * 1024
const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

function scheduler (): Scheduler {
  const random = seededRandom(1)
  return new Scheduler({ chunkSizeBytes: MiB, random, initialRequestsPerPeer: 1, minRequestsPerPeer: 1, maxRequestsPerPeer: 1, gatewayDeferMs: 1000, gatewayDeferMaxMs: 8000 })
}

/** A gateway that has sent us one chunk of B in `chunkMs`, and a deferral of A's chunk 0 at `deferredAt`. */
function deferredBy (chunkMs: number, deferredAt: number): { s: Scheduler, askAgainAt: number | undefined } {
  const s = scheduler()
  s.addPeer('gw', { gateway: true }, 0)
  s.want(B, MiB, [0])
  s.addWholeHolder('gw', B)
  expect(s.next(0)).toEqual([{ peer: 'gw', object: B, index: 0 }])
  s.delivered('gw', B, 0, chunkMs)
  s.stored(B, 0)
  s.want(A, MiB, [0])
  s.addWholeHolder('gw', A)
  expect(s.next(deferredAt)).toEqual([{ peer: 'gw', object: A, index: 0 }])
  return { s, askAgainAt: s.deferred('gw', A, 0, deferredAt) }
}

describe('Scheduler: asking a gateway again after DEFERRED', () => {
  it('waits one chunk time at the gateway\'s rate to us when that is longer than the usual second', () => {
    const { s, askAgainAt } = deferredBy(6000, 7000)
    expect(askAgainAt).toBe(13_000)
    // Before the copy could have landed, the gateway is not asked again…
    expect(s.next(8001)).toEqual([])
    expect(s.next(12_999)).toEqual([])
    // …and an edge that advertises it meanwhile gets the request.
    s.addPeer('edge', { gateway: false }, 10_000)
    s.addHolder('edge', A, [0])
    expect(s.next(10_000)).toEqual([{ peer: 'edge', object: A, index: 0 }])
  })

  it('asks again after the usual second when the gateway is fast, and never waits past the cap', () => {
    const fast = deferredBy(200, 1000)
    expect(fast.askAgainAt).toBe(2000)
    expect(fast.s.next(2000)).toEqual([{ peer: 'gw', object: A, index: 0 }])
    const crawling = deferredBy(60_000, 61_000)
    expect(crawling.askAgainAt).toBe(69_000)
    expect(crawling.s.next(69_000)).toEqual([{ peer: 'gw', object: A, index: 0 }])
  })
})
