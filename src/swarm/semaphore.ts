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
