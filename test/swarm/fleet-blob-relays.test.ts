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

  it('says of a relay whether it was sent the HEADER from here: a direct receiver once answered, a relayed one never', () => {
    const relays = new FleetBlobRelays({ directAskers: 1, fanout: 1 })
    const first = relays.route(digest, 'e1', { mayRelay: true, usable: everyone })
    const second = relays.route(digest, 'e2', { mayRelay: true, usable: everyone })
    const third = relays.route(digest, 'e3', { mayRelay: true, usable: everyone })
    if (first.kind !== 'direct' || second.kind !== 'relay' || third.kind !== 'relay') throw new Error('not the tree expected')
    expect([second.peer, third.peer]).toEqual(['e1', 'e2'])
    expect(second.answering()).toBe(false)
    first.answered(100)
    expect(second.answering()).toBe(true)
    // e2 receives from e1: whether it has its HEADER is not known here.
    expect(third.answering()).toBe(false)
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
    first.answered(1234)
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
})
