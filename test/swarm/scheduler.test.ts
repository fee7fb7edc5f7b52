import { describe, expect, it } from 'vitest'
import { ChunkBitmap } from '../../src/manifest/index.js'
import { Scheduler } from '../../src/swarm/scheduler.js'

const MiB = 1024 * 1024
const A = 'a'.repeat(64)
const B = 'b'.repeat(64)

function seeded (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

function scheduler (init: Partial<ConstructorParameters<typeof Scheduler>[0]> = {}): Scheduler {
  return new Scheduler({ chunkSizeBytes: MiB, random: seeded(1), ...init })
}

const range = (n: number): number[] => [...Array(n).keys()]

describe('Scheduler', () => {
  it('asks each chunk of one peer only, up to each window', () => {
    const s = scheduler({ initialRequestsPerPeer: 4 })
    s.want(A, 10 * MiB, range(10))
    s.addPeer('p1', { gateway: false }, 0)
    s.addPeer('p2', { gateway: false }, 0)
    s.addWholeHolder('p1', A)
    s.addWholeHolder('p2', A)
    const asked = s.next(0)
    expect(asked).toHaveLength(8)
    const keys = asked.map(r => r.index)
    expect(new Set(keys).size).toBe(8)
    expect(asked.filter(r => r.peer === 'p1')).toHaveLength(4)
    expect(s.next(0)).toEqual([])
  })

  it('asks for a background object\'s chunks only while no other object has one a peer could send', () => {
    const s = scheduler({ initialRequestsPerPeer: 4 })
    s.addPeer('p1', { gateway: false }, 0)
    s.want(A, 8 * MiB, range(8), { background: true })
    s.addWholeHolder('p1', A)
    // Alone, background work takes the window.
    const early = s.next(0)
    expect(early.map(r => r.object)).toEqual([A, A, A, A])
    for (const r of early) {
      s.delivered('p1', r.object, r.index, 10)
      s.stored(r.object, r.index)
    }
    // A foreground pull arrives: every request goes to it, though A's chunks are as rare.
    s.want(B, 8 * MiB, range(8))
    s.addWholeHolder('p1', B)
    const asked: string[] = []
    for (let t = 20; asked.filter(o => o === B).length < 8; t += 10) {
      const batch = s.next(t)
      expect(batch.length).toBeGreaterThan(0)
      for (const r of batch) {
        asked.push(r.object)
        s.delivered('p1', r.object, r.index, t + 5)
        s.stored(r.object, r.index)
      }
    }
    expect(asked).toEqual(Array(8).fill(B))
    // Foreground done: the background resumes.
    expect(s.next(1000).map(r => r.object)).toContain(A)
  })

  it('makes a background object foreground when a client waits on it or a foreground pull wants it', () => {
    const D = 'd'.repeat(64)
    const s = scheduler({ initialRequestsPerPeer: 16 })
    s.addPeer('p1', { gateway: false }, 0)
    for (const object of [A, B, D]) {
      s.want(object, 4 * MiB, range(4), { background: true })
      s.addWholeHolder('p1', object)
    }
    s.prioritize(A)
    s.want(B, 4 * MiB, range(4))
    const asked = s.next(0).map(r => r.object)
    expect(asked.filter(o => o === A)).toHaveLength(4)
    expect(asked.filter(o => o === B)).toHaveLength(4)
    // D is still background, and A and B have chunks in flight.
    expect(asked).not.toContain(D)
  })

  it('asks the rarest chunks first', () => {
    const s = scheduler({ initialRequestsPerPeer: 2 })
    s.want(A, 6 * MiB, range(6))
    for (const p of ['p1', 'p2', 'p3']) s.addPeer(p, { gateway: false }, 0)
    s.addWholeHolder('p1', A)
    s.addHolder('p2', A, [0, 1, 2, 3])
    s.addHolder('p3', A, [0, 1])
    // Holder counts: 0,1 → 3; 2,3 → 2; 4,5 → 1 (only p1).
    const asked = s.next(0)
    const p1 = asked.filter(r => r.peer === 'p1').map(r => r.index).sort()
    expect(p1).toEqual([4, 5])
    const p2 = asked.filter(r => r.peer === 'p2').map(r => r.index).sort()
    expect(p2).toEqual([2, 3])
  })

  it('asks the chunks of a prioritized object first, in order', () => {
    const s = scheduler({ initialRequestsPerPeer: 3 })
    s.want(A, 10 * MiB, range(10))
    s.want(B, 10 * MiB, range(10))
    s.addPeer('p1', { gateway: false }, 0)
    s.addWholeHolder('p1', A)
    s.addWholeHolder('p1', B)
    s.prioritize(B)
    expect(s.next(0)).toEqual([0, 1, 2].map(index => ({ peer: 'p1', object: B, index })))
  })

  it('serves the objects clients wait on ahead of prioritized ones, taking turns a chunk at a time', () => {
    const C = 'c'.repeat(64)
    const s = scheduler({ initialRequestsPerPeer: 1, minRequestsPerPeer: 1, maxRequestsPerPeer: 1 })
    s.addPeer('p1', { gateway: false }, 0)
    s.want(A, 8 * MiB, range(8))
    s.want(B, 1 * MiB, range(1))
    s.want(C, 4 * MiB, range(4))
    for (const object of [A, B, C]) s.addWholeHolder('p1', object)
    // The pull's manifest order: C, then A, then B.
    s.prioritize(B)
    s.prioritize(A)
    s.prioritize(C)
    // A client waits on the big A, then on the one-chunk B: B comes next, not after A's 8 chunks.
    s.clientWaits(A)
    s.clientWaits(B)
    const asked: string[] = []
    for (let t = 0; asked.length < 13; t += 10) {
      const [r] = s.next(t)
      if (r === undefined) throw new Error(`nothing asked after ${asked.join(',')}`)
      asked.push(`${r.object[0] ?? ''}${r.index}`)
      s.delivered('p1', r.object, r.index, t + 5)
      s.stored(r.object, r.index)
      // The client waiting on A leaves after A's third chunk: C's turn in the manifest order.
      if (asked.length === 4) s.clientLeft(A)
    }
    expect(asked).toEqual(['a0', 'b0', 'a1', 'a2', 'c0', 'c1', 'c2', 'c3', 'a3', 'a4', 'a5', 'a6', 'a7'])
  })

  it('asks a gateway only for chunks no other neighbour holds', () => {
    const s = scheduler({ initialRequestsPerPeer: 8 })
    s.want(A, 4 * MiB, range(4))
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('edge', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addHolder('edge', A, [0, 1])
    const asked = s.next(0)
    expect(asked.filter(r => r.peer === 'gw').map(r => r.index).sort()).toEqual([2, 3])
    expect(asked.filter(r => r.peer === 'edge').map(r => r.index).sort()).toEqual([0, 1])
  })

  it('accepts the first delivery, cancels the others and ignores duplicates in the end game', () => {
    // A request at a busy holder would move instead (a test below): this one is about duplicates.
    const s = scheduler({ initialRequestsPerPeer: 2, endGameMaxRequestsPerChunk: 2, busyHolderUnmeasuredMs: Infinity })
    s.want(A, 1 * MiB, [0])
    s.addPeer('slow', { gateway: false }, 0)
    s.addWholeHolder('slow', A)
    expect(s.next(0)).toEqual([{ peer: 'slow', object: A, index: 0 }])
    s.addPeer('fast', { gateway: false }, 1)
    s.addWholeHolder('fast', A)
    expect(s.next(1)).toEqual([])
    expect(s.next(2000)).toEqual([{ peer: 'fast', object: A, index: 0 }])
    const first = s.delivered('fast', A, 0, 2001)
    expect(first).toEqual({ accepted: true, cancel: [{ peer: 'slow', object: A, index: 0 }] })
    expect(s.delivered('slow', A, 0, 2002).accepted).toBe(false)
    expect(s.stored(A, 0)).toBe(true)
    expect(s.isWanted(A)).toBe(false)
    // Counted by why, so a fleet run can say where its fetched-twice chunks came from.
    expect(s.requestCounts()).toEqual({ first: 1, again: 0, moved: 0, extra: 1, overdue: 0, endGame: 1, duplicatesAfter: { 'end-game': 1 } })
  })

  it('charges a copy that lands after its object completed to why the chunk was asked again', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, endGameMaxRequestsPerChunk: 2, busyHolderUnmeasuredMs: Infinity })
    s.want(A, 1 * MiB, [0])
    s.addPeer('slow', { gateway: false }, 0)
    s.addWholeHolder('slow', A)
    s.next(0)
    s.addPeer('fast', { gateway: false }, 1)
    s.addWholeHolder('fast', A)
    expect(s.next(2000)).toEqual([{ peer: 'fast', object: A, index: 0 }])
    s.delivered('fast', A, 0, 2001)
    expect(s.stored(A, 0)).toBe(true)
    // The cancel came too late: slow's copy arrives once the object is gone from the scheduler.
    expect(s.delivered('slow', A, 0, 2500).accepted).toBe(false)
    expect(s.requestCounts().duplicatesAfter).toEqual({ 'end-game': 1 })
    // A request cancelled because its object is no longer wanted, and a chunk nobody asked for.
    s.want(B, 1 * MiB, [0])
    s.addWholeHolder('slow', B)
    expect(s.next(3000)).toEqual([{ peer: 'slow', object: B, index: 0 }])
    expect(s.unwant(B)).toEqual([{ peer: 'slow', object: B, index: 0 }])
    s.delivered('slow', B, 0, 3100)
    s.delivered('slow', 'c'.repeat(64), 0, 3200)
    expect(s.requestCounts().duplicatesAfter).toEqual({ 'end-game': 1, cancelled: 1, unexplained: 1 })
  })

  it('re-asks elsewhere what a stalled peer holds', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, stallTimeoutMs: 1000 })
    s.want(A, 2 * MiB, range(2))
    s.addPeer('p1', { gateway: false }, 0)
    s.addWholeHolder('p1', A)
    expect(s.next(0)).toHaveLength(2)
    s.addPeer('p2', { gateway: false }, 0)
    s.addWholeHolder('p2', A)
    expect(s.expire(500)).toEqual([])
    const released = s.expire(1500)
    expect(released.map(r => r.index).sort()).toEqual([0, 1])
    const again = s.next(1500)
    expect(again.map(r => r.index).sort()).toEqual([0, 1])
    expect(s.requestCounts()).toMatchObject({ first: 2, again: 2, moved: 0, extra: 0 })
    // The stalled peer's window shrank to a single probe; p2 (initial window 2) may take both.
    expect(s.window('p1')).toBe(1)
  })

  it('puts a dropped peer\'s requests back in the pool', () => {
    const s = scheduler({ initialRequestsPerPeer: 4 })
    s.want(A, 4 * MiB, range(4))
    s.addPeer('p1', { gateway: false }, 0)
    s.addWholeHolder('p1', A)
    expect(s.next(0)).toHaveLength(4)
    s.addPeer('p2', { gateway: false }, 0)
    s.addWholeHolder('p2', A)
    expect(s.next(0)).toEqual([])
    expect(s.removePeer('p1')).toHaveLength(4)
    expect(s.next(1)).toHaveLength(4)
  })

  it('asks another holder after a chunk fails verification', () => {
    const s = scheduler({ initialRequestsPerPeer: 1 })
    s.want(A, 1 * MiB, [0])
    s.addPeer('liar', { gateway: false }, 0)
    s.addPeer('honest', { gateway: false }, 0)
    s.addWholeHolder('liar', A)
    const [first] = s.next(0)
    expect(first?.peer).toBe('liar')
    s.addWholeHolder('honest', A)
    expect(s.delivered('liar', A, 0, 1).accepted).toBe(true)
    s.rejected('liar', A, 0)
    s.removePeer('liar')
    expect(s.next(2)).toEqual([{ peer: 'honest', object: A, index: 0 }])
  })

  it('grows a fast peer\'s window with its measured rate', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, maxRequestsPerPeer: 16, windowTargetMs: 500 })
    s.want(A, 200 * MiB, range(200))
    s.addPeer('p1', { gateway: false }, 0)
    s.addBitmapHolder('p1', A, ChunkBitmap.full(200))
    let now = 0
    for (let round = 0; round < 20; round++) {
      for (const r of s.next(now)) {
        now += 10 // 1 MiB per 10 ms ≈ 100 MB/s
        s.delivered(r.peer, r.object, r.index, now)
        s.stored(r.object, r.index)
      }
    }
    expect(s.rate('p1')).toBeGreaterThan(50e6)
    expect(s.window('p1')).toBe(16)
  })

  it('never asks for a chunk nobody holds and counts what remains', () => {
    const s = scheduler()
    s.want(A, 3 * MiB + 5, [0, 2, 3])
    expect(s.remainingChunks()).toBe(3)
    s.addPeer('p1', { gateway: false }, 0)
    s.addHolder('p1', A, [1, 2])
    expect(s.next(0)).toEqual([{ peer: 'p1', object: A, index: 2 }])
  })

  it('stops asking an edge that refuses a chunk, and asks the gateway for it', () => {
    const s = scheduler({ initialRequestsPerPeer: 4 })
    s.want(A, 2 * MiB, range(2))
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('liar', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addWholeHolder('liar', A)
    // The liar claims both chunks, so the gateway leaves them to it at first.
    expect(s.next(0).map(r => r.peer)).toEqual(['liar', 'liar'])
    s.deferred('liar', A, 0, 10)
    s.refused('liar', A, 1, 10)
    const again = s.next(10)
    expect(again.map(r => `${r.peer}:${r.index}`).sort()).toEqual(['gw:0', 'gw:1'])
    // A fresh advertisement from the liar does not pull the requests back from the gateway.
    s.addHolder('liar', A, [0, 1])
    expect(s.takeReleased()).toEqual([])
    expect(s.inFlight('gw')).toBe(2)
  })

  it('moves a request off a holder that sits on it while the gateway could send it, and reports the holder', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, slowRequestMs: 5000, stallTimeoutMs: 60_000 })
    s.want(A, 1 * MiB, [0])
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('sitter', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addWholeHolder('sitter', A)
    expect(s.next(0)).toEqual([{ peer: 'sitter', object: A, index: 0 }])
    // Old enough at 5 s, but a holder gets twice that without any delivery before it is judged.
    expect(s.expire(9000)).toEqual([])
    expect(s.expire(10_001)).toEqual([{ peer: 'sitter', object: A, index: 0 }])
    expect(s.takeOffences()).toMatchObject([{ peer: 'sitter', kind: 'slow' }])
    expect(s.next(10_001)).toEqual([{ peer: 'gw', object: A, index: 0 }])
  })

  it('judges a holder slow from the first request it was sent, not from when it connected', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, slowRequestMs: 5000, stallTimeoutMs: 60_000 })
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('busy', { gateway: false }, 0)
    // Connected for 50 s with nothing asked of it, then asked: its silence starts now.
    s.want(A, 1 * MiB, [0])
    s.addWholeHolder('gw', A)
    s.addWholeHolder('busy', A)
    expect(s.next(50_000)).toEqual([{ peer: 'busy', object: A, index: 0 }])
    expect(s.expire(55_001)).toEqual([])
    expect(s.takeOffences()).toEqual([])
    expect(s.expire(60_001)).toEqual([{ peer: 'busy', object: A, index: 0 }])
    expect(s.takeOffences()).toMatchObject([{ peer: 'busy', kind: 'slow' }])
  })

  it('while nothing arrives, asks the gateway for what a silent edge claims, without charging it', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, overdueMinMs: 5000, slowRequestMs: 5000 })
    s.want(A, 4 * MiB, range(4))
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('claimer', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addWholeHolder('claimer', A)
    // The claimer's advertisement keeps the gateway away at first.
    const first = s.next(0)
    expect(first.map(r => r.peer)).toEqual(['claimer', 'claimer'])
    expect(s.expire(5000)).toEqual([])
    expect(s.next(5000)).toEqual([])
    // Past the limit the gateway is asked for the claimer's two requests (the oldest first)…
    expect(s.expire(5001)).toEqual([])
    expect(s.takeOffences()).toEqual([])
    const asked = s.next(5001)
    expect(asked.map(r => `${r.peer}:${r.index}`).sort()).toEqual(first.map(r => `gw:${r.index}`).sort())
    // …which the claimer keeps (nothing is taken from it) until they arrive elsewhere.
    expect(s.inFlight('claimer')).toBe(2)
    for (const r of asked) {
      expect(s.delivered('gw', A, r.index, 5100)).toMatchObject({ accepted: true, cancel: [{ peer: 'claimer', index: r.index }] })
      s.stored(A, r.index)
    }
    // Then the rest, which only the claimer and the gateway hold: the claimer gets one probe
    // until it delivers again, the gateway the other.
    expect(s.next(5100).map(r => r.peer).sort()).toEqual(['claimer', 'gw'])
  })

  it('does not judge an edge overdue while other holders deliver', () => {
    const s = scheduler({ initialRequestsPerPeer: 1, overdueMinMs: 5000, slowRequestMs: 60_000, stallTimeoutMs: 60_000 })
    s.want(A, 100 * MiB, range(100))
    s.addPeer('gw', { gateway: true }, 0)
    s.addPeer('busy', { gateway: false }, 0)
    s.addPeer('other', { gateway: false }, 0)
    s.addWholeHolder('gw', A)
    s.addWholeHolder('busy', A)
    s.addWholeHolder('other', A)
    const atBusy = s.next(0).filter(r => r.peer === 'busy')
    expect(atBusy).toHaveLength(1)
    // 'other' delivers every second; 'busy' sits on its request for 8 s.
    for (let now = 1000; now <= 8000; now += 1000) {
      for (const r of s.next(now)) if (r.peer === 'other') s.delivered('other', A, r.index, now + 500)
      expect(s.expire(now)).toEqual([])
    }
    expect(s.next(8000).filter(r => r.peer === 'gw')).toEqual([])
    expect(s.inFlight('busy')).toBe(1)
  })

  it('moves requests off a drip (one chunk now and then) while other holders deliver', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, slowRequestMs: 5000 })
    s.want(A, 200 * MiB, range(200))
    s.addPeer('drip', { gateway: false }, 0)
    s.addPeer('honest', { gateway: false }, 0)
    s.addWholeHolder('drip', A)
    s.addWholeHolder('honest', A)
    const asked = new Map<string, number[]>([['drip', []], ['honest', []]])
    const offences: string[] = []
    const deliver = (peer: string, now: number): void => {
      const index = asked.get(peer)?.shift()
      if (index !== undefined && s.delivered(peer, A, index, now).accepted) s.stored(A, index)
    }
    // The honest peer delivers every 100 ms; the drip one chunk every 14 s (under the stall timeout).
    for (let now = 0; now < 60_000 && s.isWanted(A); now += 100) {
      for (const r of s.next(now)) asked.get(r.peer)?.push(r.index)
      deliver('honest', now)
      if (now % 14_000 === 0) deliver('drip', now)
      for (const r of s.expire(now)) asked.set(r.peer, (asked.get(r.peer) ?? []).filter(i => i !== r.index))
      for (const o of s.takeOffences()) offences.push(`${o.peer}:${o.kind}`)
    }
    expect(s.isWanted(A)).toBe(false)
    expect(offences).toContain('drip:slow')
    expect(offences.every(o => o.startsWith('drip:'))).toBe(true)
  })

  it('limits chunks awaiting storage and requests outstanding separately', () => {
    const s = scheduler({ initialRequestsPerPeer: 8, maxBufferedChunks: 2, maxOutstandingRequests: 6 })
    s.want(A, 20 * MiB, range(20))
    for (const peer of ['p1', 'p2']) {
      s.addPeer(peer, { gateway: false }, 0)
      s.addWholeHolder(peer, A)
    }
    // Outstanding requests are capped at 6, not at the 2 chunks of memory.
    const first = s.next(0)
    expect(first).toHaveLength(6)
    expect(s.next(0)).toEqual([])
    // Two arrive and wait for the store: memory is full, nothing more goes out…
    for (const r of first.slice(0, 2)) expect(s.delivered(r.peer, r.object, r.index, 10).accepted).toBe(true)
    expect(s.canRequest()).toBe(false)
    expect(s.next(10)).toEqual([])
    // …until the store takes one; then the freed requests go out.
    s.stored(A, (first[0] as { index: number }).index)
    expect(s.next(11)).toHaveLength(2)
  })

  it('moves a request queued at a slow holder to a faster idle one, never the head of the queue', () => {
    const s = scheduler({ initialRequestsPerPeer: 4, minRequestsPerPeer: 4, maxRequestsPerPeer: 4, endGameThresholdChunks: 0 })
    s.want(A, 8 * MiB, range(8))
    s.addPeer('slow', { gateway: false }, 0)
    s.addPeer('fast', { gateway: false }, 0)
    s.addWholeHolder('slow', A)
    s.addWholeHolder('fast', A)
    const asked = s.next(0)
    expect(asked).toHaveLength(8)
    // fast sends a chunk every 30 ms, slow one a second: both rates are measured.
    let now = 0
    for (const r of asked.filter(r => r.peer === 'fast')) {
      now += 30
      s.delivered('fast', A, r.index, now)
      s.stored(A, r.index)
    }
    const slowQueue = asked.filter(r => r.peer === 'slow').map(r => r.index)
    s.delivered('slow', A, slowQueue[0] as number, 1000)
    s.stored(A, slowQueue[0] as number)
    // fast is idle; slow still has three queued, the head of which may be on the wire.
    const moved = s.next(1000)
    expect(moved.map(r => r.peer)).toEqual(['fast', 'fast'])
    expect(moved.map(r => r.index).sort()).toEqual(slowQueue.slice(2).sort())
    expect(s.takeReleased().map(r => [r.peer, r.index]).sort()).toEqual(slowQueue.slice(2).map(i => ['slow', i]).sort())
    expect(s.inFlight('slow')).toBe(1)
    // The two holders are now about even: nothing moves back.
    expect(s.next(1001)).toEqual([])
  })

  it('moves a request waiting at a busy holder, the head of the queue too, to a holder with nothing of ours in flight', () => {
    const s = scheduler({ initialRequestsPerPeer: 2, minRequestsPerPeer: 2, maxRequestsPerPeer: 2, endGameThresholdChunks: 0 })
    s.want(A, 6 * MiB, range(6))
    s.addPeer('busy', { gateway: false }, 0)
    s.addPeer('other', { gateway: false }, 0)
    s.addBitmapHolder('busy', A, bitmapOf(6, [0, 1, 2, 3]))
    s.addBitmapHolder('other', A, bitmapOf(6, [2, 3]))
    const asked = s.next(0)
    expect(asked).toHaveLength(4)
    const atOther = asked.filter(r => r.peer === 'other').map(r => r.index)
    const atBusy = asked.filter(r => r.peer === 'busy').map(r => r.index)
    expect(atOther.sort()).toEqual([2, 3])
    // other sends its two at a chunk per 100 ms: the fastest rate seen, so a chunk time is 100 ms.
    s.delivered('other', A, atOther[0] as number, 100)
    s.stored(A, atOther[0] as number)
    s.delivered('other', A, atOther[1] as number, 200)
    s.stored(A, atOther[1] as number)
    // busy serves other askers first and sends us nothing. A new holder of busy's two chunks
    // appears; after three chunk times (but at least BUSY_HOLDER_MIN_MS) they move.
    s.addPeer('fresh', { gateway: false }, 200)
    s.addBitmapHolder('fresh', A, bitmapOf(6, [0, 1]))
    expect(s.next(400)).toEqual([])
    // One at a time to a holder whose rate is unknown, the head of busy's queue among them.
    const movedNow = s.next(600)
    expect(movedNow).toHaveLength(1)
    const moved = movedNow[0] as { peer: string, index: number }
    expect(moved.peer).toBe('fresh')
    expect(atBusy).toContain(moved.index)
    expect(s.takeReleased()).toEqual([{ peer: 'busy', object: A, index: moved.index }])
    expect(s.next(600)).toEqual([])
    // Once fresh has shown its rate, the other follows.
    s.delivered('fresh', A, moved.index, 700)
    s.stored(A, moved.index)
    const rest = atBusy.filter(i => i !== moved.index)
    expect(s.next(700)).toEqual([{ peer: 'fresh', object: A, index: rest[0] }])
    expect(s.takeReleased()).toEqual([{ peer: 'busy', object: A, index: rest[0] }])
    expect(s.inFlight('busy')).toBe(0)
    expect(s.requestCounts()).toEqual({ first: 4, again: 2, moved: 2, extra: 0, overdue: 0, endGame: 0, duplicatesAfter: {} })
    // The moved head's bytes may have been on the wire already: a copy from busy is charged to the move.
    s.delivered('busy', A, moved.index, 800)
    expect(s.requestCounts().duplicatesAfter).toEqual({ moved: 1 })
    // A holder that sends us something is working through our queue: its head does not move.
    const t = scheduler({ initialRequestsPerPeer: 2, minRequestsPerPeer: 2, maxRequestsPerPeer: 2, endGameThresholdChunks: 0 })
    t.want(A, 3 * MiB, range(3))
    t.addPeer('steady', { gateway: false }, 0)
    t.addBitmapHolder('steady', A, bitmapOf(3, [0, 1]))
    const pair = t.next(0)
    expect(pair).toHaveLength(2)
    const [first, second] = pair as Array<{ index: number }> as [{ index: number }, { index: number }]
    t.delivered('steady', A, first.index, 100)
    t.stored(A, first.index)
    t.addPeer('fresh', { gateway: false }, 100)
    t.addBitmapHolder('fresh', A, bitmapOf(3, [second.index]))
    expect(t.next(2000)).toEqual([])
    expect(t.inFlight('steady')).toBe(1)
  })

  it('starts the end game only when every remaining chunk is in flight, and duplicates only late requests', () => {
    const s = scheduler({
      initialRequestsPerPeer: 1, minRequestsPerPeer: 1, maxRequestsPerPeer: 1, endGameMaxRequestsPerChunk: 2, endGameMinAgeMs: 1000, endGameThresholdChunks: 8,
      busyHolderUnmeasuredMs: Infinity, busyHolderMinMs: Infinity,
    })
    s.want(A, 3 * MiB, range(3))
    s.addPeer('p1', { gateway: false }, 0)
    s.addPeer('p2', { gateway: false }, 0)
    s.addBitmapHolder('p1', A, bitmapOf(3, [0, 1]))
    s.addBitmapHolder('p2', A, bitmapOf(3, [0, 1]))
    const asked = s.next(0)
    expect(asked).toHaveLength(2)
    // Chunk 2 has no holder yet: not every remaining chunk is in flight, so a late request is not duplicated.
    const done = asked.find(r => r.peer === 'p2') as { index: number }
    s.delivered('p2', A, done.index, 10)
    s.stored(A, done.index)
    expect(s.next(5000)).toEqual([])
    // Once chunk 2 is asked too, every remaining chunk is in flight: p1's old request goes to p2 as well.
    s.addPeer('p3', { gateway: false }, 5000)
    s.addBitmapHolder('p3', A, bitmapOf(3, [2]))
    expect(s.next(5000)).toEqual([{ peer: 'p3', object: A, index: 2 }])
    const other = asked.find(r => r.peer === 'p1') as { index: number }
    expect(s.next(5001)).toEqual([{ peer: 'p2', object: A, index: other.index }])
  })

  it('judges an end-game request late by the idle holder\'s rate, not only by the rate of the holder it waits at', () => {
    // A holder controls its own measured rate: one that delivered a chunk in 9 s made its
    // requests look on time for 18 s (twice its expected time), and the end game waited on it.
    const s = scheduler({
      initialRequestsPerPeer: 1, minRequestsPerPeer: 1, maxRequestsPerPeer: 1, endGameMaxRequestsPerChunk: 2, endGameMinAgeMs: 1000, endGameThresholdChunks: 8,
      busyHolderUnmeasuredMs: Infinity, busyHolderMinMs: Infinity, overdueMinMs: Infinity, slowRequestMs: Infinity,
    })
    s.want(B, 2 * MiB, range(2))
    s.addPeer('slow', { gateway: false }, 0)
    s.addPeer('fast', { gateway: false }, 0)
    s.addWholeHolder('slow', B)
    s.addWholeHolder('fast', B)
    const first = s.next(0)
    expect(first.map(r => r.peer).sort()).toEqual(['fast', 'slow'])
    for (const [peer, at] of [['fast', 100], ['slow', 9000]] as const) {
      const index = (first.find(r => r.peer === peer) as { index: number }).index
      s.delivered(peer, B, index, at)
      s.stored(B, index)
    }
    // The last chunk waits at the slow holder; the fast one gets to hold it too.
    s.want(A, MiB, [0])
    s.addWholeHolder('slow', A)
    expect(s.next(9000)).toEqual([{ peer: 'slow', object: A, index: 0 }])
    s.addWholeHolder('fast', A)
    expect(s.next(9500)).toEqual([])
    // Far past what the fast holder needs for one chunk (100 ms), but the candidate's rate alone
    // calls a request late only after four minimum ages (an honest holder may be CPU-starved).
    expect(s.next(12_900)).toEqual([])
    // Past that, long before twice the slow holder's own 9 s.
    expect(s.next(13_100)).toEqual([{ peer: 'fast', object: A, index: 0 }])
  })
})

function bitmapOf (count: number, indexes: number[]): ChunkBitmap {
  const bitmap = new ChunkBitmap(count)
  for (const index of indexes) bitmap.set(index)
  return bitmap
}
