import { describe, expect, it, vi } from 'vitest'
import { RateLimiter } from '../../src/swarm/rate-limiter.js'

/** The download and upload caps' token bucket, on an injected clock. */
describe('RateLimiter', () => {
  it('gives back what a request took when nothing came, never beyond a burst', () => {
    const now = 0
    const limiter = new RateLimiter(1000, () => now)
    // 100 tokens to start (a tenth of a second): one take of 600 overdraws the bucket.
    expect(limiter.tryTake(600)).toBe(true)
    expect(limiter.waitMs()).toBe(500)
    // The request was refused: its 600 come back, and the next take goes at once.
    limiter.giveBack(600)
    expect(limiter.waitMs()).toBe(0)
    expect(limiter.tryTake(100)).toBe(true)
    // A give-back larger than what was taken does not raise the bucket past its burst.
    limiter.giveBack(10_000)
    expect(limiter.tryTake(100)).toBe(true)
    expect(limiter.tryTake(1)).toBe(true)
    expect(limiter.waitMs()).toBe(1)
  })

  it('grants waiting takes in turn by key: a key with four waiting gets no more turns than one with two', async () => {
    vi.useFakeTimers()
    try {
      const limiter = new RateLimiter(1000)
      // In debt for a second: every take below waits.
      expect(limiter.tryTake(1100)).toBe(true)
      const order: string[] = []
      const takes = ['hog', 'hog', 'hog', 'hog', 'edge', 'edge'].map(async (key) => { await limiter.take(100, { key }); order.push(key) })
      await vi.advanceTimersByTimeAsync(5000)
      await Promise.all(takes)
      expect(order).toEqual(['hog', 'edge', 'hog', 'edge', 'hog', 'hog'])
    } finally {
      vi.useRealTimers()
    }
  })
})
