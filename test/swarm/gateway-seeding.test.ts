import { describe, expect, it } from 'vitest'
import { GatewaySeeding, GATEWAY_SEEDING_POLICY, type SeedingPolicy } from '../../src/swarm/index.js'

/** A gateway's seeding memory over a have-list the test writes, on a clock the test moves. */
function gateway (policy: Partial<SeedingPolicy> = {}): {
  seeding: GatewaySeeding
  advertised: Set<string>
  holders: Map<string, number>
  clock: { now: number }
} {
  const advertised = new Set<string>()
  const holders = new Map<string, number>()
  const clock = { now: 1_000_000 }
  const seeding = new GatewaySeeding({
    advertises: (peer, object) => advertised.has(`${peer}|${object}`),
    holderCount: (object, index) => holders.get(`${object}:${index}`) ?? 0,
  }, { ...GATEWAY_SEEDING_POLICY, ...policy }, () => clock.now)
  return { seeding, advertised, holders, clock }
}

describe('gateway seeding policy', () => {
  it('leaves a chunk it just sent to its recipient: other askers wait, the recipient does not', () => {
    const { seeding, advertised } = gateway()
    expect(seeding.shouldDefer('b', 'obj', 0)).toBe(false)
    seeding.recordSent('a', 'obj', 0)
    advertised.add('a|obj')
    expect(seeding.shouldDefer('b', 'obj', 0)).toBe(true)
    expect(seeding.shouldDefer('a', 'obj', 0)).toBe(false)
    expect(seeding.shouldDefer('b', 'obj', 1)).toBe(false)
    expect(seeding.copiesSent('obj', 0)).toBe(1)
    expect(seeding.deferralsOf('b', 'obj', 0)).toBe(1)
  })

  it('serves once the window has passed since the last copy left', () => {
    const { seeding, advertised, clock } = gateway({ maxDeferralsPerAsker: 100 })
    seeding.recordSent('a', 'obj', 0)
    advertised.add('a|obj')
    clock.now += GATEWAY_SEEDING_POLICY.deferRecentUploadMs
    expect(seeding.shouldDefer('b', 'obj', 0)).toBe(true)
    clock.now += 1
    expect(seeding.shouldDefer('b', 'obj', 0)).toBe(false)
  })

  it('defers for a recipient that never advertises only during its grace period', () => {
    const { seeding, clock } = gateway()
    seeding.recordSent('leech', 'obj', 0)
    expect(seeding.shouldDefer('b', 'obj', 0)).toBe(true)
    clock.now += GATEWAY_SEEDING_POLICY.advertiseGraceMs + 1
    expect(seeding.shouldDefer('c', 'obj', 0)).toBe(false)
  })

  it('tells one asker to wait for one chunk at most maxDeferralsPerAsker times', () => {
    const { seeding, advertised } = gateway({ maxDeferralsPerAsker: 3, servesAdvertised: false })
    seeding.recordSent('a', 'obj', 0)
    advertised.add('a|obj')
    const answers = Array.from({ length: 5 }, () => seeding.shouldDefer('b', 'obj', 0))
    expect(answers).toEqual([true, true, true, false, false])
  })

  it('with servesAdvertised, serves a deferred asker once another neighbour advertises the chunk; without, keeps deferring', () => {
    for (const servesAdvertised of [true, false]) {
      const { seeding, advertised, holders } = gateway({ servesAdvertised, maxDeferralsPerAsker: 10 })
      seeding.recordSent('a', 'obj', 0)
      advertised.add('a|obj')
      expect(seeding.shouldDefer('b', 'obj', 0)).toBe(true)
      holders.set('obj:0', 1)
      expect(seeding.shouldDefer('b', 'obj', 0)).toBe(!servesAdvertised)
    }
  })
})
