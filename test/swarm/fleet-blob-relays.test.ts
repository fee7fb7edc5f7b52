import { describe, expect, it } from 'vitest'
import { FleetBlobRelays, type FleetBlobRoute } from '../../src/swarm/fleet-blob-relays.js'

const digest = `sha256:${'cd'.repeat(32)}`
const everyone = (): boolean => true

function relayOf (route: FleetBlobRoute): string {
  if (route.kind !== 'relay') throw new Error(`expected a relay, got ${route.kind}`)
  return route.peer
}

describe('who the pull-through node streams a blob to, and who it points at relays', () => {
  it('serves the first two askers itself and builds a balanced tree of the rest, two per relay', () => {
    const relays = new FleetBlobRelays()
    const first = relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    const second = relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    expect([first.kind, second.kind]).toEqual(['direct', 'direct'])
    // Shallowest receiver with room, fewest askers on it first: e1, e2 carry the next two,
    // then one more each, then e3..e6 (the second level) take the rest.
    const pointed = ['e3', 'e4', 'e5', 'e6', 'e7', 'e8'].map(peer => relayOf(relays.route(digest, peer, { mayRelay: true, usable: everyone })))
    expect(pointed).toEqual(['e1', 'e2', 'e1', 'e2', 'e3', 'e4'])
  })

  it('names a relay only once it can answer: a direct receiver once its HEADER went, a relayed one once it reported its relay\'s', async () => {
    const relays = new FleetBlobRelays({ directAskers: 1, fanout: 1 })
    const first = relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    const second = relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    const third = relays.route(digest, 'e3', { mayRelay: true, usable: everyone })
    if (first.kind !== 'direct' || second.kind !== 'relay' || third.kind !== 'relay') throw new Error('not the tree expected')
    expect([second.peer, third.peer]).toEqual(['e1', 'e2'])
    const ready: Record<string, boolean> = {}
    void second.ready.then((r) => { ready.e1 = r })
    void third.ready.then((r) => { ready.e2 = r })
    await Promise.resolve()
    expect(ready).toEqual({})
    first.answered(100, () => 0)
    await Promise.resolve()
    expect(ready).toEqual({ e1: true })
    // e2 receives from e1: it can answer once it says e1 answered it (before, it was named at
    // once, and its asker could not tell its silence from its relay's).
    second.report(true)
    await Promise.resolve()
    expect(ready).toEqual({ e1: true, e2: true })
    // e3 says its relay never answered: it is not named, and the asker waiting for it is
    // pointed elsewhere (here nobody has room: served directly).
    const fourth = relays.route(digest, 'e4', { mayRelay: true, usable: everyone })
    if (fourth.kind !== 'relay') throw new Error('e4 was not pointed at a relay')
    expect(fourth.peer).toBe('e3')
    third.report(false)
    await expect(fourth.ready).resolves.toBe(false)
    expect(relays.route(digest, 'e4', { mayRelay: true, usable: everyone }).kind).toBe('direct')
    // A report about a relay the asker has left since counts for nothing.
    second.report(false)
    expect(relayOf(relays.route(digest, 'e5', { mayRelay: true, usable: everyone }))).not.toBe('e3')
  })

  it('tells an asker back from its relay what that relay could have sent: the gateway\'s bytes, what it acknowledged here since it came back, or nothing while it receives from a relay', () => {
    const relays = new FleetBlobRelays({ directAskers: 1, fanout: 1 })
    const first = relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    if (first.kind !== 'direct') throw new Error('e1 not direct')
    first.answered(100, () => 10)
    const second = relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    const third = relays.route(digest, 'e3', { mayRelay: true, usable: everyone })
    if (second.kind !== 'relay' || third.kind !== 'relay') throw new Error('not the tree expected')
    // e3 (pointed at e2, which receives from e1) comes back: e2 still receives from e1.
    const back3 = relays.route(digest, 'e3', { mayRelay: false, usable: everyone, cameBack: true })
    expect(back3).toMatchObject({ kind: 'direct', failedRelay: 'e2' })
    if (back3.kind !== 'direct') throw new Error('unreachable')
    expect(back3.relayHeld?.(80)).toBe(0)
    // e2 comes back from e1, a direct receiver since before e2 was pointed at it: the gateway's bytes.
    const back2 = relays.route(digest, 'e2', { mayRelay: false, usable: everyone, cameBack: true })
    if (back2.kind !== 'direct') throw new Error('e2 not direct')
    expect(back2.relayHeld?.(80)).toBe(80)
    // e2 became a direct receiver after e3 was pointed at it: what it acknowledged here since.
    back2.answered(100, () => 42)
    expect(back3.relayHeld?.(80)).toBe(42)
  })

  it('lets one asker hold one place under a relay, and fail one relay of a blob: asked again it gives its place back, back once it is served by the node', () => {
    const relays = new FleetBlobRelays()
    const first = relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    if (first.kind !== 'direct') throw new Error('e1 not direct')
    first.answered(100, () => 0)
    // One identity asks over and over (16 streams at a time on one connection), each ask taking
    // a place and reporting nothing or no answer: on main the four places under e1 and e2 were
    // all taken by the fourth ask, and every honest asker after was served by the gateway.
    for (let i = 0; i < 8; i++) {
      const route = relays.route(digest, 'greedy', { mayRelay: true, usable: everyone })
      if (route.kind !== 'relay') throw new Error(`ask ${i} of the greedy asker was not pointed at a relay`)
      if (i % 2 === 1) route.report(false)
    }
    expect(relays.route(digest, 'h1', { mayRelay: true, usable: everyone }).kind).toBe('relay')
    // It comes back from its relay (which is not named again for the blob), then asks to be
    // pointed at another: on main it was, and came back from each in turn, failing them all.
    const back = relays.route(digest, 'greedy', { mayRelay: false, usable: everyone, cameBack: true })
    expect(back).toMatchObject({ kind: 'direct', failedRelay: expect.stringMatching(/^e[12]$/) })
    expect(relays.route(digest, 'greedy', { mayRelay: true, usable: everyone }).kind).toBe('direct')
    // Honest askers are still pointed at relays, never the failed one.
    const failed = back.kind === 'direct' ? back.failedRelay : undefined
    expect(relayOf(relays.route(digest, 'h2', { mayRelay: true, usable: everyone }))).not.toBe(failed)
  })

  it('names only usable receivers, and serves an asker itself when no receiver has room or it may not be relayed', () => {
    const relays = new FleetBlobRelays({ fanout: 1 })
    relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    expect(relayOf(relays.route(digest, 'e3', { mayRelay: true, usable: peer => peer !== 'e1' }))).toBe('e2')
    // e1 is unusable and e2 is full; e3 is usable and has room.
    expect(relayOf(relays.route(digest, 'e4', { mayRelay: true, usable: peer => peer !== 'e1' }))).toBe('e3')
    expect(relays.route(digest, 'e5', { mayRelay: true, usable: () => false }).kind).toBe('direct')
    // An asker resuming after its relay failed is served here whatever the plan.
    expect(relays.route(digest, 'e4', { mayRelay: false, usable: everyone }).kind).toBe('direct')
  })

  it('tells a pointed asker the size once a direct stream has the bytes, and to come back when every direct stream ended without them', async () => {
    const relays = new FleetBlobRelays()
    const first = relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    const second = relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    const third = relays.route(digest, 'e3', { mayRelay: true, usable: everyone })
    if (first.kind !== 'direct' || second.kind !== 'direct' || third.kind !== 'relay') throw new Error('unexpected routes')
    first.answered(1234, () => 0)
    await expect(third.header).resolves.toEqual({ size: 1234 })

    const other = `sha256:${'ef'.repeat(32)}`
    const a = relays.route(other, 'e1', { mayRelay: true, usable: everyone })
    const b = relays.route(other, 'e2', { mayRelay: true, usable: everyone })
    const c = relays.route(other, 'e3', { mayRelay: true, usable: everyone })
    if (a.kind !== 'direct' || b.kind !== 'direct' || c.kind !== 'relay') throw new Error('unexpected routes')
    a.release()
    b.release()
    b.release()
    await expect(c.header).resolves.toBeUndefined()
    // Once no stream of it is left from here, the plan is gone: the next asker is served directly.
    first.release()
    second.release()
    expect(relays.streaming).toBe(0)
    expect(relays.route(other, 'e4', { mayRelay: true, usable: everyone }).kind).toBe('direct')
  })

  it('never names again, for that blob, a relay an asker came back from', () => {
    const relays = new FleetBlobRelays()
    relays.route(digest, 'slow', { mayRelay: true, usable: everyone })
    relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    expect(relayOf(relays.route(digest, 'v1', { mayRelay: true, usable: everyone }))).toBe('slow')
    // v1 judged it too slow and asks here directly, from the byte it reached.
    const back = relays.route(digest, 'v1', { mayRelay: false, usable: everyone, cameBack: true })
    expect(back).toMatchObject({ kind: 'direct', failedRelay: 'slow' })
    // Without the report 'slow' (one asker on it, at the first level, the earliest) was the pick
    // for the fourth asker on; now the others are, and then the asker is served here.
    const pointed = ['v2', 'v3', 'v4', 'v5', 'v6', 'v7'].map((peer) => {
      const route = relays.route(digest, peer, { mayRelay: true, usable: everyone })
      return route.kind === 'relay' ? route.peer : route.kind
    })
    expect(pointed).not.toContain('slow')
    expect(pointed.slice(0, 3)).toEqual(['e2', 'v1', 'e2'])
    // Another blob's plan is its own: the report was about this blob.
    const other = `sha256:${'ef'.repeat(32)}`
    relays.route(other, 'slow', { mayRelay: true, usable: everyone })
    relays.route(other, 'e2', { mayRelay: true, usable: everyone })
    expect(relayOf(relays.route(other, 'v1', { mayRelay: true, usable: everyone }))).toBe('slow')
    // An asker that asks directly without having been pointed anywhere reports nobody.
    expect(relays.route(other, 'v9', { mayRelay: false, usable: everyone, cameBack: true })).not.toHaveProperty('failedRelay', expect.anything())
  })

  it('tells an asker it pointed at a relay, and nobody else, what it holds and how fast its direct streams run, also once its streams ended', () => {
    let now = 0
    const relays = new FleetBlobRelays({ now: () => now })
    const held = { bytes: 0 }
    let taken = [0, 0]
    let starved = 0
    const first = relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    const second = relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    if (first.kind !== 'direct' || second.kind !== 'direct') throw new Error('not direct')
    first.answered(100_000_000, () => taken[0] ?? 0, { held: () => held.bytes, starvedMs: () => starved })
    second.answered(100_000_000, () => taken[1] ?? 0, { held: () => held.bytes, starvedMs: () => 0 })
    expect(relayOf(relays.route(digest, 'v1', { mayRelay: true, usable: everyone }))).toBe('e1')
    // No stream has acknowledged anything yet: no rate to tell.
    held.bytes = 1_000_000
    expect(relays.progress(digest, 'v1')).toEqual({ held: 1_000_000 })
    now = 10_000
    held.bytes = 60_000_000
    taken = [50_000_000, 20_000_000]
    starved = 5_000
    // e1: 50 MB over the 5 s of its 10 it had bytes to send (it waited 5 s for bytes not held
    // yet: the registry's pace, not the stream's), 10 MB/s; e2 2 MB/s. With two peers the
    // reference is the slower: a fast reader never raises it.
    expect(relays.progress(digest, 'v1')).toEqual({ held: 60_000_000, bytesPerSecond: 2_000_000 })
    // A direct receiver, or a peer never pointed at a relay, is told nothing.
    expect(relays.progress(digest, 'e1')).toEqual({})
    expect(relays.progress(digest, 'stranger')).toEqual({})
    // A stream that ended a moment after its HEADER counts over a second at least: e4's stream
    // of another blob, 6 MB in 5 ms, is 6 MB/s (not 1.2 GB/s), the median of the three peers.
    const other = `sha256:${'ef'.repeat(32)}`
    const quick = relays.route(other, 'e4', { mayRelay: true, usable: everyone })
    relays.route(other, 'e3', { mayRelay: true, usable: everyone })
    if (quick.kind !== 'direct') throw new Error('not direct')
    let quickTaken = 0
    quick.answered(6_000_000, () => quickTaken)
    relays.route(other, 'v1', { mayRelay: true, usable: everyone })
    now += 5
    quickTaken = 6_000_000
    quick.release()
    expect(relays.progress(other, 'v1')).toEqual({ held: 6_000_000, bytesPerSecond: 6_000_000 })
    // Both streams of the first blob end, sent whole (taken is its size once END went): the
    // figures stay for the asker still receiving it from its relay. e1's 100 MB over the 15 s it
    // had bytes, e2's over 20 s, e4's 6 MB/s.
    now = 20_000
    taken = [100_000_000, 100_000_000]
    first.release()
    second.release()
    expect(relays.streaming).toBe(1)
    expect(relays.progress(digest, 'v1')).toEqual({ held: 100_000_000, bytesPerSecond: 6_000_000 })
    expect(relays.progress(digest, 'e1')).toEqual({})
  })

  it('judges relays against the lower median of one rate per peer: one fast reader does not raise it, one slow reader among three does not lower it, and a stranger does not count', () => {
    let now = 0
    const relays = new FleetBlobRelays({ directAskers: 3, now: () => now })
    const trusted = (peer: string): boolean => peer !== 'stranger'
    const rates: Record<string, number> = {}
    const directTo = (blob: string, peer: string): (() => void) => {
      const route = relays.route(blob, peer, { mayRelay: true, usable: trusted })
      if (route.kind !== 'direct') throw new Error(`${peer} not direct`)
      route.answered(1_000_000_000, () => (rates[peer] ?? 0) * now / 1000)
      return route.release
    }
    const blob = (n: number): string => `sha256:${n.toString(16).padStart(64, '0')}`
    // One fast reader (100 MB/s: an edge on the gateway's LAN, or a compromised member) beside
    // two edges at 4 MB/s: the median is theirs, and a relay sending 2 MB/s is kept (4 > 2 × 4 is false).
    Object.assign(rates, { fast: 100_000_000, e1: 4_000_000, e2: 4_000_000, stranger: 500_000_000 })
    for (const peer of ['fast', 'e1', 'e2']) directTo(blob(1), peer)
    expect(relayOf(relays.route(blob(1), 'v1', { mayRelay: true, usable: trusted }))).toBeDefined()
    now = 10_000
    expect(relays.progress(blob(1), 'v1').bytesPerSecond).toBe(4_000_000)
    // A stranger's stream (any peer asks in an open fleet) is no sample, however fast.
    directTo(blob(2), 'stranger')
    now = 11_000
    expect(relays.progress(blob(1), 'v1').bytesPerSecond).toBe(4_000_000)
    // A compromised relay that reads slowly itself (200 KB/s) to be judged against its own pace
    // lowers the median by one place at most: among three peers it is an honest one's.
    Object.assign(rates, { fast: 10_000_000, e1: 200_000, e2: 8_000_000 })
    expect(relays.progress(blob(1), 'v1').bytesPerSecond).toBe(8_000_000)
  })
})
