import { sleep } from '../wait/index.js'

/**
 * A token bucket in bytes per second for the per-node upload and download caps (edge links
 * are often metered). A take may overdraw the bucket by one chunk; the next take waits until
 * the debt is paid, so the average rate holds while a 1 MiB chunk still fits a slow cap.
 */
export class RateLimiter {
  private tokens: number
  private updatedAt: number
  private readonly burstBytes: number

  constructor (readonly bytesPerSecond: number, private readonly now: () => number = Date.now) {
    if (!(bytesPerSecond > 0)) throw new RangeError(`a rate cap must be positive, not ${bytesPerSecond}`)
    // After an idle spell only a tenth of a second goes out at once: a bigger burst would
    // read as a fast link to the receiver's rate estimate, and it would ask for too much.
    this.burstBytes = bytesPerSecond / 10
    this.tokens = this.burstBytes
    this.updatedAt = now()
  }

  /** Milliseconds until a take may proceed (0 = now). */
  waitMs (): number {
    this.refill()
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens / this.bytesPerSecond * 1000)
  }

  /** Takes `bytes` if the bucket is not in debt; returns whether it did. */
  tryTake (bytes: number): boolean {
    if (this.waitMs() > 0) return false
    this.tokens -= bytes
    return true
  }

  /** Waits until the bucket is out of debt; a take right after proceeds at once. */
  async ready (options: { signal?: AbortSignal } = {}): Promise<void> {
    for (let wait = this.waitMs(); wait > 0; wait = this.waitMs()) {
      await sleep(wait, options.signal)
    }
  }

  /**
   * Returns `bytes` taken for something that did not come (a request answered without its
   * chunk): a peer that refuses or drops requests must not spend the cap of the peers that
   * serve. Never beyond a burst.
   */
  giveBack (bytes: number): void {
    this.refill()
    this.tokens = Math.min(this.burstBytes, this.tokens + bytes)
  }

  async take (bytes: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.ready(options)
    this.tokens -= bytes
  }

  private refill (): void {
    const now = this.now()
    this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.updatedAt) / 1000 * this.bytesPerSecond)
    this.updatedAt = now
  }
}
