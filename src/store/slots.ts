/** A counting semaphore: at most `size` holders at once, waiters served in order. */
export class Slots {
  private free: number
  private readonly waiting: Array<() => void> = []

  constructor (size: number) { this.free = size }

  async acquire (signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    if (this.free > 0) {
      this.free--
      return
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiting.indexOf(grant)
        if (at >= 0) this.waiting.splice(at, 1)
        reject(signal?.reason)
      }
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }
      this.waiting.push(grant)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  release (): void {
    const next = this.waiting.shift()
    if (next !== undefined) next()
    else this.free++
  }
}

/** Runs `task` over `items`, at most `concurrency` at a time; the first failure stops new starts and is thrown once all running ones settle. */
export async function forEachLimited<T> (items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const index = next++
      try {
        signal?.throwIfAborted()
        await task(items[index]!, index)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  if (failure !== undefined) throw failure.error
}
