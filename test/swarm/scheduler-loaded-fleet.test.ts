import { describe, expect, it } from 'vitest'
import { ChunkBitmap } from '../../src/manifest/index.js'
import { Scheduler } from '../../src/swarm/scheduler.js'
import { seededRandom } from '../helpers/seeded-random.js'

/**
 * The slow rule judges a holder against the others: on the 16-host bed, loaded and CPU-bound,
 * every holder took 5-10 s per chunk to each of its 15 askers, and a fixed 5 s / 10 s silence
 * charged 50-70 honest holders per run, whose chunks then crossed twice. A drip among fast
 * holders is still judged at the fixed limits. The clock is the test's.
 */

const MiB = 1024 * 1024
const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

function scheduler (): Scheduler {
  const random = seededRandom(1)
  return new Scheduler({
    chunkSizeBytes: MiB, random, initialRequestsPerPeer: 1, minRequestsPerPeer: 1, maxRequestsPerPeer: 1, slowRequestMs: 5000, stallTimeoutMs: 15_000,
    busyHolderMinMs: Infinity, busyHolderUnmeasuredMs: Infinity, overdueMinMs: Infinity,
  })
}

/**
 * Two measured holders that each took `chunkMs` for a chunk of B, then a third holder asked
 * for A's chunk at `askedAt` while the other two keep delivering B's chunks.
 */
function fleet (chunkMs: number): { s: Scheduler, askedAt: number, deliverOthers: (at: number) => void } {
  const s = scheduler()
  s.want(B, 8 * MiB, [...Array(8).keys()])
  s.addPeer('gw', { gateway: true }, 0)
  s.addPeer('h1', { gateway: false }, 0)
  s.addPeer('h2', { gateway: false }, 0)
  s.addWholeHolder('h1', B)
  s.addWholeHolder('h2', B)
  let at = 0
  const deliverOthers = (when: number): void => {
    for (const r of s.next(at)) {
      s.delivered(r.peer, r.object, r.index, when)
      s.stored(r.object, r.index)
    }
    at = when
  }
  deliverOthers(chunkMs)
  s.want(A, MiB, [0])
  s.addPeer('busy', { gateway: false }, chunkMs)
  s.addWholeHolder('gw', A)
  s.addBitmapHolder('busy', A, bitmapOf(1, [0]))
  const asked = s.next(chunkMs).filter(r => r.object === A)
  expect(asked).toEqual([{ peer: 'busy', object: A, index: 0 }])
  return { s, askedAt: chunkMs, deliverOthers }
}

/**
 * Holders of B measured at 6 s per chunk, except 'fast' at 0.4 s; then A's one chunk, the last
 * of the pull, asked of the first holder at 6 s, and every holder holding it: the end game.
 */
function endGame (holders: string[]): Scheduler {
  const s = new Scheduler({
    chunkSizeBytes: MiB, random: seededRandom(1), initialRequestsPerPeer: 1, minRequestsPerPeer: 1, maxRequestsPerPeer: 1,
    endGameMaxRequestsPerChunk: 2, endGameMinAgeMs: 1000, endGameThresholdChunks: 8,
    busyHolderMinMs: Infinity, busyHolderUnmeasuredMs: Infinity, overdueMinMs: Infinity, slowRequestMs: Infinity,
  })
  s.want(B, holders.length * MiB, [...holders.keys()])
  for (const peer of holders) {
    s.addPeer(peer, { gateway: false }, 0)
    s.addWholeHolder(peer, B)
  }
  for (const r of s.next(0)) {
    s.delivered(r.peer, r.object, r.index, r.peer === 'fast' ? 400 : 6000)
    s.stored(r.object, r.index)
  }
  s.want(A, MiB, [0])
  s.addWholeHolder(holders[0] as string, A)
  expect(s.next(6000)).toEqual([{ peer: holders[0], object: A, index: 0 }])
  for (const peer of holders) s.addWholeHolder(peer, A)
  return s
}

describe('Scheduler: the slow rule on a loaded fleet', () => {
  it('gives a silent holder twice the others\' chunk time when they are slow, and then judges it', () => {
    const { s, askedAt, deliverOthers } = fleet(6000)
    // The others deliver a chunk every 6 s; busy is silent for 11 s: the fixed rule judged it here.
    deliverOthers(askedAt + 6000)
    expect(s.expire(askedAt + 11_000)).toEqual([])
    expect(s.takeOffences()).toEqual([])
    // Twice the others' 6 s is the age, twice that the silence: after 24 s it is judged slow.
    deliverOthers(askedAt + 12_000)
    deliverOthers(askedAt + 18_000)
    expect(s.expire(askedAt + 23_900)).toEqual([])
    deliverOthers(askedAt + 24_000)
    expect(s.expire(askedAt + 24_100)).toEqual([{ peer: 'busy', object: A, index: 0 }])
    expect(s.takeOffences()).toMatchObject([{ peer: 'busy', kind: 'slow' }])
  })

  it('judges a silent holder at the fixed limits while the others are fast', () => {
    const { s, askedAt, deliverOthers } = fleet(400)
    deliverOthers(askedAt + 5000)
    expect(s.expire(askedAt + 9900)).toEqual([])
    deliverOthers(askedAt + 9950)
    expect(s.expire(askedAt + 10_100)).toEqual([{ peer: 'busy', object: A, index: 0 }])
    expect(s.takeOffences()).toMatchObject([{ peer: 'busy', kind: 'slow' }])
  })

  it('leaves an end-game request alone for twice the others\' chunk time when they are slow, though an idle holder is fast', () => {
    // On the 16-host bed every holder took 5-9 s per chunk to each of its askers, and a request
    // duplicated after the fast candidate's 4 s floor had its bytes queued at its holder already:
    // both copies crossed. Three holders at 6 s per chunk, one idle candidate measured at 0.4 s.
    const s = endGame(['h1', 'h2', 'h3', 'fast'])
    // Where the fast candidate's floor (four minimum ages) called it late before.
    expect(s.next(6000 + 4100)).toEqual([])
    expect(s.next(6000 + 11_900)).toEqual([])
    // Twice the others' median 6 s: late now, and the fast holder takes the duplicate.
    expect(s.next(6000 + 12_100)).toEqual([{ peer: 'fast', object: A, index: 0 }])
  })

  it('still duplicates a late end-game request after four minimum ages while the others are fast', () => {
    const s = endGame(['slow', 'fast'])
    expect(s.next(6000 + 3900)).toEqual([])
    expect(s.next(6000 + 4100)).toEqual([{ peer: 'fast', object: A, index: 0 }])
  })
})

function bitmapOf (count: number, indexes: number[]): ChunkBitmap {
  const bitmap = new ChunkBitmap(count)
  for (const index of indexes) bitmap.set(index)
  return bitmap
}
