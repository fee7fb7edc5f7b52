import { describe, expect, it } from 'vitest'
import { MAX_BAN_COUNTS, PeerScores, addressPrefix } from '../../src/swarm/peer-score.js'

const MINUTE = 60_000

function clock (): { now: () => number, advance: (ms: number) => void } {
  let t = 1_000_000
  return { now: () => t, advance: (ms) => { t += ms } }
}

describe('PeerScores', () => {
  it('bans at once for bad data, and each later ban of the same peer lasts twice as long', () => {
    const c = clock()
    const scores = new PeerScores({ now: c.now, baseBanMs: 10 * MINUTE })
    expect(scores.offend('p', 'bad-data', 'chunk 3 failed verification')).toMatchObject({ peer: 'p', durationMs: 10 * MINUTE })
    // No second verdict while the ban lasts.
    expect(scores.offend('p', 'bad-data', 'again')).toBeUndefined()
    c.advance(11 * MINUTE)
    expect(scores.offend('p', 'bad-data', 'again')).toMatchObject({ durationMs: 20 * MINUTE })
    c.advance(21 * MINUTE)
    expect(scores.offend('p', 'bad-data', 'again')).toMatchObject({ durationMs: 40 * MINUTE })
  })

  it('keeps ban counts for a bounded number of peers, the most recently banned', () => {
    // Every identity of a flood is banned; each kept its count for as long as the daemon ran.
    const c = clock()
    const scores = new PeerScores({ now: c.now, baseBanMs: 10 * MINUTE })
    scores.offend('early', 'bad-data', 'x')
    for (let i = 0; i < MAX_BAN_COUNTS; i++) scores.offend(`flood-${i}`, 'bad-data', 'x')
    c.advance(11 * MINUTE)
    // The oldest count went to make room: that peer's next ban is a first one again.
    expect(scores.offend('early', 'bad-data', 'again')).toMatchObject({ durationMs: 10 * MINUTE })
    const last = `flood-${MAX_BAN_COUNTS - 1}`
    expect(scores.offend(last, 'bad-data', 'again')).toMatchObject({ durationMs: 20 * MINUTE })
  })

  it('bans after two protocol violations, not one, and says why', () => {
    const scores = new PeerScores({ now: clock().now })
    expect(scores.offend('p', 'violation', 'oversized frame')).toBeUndefined()
    expect(scores.score('p')).toBe(-51)
    const verdict = scores.offend('p', 'violation', 'a chunk response nobody asked for')
    expect(verdict?.reason).toBe('violation: a chunk response nobody asked for')
    expect(scores.lastOffence('p')).toBe('violation: a chunk response nobody asked for')
  })

  it('forgives slowly: an old offence no longer counts toward a ban', () => {
    const c = clock()
    const scores = new PeerScores({ now: c.now, recoveryPerMinute: 10 })
    scores.offend('p', 'violation', 'x')
    c.advance(6 * MINUTE)
    expect(scores.score('p')).toBe(0)
    expect(scores.offend('p', 'violation', 'y')).toBeUndefined()
    // Time alone never raises a score above zero; serving does, a little.
    c.advance(60 * MINUTE)
    expect(scores.score('p')).toBe(0)
    for (let i = 0; i < 10; i++) scores.served('p')
    expect(scores.score('p')).toBe(5)
  })

  it('charges a holder that refuses everything, not a gateway that defers some requests', () => {
    const scores = new PeerScores({ now: clock().now, refusalMinimum: 32, refusalRatio: 8 })
    // A gateway seeding two edges: every chunk deferred up to 4 times, then served.
    for (let chunk = 0; chunk < 500; chunk++) {
      for (let i = 0; i < 4; i++) expect(scores.refused('gateway')).toBeUndefined()
      scores.served('gateway')
    }
    expect(scores.score('gateway')).toBeGreaterThan(0)
    // A peer that refuses everything: a pattern after 32 refusals, again after 64 (two charges ban).
    const patterns = Array.from({ length: 64 }, () => scores.refused('liar')).filter(v => v !== undefined)
    expect(patterns).toHaveLength(2)
    expect(patterns[0]).toMatch(/^refused 32 requests while serving 0/)
    expect(scores.offend('liar', 'refusal', patterns[0] ?? '')).toBeUndefined()
    expect(scores.offend('liar', 'refusal', patterns[1] ?? '')?.reason).toMatch(/^refusal: refused/)
  })

  it('bans the address prefix once several identities from it were banned, never loopback', () => {
    const scores = new PeerScores({ now: clock().now, prefixBanAfter: 3 })
    expect(scores.offend('k1', 'bad-data', 'x', '/ip4/10.1.2.3/tcp/4001')?.prefix).toBeUndefined()
    expect(scores.offend('k2', 'bad-data', 'x', '/ip4/10.1.2.9/tcp/4001')?.prefix).toBeUndefined()
    expect(scores.offend('k3', 'bad-data', 'x', '/ip4/10.1.2.77/tcp/4001')?.prefix).toBe('10.1.2.0/24')
    // Peers banned for being slow or stalling are what a loaded honest site looks like: never its prefix.
    const slow = new PeerScores({ now: clock().now, prefixBanAfter: 3 })
    for (const peer of ['s1', 's2', 's3', 's4']) {
      let verdict
      while (verdict === undefined) verdict = slow.offend(peer, 'slow', 'late', '/ip4/10.9.9.1/tcp/4001') ?? slow.offend(peer, 'stall', 'silent', '/ip4/10.9.9.2/tcp/4001')
      expect(verdict.prefix).toBeUndefined()
    }
    expect(addressPrefix('/ip4/127.0.0.1/tcp/1')).toBeUndefined()
    expect(addressPrefix('/ip6/2001:db8:1:2:3:4:5:6/tcp/1')).toBe('2001:db8:1:2::/64')
    expect(addressPrefix('/ip6/2001:db8::1/tcp/1')).toBe('2001:db8:0:0::/64')
    expect(addressPrefix('/dns4/example.com/tcp/1')).toBeUndefined()
  })
})
