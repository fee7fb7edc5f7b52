/** A take waiting for its turn at the bucket. */
interface Waiter {
  bytes: number
  grant: () => void
}

/** A key's takes waiting, and the bytes it was granted (its place in the fair order). */
interface Account {
  waiters: Waiter[]
  granted: number
}

/**
 * Bytes a key that missed turns may be granted ahead of the others (two chunks): a peer with one
 * stream reads its next chunk or frame after each turn, and a turn that came meanwhile went to
 * a peer with more waiting; it gets those back, never more than this, so a peer idle for a
 * while banks nothing.
 */
export const RATE_LIMITER_CREDIT_BYTES = 2 * 1024 * 1024

/**
 * A token bucket in bytes per second for the per-node upload and download caps (edge links
 * are often metered). A take may overdraw the bucket by one chunk; the next take waits until
 * the debt is paid, so the average rate holds while a 1 MiB chunk still fits a slow cap.
 *
 * Waiting takes are granted fairly by key (a peer): the key with a take waiting that was
 * granted the fewest bytes goes next (fair queueing by bytes, as a round robin of equal
 * takes), each key's own takes in arrival order; a key that comes back to wait is counted from
 * the last grant's count less RATE_LIMITER_CREDIT_BYTES, so what it missed while away is not
 * owed it. Before, every waiter slept until the debt was paid and whoever woke first took the
 * bucket, so a peer with more takes waiting at once (more streams, more reads ahead) had more
 * turns: a peer with sixteen blob streams had 1.3-2.3 turns at the upload cap for each of an
 * edge's one (docs/architecture.md, "Hostile peers").
 */
export class RateLimiter {
  private tokens: number
  private updatedAt: number
  private readonly burstBytes: number
  /** Keys with a take waiting, and keys served lately while others waited (their count still matters). */
  private readonly accounts = new Map<string, Account>()
  /** Keys with a take waiting. */
  private waiting = 0
  /** The count of the key granted last, before its grant: where a key that comes back starts (less the credit). */
  private floor = 0
  private timer: NodeJS.Timeout | undefined

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

  /** Takes `bytes` if the bucket is not in debt; returns whether it did. Not in turn: for a caller that polls (the fetcher's download cap). */
  tryTake (bytes: number): boolean {
    if (this.waitMs() > 0) return false
    this.tokens -= bytes
    return true
  }

  /** Waits for `key`'s turn with the bucket out of debt, taking nothing: a take right after proceeds at once. */
  async ready (options: { signal?: AbortSignal, key?: string } = {}): Promise<void> {
    await this.take(0, options)
  }

  /**
   * Returns `bytes` taken for something that did not come (a request answered without its
   * chunk): a peer that refuses or drops requests must not spend the cap of the peers that
   * serve. Never beyond a burst.
   */
  giveBack (bytes: number): void {
    this.refill()
    this.tokens = Math.min(this.burstBytes, this.tokens + bytes)
    // Waiters may go sooner than the timer said.
    if (this.timer !== undefined && this.waiting > 0) {
      clearTimeout(this.timer)
      this.timer = undefined
      this.grant()
    }
  }

  /** Takes `bytes` once it is `key`'s turn (fair across keys) and the bucket is out of debt. */
  async take (bytes: number, options: { signal?: AbortSignal, key?: string } = {}): Promise<void> {
    const { signal } = options
    signal?.throwIfAborted()
    // Nobody waiting and the bucket out of debt: nothing to be fair about.
    if (this.waiting === 0 && this.tryTake(bytes)) return
    const key = options.key ?? ''
    const account = this.accounts.get(key) ?? { waiters: [], granted: -Infinity }
    this.accounts.set(key, account)
    if (account.waiters.length === 0) account.granted = Math.max(account.granted, this.floor - RATE_LIMITER_CREDIT_BYTES)
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        bytes,
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        },
      }
      if (account.waiters.length === 0) this.waiting++
      account.waiters.push(waiter)
      const onAbort = (): void => {
        const at = account.waiters.indexOf(waiter)
        if (at >= 0) {
          account.waiters.splice(at, 1)
          if (account.waiters.length === 0) this.waiting--
        }
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.grant()
    })
  }

  /** Grants waiting takes, least-served key first, while the bucket is out of debt; else wakes when it will be. */
  private grant (): void {
    if (this.timer !== undefined) return
    while (this.waiting > 0) {
      const wait = this.waitMs()
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined
          this.grant()
        }, wait)
        return
      }
      let next: Account | undefined
      for (const [key, account] of this.accounts) {
        if (account.waiters.length > 0) {
          if (next === undefined || account.granted < next.granted) next = account
        } else if (account.granted <= this.floor - RATE_LIMITER_CREDIT_BYTES) {
          // It would be counted from the floor's credit anyway when it comes back: nothing to keep.
          this.accounts.delete(key)
        }
      }
      const waiter = next?.waiters.shift()
      if (next === undefined || waiter === undefined) return
      if (next.waiters.length === 0) this.waiting--
      this.floor = Math.max(this.floor, next.granted)
      next.granted += waiter.bytes
      this.tokens -= waiter.bytes
      waiter.grant()
    }
  }

  private refill (): void {
    const now = this.now()
    this.tokens = Math.min(this.burstBytes, this.tokens + (now - this.updatedAt) / 1000 * this.bytesPerSecond)
    this.updatedAt = now
  }
}
