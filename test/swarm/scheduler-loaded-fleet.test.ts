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
})

function bitmapOf (count: number, indexes: number[]): ChunkBitmap {
  const bitmap = new ChunkBitmap(count)
  for (const index of indexes) bitmap.set(index)
  return bitmap
}
