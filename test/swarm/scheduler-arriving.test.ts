import { describe, expect, it } from 'vitest'
import { ChunkBitmap } from '../../src/manifest/index.js'
import { Scheduler } from '../../src/swarm/scheduler.js'
import { seededRandom } from '../helpers/seeded-random.js'

/**
 * A chunk whose answer has started to arrive is on the wire: on the 16-host bed (20 Mbit/s
 * uplinks each shared by 15 askers, so a chunk takes several seconds from its first byte to
 * its last) edges fetched 3-16 chunks twice, each after the slow rule, a move, the end game or
 * a withdrawal from the gateway had asked it again while its bytes were coming. The clock is
 * the test's: every time below is a number passed in.
 */

const MiB = 1024 * 1024
const A = 'a'.repeat(64)

function scheduler (init: Partial<ConstructorParameters<typeof Scheduler>[0]> = {}): Scheduler {
  const random = seededRandom(1)
  return new Scheduler({ chunkSizeBytes: MiB, random, ...init })
}

function bitmapOf (count: number, indexes: number[]): ChunkBitmap {
  const bitmap = new ChunkBitmap(count)
  for (const index of indexes) bitmap.set(index)
  return bitmap
}

describe('Scheduler: answers that have started to arrive', () => {
  it('counts a busy holder\'s silence from the first byte of its answer, so an honest shared uplink is not judged slow', () => {
    const s = scheduler({ initialRequestsPerPeer: 1, slowRequestMs: 5000, stallTimeoutMs: 60_000 })
    s.want(A, 2 * MiB, [0, 1])
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('busy', { gateway: false }, 0)
    s.addPeer('other', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addBitmapHolder('busy', A, bitmapOf(2, [0]))
    s.addBitmapHolder('other', A, bitmapOf(2, [1]))
    expect(s.next(0).sort((a, b) => a.index - b.index)).toEqual([{ peer: 'busy', object: A, index: 0 }, { peer: 'other', object: A, index: 1 }])
    // Others deliver meanwhile; busy serves 14 askers first and its answer starts at 6 s.
    s.delivered('other', A, 1, 3000)
    s.stored(A, 1)
    s.responseStarted('busy', A, 0, 6000)
    // 10 s after the request: the rule used to judge it slow and ask the gateway here.
    expect(s.expire(10_001)).toEqual([])
    expect(s.takeOffences()).toEqual([])
    expect(s.next(10_001)).toEqual([])
    // Its bytes come: delivered whole, once.
    expect(s.delivered('busy', A, 0, 11_500)).toEqual({ accepted: true, cancel: [] })
    expect(s.requestCounts()).toMatchObject({ first: 2, again: 0, extra: 0, duplicatesAfter: {} })
  })

  it('still judges a holder slow whose answer started and then stopped coming', () => {
    const s = scheduler({ initialRequestsPerPeer: 1, slowRequestMs: 5000, stallTimeoutMs: 60_000 })
    s.want(A, 1 * MiB, [0])
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('drip', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addWholeHolder('drip', A)
    expect(s.next(0)).toEqual([{ peer: 'drip', object: A, index: 0 }])
    s.responseStarted('drip', A, 0, 100)
    expect(s.expire(10_099)).toEqual([])
    expect(s.expire(10_101)).toEqual([{ peer: 'drip', object: A, index: 0 }])
    expect(s.takeOffences()).toMatchObject([{ peer: 'drip', kind: 'slow' }])
    expect(s.next(10_101)).toEqual([{ peer: 'gw', object: A, index: 0 }])
  })

  it('does not move the head of a busy holder\'s queue once its answer is arriving', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, minRequestsPerPeer: 2, maxRequestsPerPeer: 2, endGameThresholdChunks: 0 })
    s.want(A, 4 * MiB, [0, 1, 2, 3])
    s.addPeer('busy', { gateway: false }, 0)
    s.addPeer('other', { gateway: false }, 0)
    s.addBitmapHolder('busy', A, bitmapOf(4, [0, 1]))
    s.addBitmapHolder('other', A, bitmapOf(4, [2, 3]))
    const asked = s.next(0)
    expect(asked).toHaveLength(4)
    // other shows a chunk time of 100 ms; busy sends us nothing whole, but its head is arriving.
    s.delivered('other', A, 2, 100)
    s.stored(A, 2)
    s.delivered('other', A, 3, 200)
    s.stored(A, 3)
    const head = (asked.find(r => r.peer === 'busy') as { index: number }).index
    const behind = head === 0 ? 1 : 0
    s.responseStarted('busy', A, head, 300)
    s.addPeer('fresh', { gateway: false }, 300)
    s.addBitmapHolder('fresh', A, bitmapOf(4, [0, 1]))
    // Past three chunk times: the request behind the head moves, the arriving head stays.
    expect(s.next(1000)).toEqual([{ peer: 'fresh', object: A, index: behind }])
    expect(s.takeReleased()).toEqual([{ peer: 'busy', object: A, index: behind }])
    s.delivered('fresh', A, behind, 1100)
    s.stored(A, behind)
    expect(s.next(5000)).toEqual([])
    expect(s.inFlight('busy')).toBe(1)
  })

  it('does not duplicate an arriving request in the end game, unless its holder has been judged', () => {
    const s = scheduler({
      initialRequestsPerPeer: 1, minRequestsPerPeer: 1, maxRequestsPerPeer: 1, endGameMaxRequestsPerChunk: 2, endGameMinAgeMs: 1000, endGameThresholdChunks: 8,
      busyHolderUnmeasuredMs: Infinity, busyHolderMinMs: Infinity, overdueMinMs: Infinity, slowRequestMs: 5000, stallTimeoutMs: 60_000,
    })
    s.want(A, 2 * MiB, [0, 1])
    s.addPeer('p1', { gateway: false }, 0)
    s.addPeer('p2', { gateway: false }, 0)
    s.addWholeHolder('p1', A)
    s.addWholeHolder('p2', A)
    const asked = s.next(0)
    const atP1 = (asked.find(r => r.peer === 'p1') as { index: number }).index
    const atP2 = (asked.find(r => r.peer === 'p2') as { index: number }).index
    s.delivered('p2', A, atP2, 100)
    s.stored(A, atP2)
    s.responseStarted('p1', A, atP1, 200)
    // Every remaining chunk is in flight and p1's request is 5 s old: late by every other
    // measure, but its bytes are coming.
    expect(s.next(5000)).toEqual([])
    // Ten seconds after its first byte without the rest, the slow rule takes it back and charges p1.
    expect(s.expire(10_201)).toEqual([{ peer: 'p1', object: A, index: atP1 }])
    expect(s.takeOffences()).toMatchObject([{ peer: 'p1', kind: 'slow' }])
    expect(s.next(10_201)).toEqual([{ peer: 'p2', object: A, index: atP1 }])
  })

  it('leaves a gateway\'s arriving copy alone when an edge starts to advertise the chunk', () => {
    const s = scheduler({ initialRequestsPerPeer: 2 })
    s.want(A, 2 * MiB, [0, 1])
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('edge', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    expect(s.next(0)).toHaveLength(2)
    s.responseStarted('gw', A, 0, 500)
    s.addHolder('edge', A, [0, 1])
    // Chunk 1 was still queued at the gateway: withdrawn and asked of the edge. Chunk 0 is arriving.
    expect(s.takeReleased()).toEqual([{ peer: 'gw', object: A, index: 1 }])
    expect(s.next(600)).toEqual([{ peer: 'edge', object: A, index: 1 }])
    expect(s.inFlight('gw')).toBe(1)
  })

  it('ignores a start for a request no longer standing, or one asked again since', () => {
    const s = scheduler({ initialRequestsPerPeer: 1, slowRequestMs: 5000, stallTimeoutMs: 60_000 })
    s.want(A, 1 * MiB, [0])
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('edge', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addWholeHolder('edge', A)
    expect(s.next(0)).toEqual([{ peer: 'edge', object: A, index: 0 }])
    // The answer to the old request started; then it was cancelled and asked again at 2 s.
    s.responseStarted('edge', A, 0, 1000)
    s.answered('edge', A, 0, 2000)
    expect(s.next(2000)).toEqual([{ peer: 'edge', object: A, index: 0 }])
    // Silence counts from the new request: judged 10 s after it, as if nothing had started.
    expect(s.expire(12_001)).toEqual([{ peer: 'edge', object: A, index: 0 }])
    expect(s.takeOffences()).toMatchObject([{ peer: 'edge', kind: 'slow' }])
  })
})
