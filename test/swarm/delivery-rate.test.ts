import { describe, expect, it } from 'vitest'
import { DeliveryRate } from '../../src/swarm/delivery-rate.js'

/**
 * The upload pace's rate estimate (delivery-rate.ts), on a clock the test moves: frames handed
 * down and credits seen at chosen times.
 */

const estimate = (): DeliveryRate => new DeliveryRate({ windowMs: 1_000, minIntervalMs: 1 })

/** A link of `rate` bytes/ms, one `frame`-byte frame at a time, each credited as it arrives: returns the time after. */
function steady (rate: DeliveryRate, from: { at: number, sent: number }, frames: number, frame: number, bytesPerMs: number): void {
  for (let i = 0; i < frames; i++) {
    rate.sent(from.sent + frame, from.sent, from.at)
    from.sent += frame
    from.at += frame / bytesPerMs
    rate.credited(from.sent, from.at)
  }
}

describe('delivery rate', () => {
  it('measures a steady link', () => {
    const rate = estimate()
    const clock = { at: 0, sent: 0 }
    steady(rate, clock, 10, 1_000, 10)
    expect(rate.rate(clock.at)).toBeCloseTo(10, 5)
  })

  it('is not raised by credits that bunch up: bounded by how fast the bytes were handed down', () => {
    const rate = estimate()
    // 100 bytes handed down every 10 ms (10 bytes/ms) for 100 ms; the asker credits nothing,
    // then everything within a millisecond (its event loop stalled).
    for (let i = 0; i < 10; i++) rate.sent((i + 1) * 100, 0, i * 10)
    // The first frame's credit comes at 100 ms, and the next frame goes down at once; then the
    // rest, that frame included, within a millisecond.
    rate.credited(100, 100)
    rate.sent(1_100, 100, 100)
    rate.credited(1_100, 101)
    // Credits per interval would say 1,000 bytes in 1 ms; the bytes went down at 10 bytes/ms.
    expect(rate.rate(101)).toBeLessThanOrEqual(10)
    expect(rate.rate(101)).toBeGreaterThan(0)
  })

  it('is not lowered by a late look at the credits: the highest sample of the window holds', () => {
    const rate = estimate()
    const clock = { at: 0, sent: 0 }
    steady(rate, clock, 10, 1_000, 10)
    // The next frame arrives in 100 ms, but our timer fires 400 ms late.
    rate.sent(clock.sent + 1_000, clock.sent, clock.at)
    clock.sent += 1_000
    clock.at += 500
    rate.credited(clock.sent, clock.at)
    expect(rate.rate(clock.at)).toBeCloseTo(10, 5)
  })

  it('does not take an idle spell for a slow link', () => {
    const rate = estimate()
    const clock = { at: 0, sent: 0 }
    steady(rate, clock, 3, 1_000, 10)
    // Nothing to send for 5 s (the window forgets the old samples), then the same link again.
    clock.at += 5_000
    expect(rate.rate(clock.at)).toBe(0)
    steady(rate, clock, 1, 1_000, 10)
    expect(rate.rate(clock.at)).toBeCloseTo(10, 5)
  })

  it('forgets a rate older than its window, so a link that slowed is seen as slow', () => {
    const rate = estimate()
    const clock = { at: 0, sent: 0 }
    steady(rate, clock, 5, 1_000, 100)
    steady(rate, clock, 20, 1_000, 10)
    expect(rate.rate(clock.at)).toBeCloseTo(10, 5)
  })

  it('stays within twice a shaped link however the asker bunches its credits, and near it when it does not', () => {
    // A link of 5 bytes/ms (40 Mbit/s at this scale is any unit): the sender keeps up to a
    // mark on its way, frames of 256; the receiver's bytes arrive at the link's rate, and it
    // credits them after stalls of random length (a seeded generator: the same run every time).
    let seed = 42
    const random = (): number => { seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31; return seed / 2 ** 31 }
    for (const stalls of [false, true]) {
      const rate = estimate()
      const linkBytesPerMs = 5
      const frame = 256
      const mark = 4 * frame
      let sent = 0
      let credited = 0
      let arrivedUpTo = 0 // bytes that crossed the link
      let stallUntil = 0
      let highest = 0
      let lowestAfterStart = Infinity
      for (let now = 0; now < 20_000; now++) {
        // The link carries what was handed down, at its rate.
        arrivedUpTo = Math.min(sent, arrivedUpTo + linkBytesPerMs)
        if (stalls && now >= stallUntil && random() < 0.02) stallUntil = now + Math.floor(random() * 300)
        // Out of a stall the credits come in bursts of a frame a millisecond (one window update
        // per frame, each its own message), and the sender sends into each.
        if (now >= stallUntil) credited = Math.min(arrivedUpTo, credited + frame)
        rate.credited(credited, now)
        while (sent - credited + frame <= mark) {
          sent += frame
          rate.sent(sent, credited, now)
        }
        const r = rate.rate(now)
        highest = Math.max(highest, r)
        if (now > 2_000) lowestAfterStart = Math.min(lowestAfterStart, r)
      }
      expect(highest).toBeLessThanOrEqual(2 * linkBytesPerMs)
      if (!stalls) expect(lowestAfterStart).toBeGreaterThanOrEqual(0.9 * linkBytesPerMs)
    }
  })
})
