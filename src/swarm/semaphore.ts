/** Bounds how many uploads hold a chunk in memory at once, across all peers. */
export class Semaphore {
  private available: number
  private readonly waiters: Array<() => void> = []

  constructor (readonly size: number) {
    this.available = size
  }

  async acquire (options: { signal?: AbortSignal } = {}): Promise<void> {
    options.signal?.throwIfAborted()
    if (this.available > 0) {
      this.available--
      return
    }
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        options.signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = (): void => {
        const at = this.waiters.indexOf(grant)
        if (at >= 0) this.waiters.splice(at, 1)
        reject(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'))
      }
      this.waiters.push(grant)
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  release (): void {
    const next = this.waiters.shift()
    if (next !== undefined) next()
    else this.available++
  }
}

/** A Semaphore of `size` per key (a peer), made when first asked for and dropped once nobody holds or waits for it. */
export class KeyedSemaphores {
  private readonly semaphores = new Map<string, { semaphore: Semaphore, users: number }>()

  constructor (readonly size: number) {}

  /** Resolves with the release once `key` has a free place; rejects when `signal` aborts first. */
  async acquire (key: string, options: { signal?: AbortSignal } = {}): Promise<() => void> {
    let entry = this.semaphores.get(key)
    if (entry === undefined) {
      entry = { semaphore: new Semaphore(this.size), users: 0 }
      this.semaphores.set(key, entry)
    }
    const held = entry
    held.users++
    const leave = (): void => {
      if (--held.users === 0 && this.semaphores.get(key) === held) this.semaphores.delete(key)
    }
    try {
      await held.semaphore.acquire(options)
    } catch (err) {
      leave()
      throw err
    }
    let released = false
    return () => {
      if (released) return
      released = true
      held.semaphore.release()
      leave()
    }
  }

  /** Keys with a place held or waited for (for tests). */
  get keys (): number {
    return this.semaphores.size
  }
}
