import { describe, expect, it } from 'vitest'
import { Scheduler, type ChunkAssignment, type SchedulerInit } from '../../src/swarm/scheduler.js'
import { seededRandom } from '../helpers/seeded-random.js'

/**
 * The set of edge holders an edge asks while it is short of CPU (SchedulerInit.cpuShort and
 * maxActiveHolders, BitTorrent's unchoke on the asking side): more holders than the set's size
 * get no requests, a chunk that only a holder outside the set has is still asked there, a slow
 * member gives its place, and with CPU to spare every holder is asked as before.
 */

const MiB = 1024 * 1024
const A = 'a'.repeat(64)
const CHUNKS = 64
const range = (n: number): number[] => [...Array(n).keys()]

function scheduler (init: Partial<SchedulerInit> = {}): Scheduler {
  return new Scheduler({
    chunkSizeBytes: MiB, random: seededRandom(7), initialRequestsPerPeer: 4,
    maxActiveHolders: 3, activeRotateMs: 10_000, cpuShort: () => true, ...init,
  })
}

/** A scheduler wanting A, with `holders` edge peers holding all of it. */
function withWholeHolders (holders: number, init: Partial<SchedulerInit> = {}): Scheduler {
  const s = scheduler(init)
  s.want(A, CHUNKS * MiB, range(CHUNKS))
  for (let i = 1; i <= holders; i++) {
    s.addPeer(`p${i}`, { gateway: false }, 0)
    s.addWholeHolder(`p${i}`, A)
  }
  return s
}

const peersOf = (asked: ChunkAssignment[]): Set<string> => new Set(asked.map(a => a.peer))

function deliverAll (s: Scheduler, asked: ChunkAssignment[], now: number): void {
  for (const a of asked) {
    s.delivered(a.peer, a.object, a.index, now)
    s.stored(a.object, a.index)
  }
}

describe('Scheduler: the set of holders asked while short of CPU', () => {
  it('asks at most maxActiveHolders of eight holders of every chunk', () => {
    const s = withWholeHolders(8)
    const asked = s.next(0)
    expect(asked).toHaveLength(12)
    expect(peersOf(asked).size).toBe(3)
    // Delivered and stored, each member is asked again: still the same three.
    deliverAll(s, asked, 500)
    const again = s.next(500)
    expect(again.length).toBeGreaterThan(0)
    for (const peer of peersOf(again)) expect(peersOf(asked).has(peer)).toBe(true)
  })

  it('asks a holder outside the set for a chunk only it has while fewer than maxActiveHolders are busy', () => {
    const s = scheduler()
    s.want(A, CHUNKS * MiB, range(CHUNKS))
    // p1 and p2 hold all but the last chunk and are asked first; p3, then, holds only chunks
    // they are asked for: the three are the set, and p3 has nothing of ours in flight.
    for (const peer of ['p1', 'p2']) {
      s.addPeer(peer, { gateway: false }, 0)
      s.addHolder(peer, A, range(CHUNKS - 1))
    }
    const first = s.next(0)
    s.addPeer('p3', { gateway: false }, 5)
    s.addHolder('p3', A, first.map(a => a.index))
    expect(s.next(5)).toEqual([])
    // A fourth peer, outside the full set, has the one chunk nobody else has.
    s.addPeer('p4', { gateway: false }, 10)
    s.addHolder('p4', A, [CHUNKS - 1])
    expect(s.next(10)).toEqual([{ peer: 'p4', object: A, index: CHUNKS - 1 }])
  })

  it('gives a slow member\'s place to another holder after activeRotateMs', () => {
    const s = withWholeHolders(4, { maxActiveHolders: 2 })
    const outstanding = new Map<string, ChunkAssignment[]>()
    const ask = (now: number): ChunkAssignment[] => {
      const asked = s.next(now)
      for (const a of asked) outstanding.set(a.peer, [...(outstanding.get(a.peer) ?? []), a])
      return asked
    }
    const members = [...peersOf(ask(0))]
    expect(members).toHaveLength(2)
    const [fast, slow] = members as [string, string]
    // The fast member answers a request every 200 ms, the slow one every 2 s.
    const answer = (peer: string, now: number): void => {
      const a = outstanding.get(peer)?.shift()
      if (a !== undefined) deliverAll(s, [a], now)
    }
    const late = new Set<string>()
    for (let now = 100; now <= 12_000; now += 100) {
      if (now % 200 === 0) answer(fast, now)
      if (now % 2000 === 0) answer(slow, now)
      const asked = ask(now)
      if (now > 10_000) for (const peer of peersOf(asked)) late.add(peer)
    }
    expect(late.has(fast)).toBe(true)
    expect(late.has(slow)).toBe(false)
    expect([...late].some(peer => peer !== fast && peer !== slow)).toBe(true)
  })

  it('asks every holder, as with no signal at all, while not short of CPU', () => {
    const asked = withWholeHolders(8, { cpuShort: () => false }).next(0)
    expect(peersOf(asked).size).toBe(8)
    expect(asked).toEqual(withWholeHolders(8, { cpuShort: undefined }).next(0))
  })

  it('follows the signal as it changes during a pull', () => {
    let short = false
    const s = withWholeHolders(8, { cpuShort: () => short })
    const asked = s.next(0)
    expect(peersOf(asked).size).toBe(8)
    deliverAll(s, asked, 500)
    short = true
    const tight = s.next(500)
    expect(peersOf(tight).size).toBeLessThanOrEqual(3)
    deliverAll(s, tight, 1000)
    short = false
    expect(peersOf(s.next(1000)).size).toBe(8)
  })

  it('does not ask the signal while nothing is wanted (its timer may stop)', () => {
    let asked = 0
    const s = scheduler({ cpuShort: () => { asked++; return true } })
    s.addPeer('p1', { gateway: false }, 0)
    s.next(0)
    expect(asked).toBe(0)
    s.want(A, CHUNKS * MiB, range(CHUNKS))
    s.addWholeHolder('p1', A)
    s.next(10)
    expect(asked).toBe(1)
  })
})
