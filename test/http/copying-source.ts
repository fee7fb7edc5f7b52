import type { BlobSource } from '../../src/http/index.js'
import type { Store } from '../../src/store/index.js'

export const MIB = 1024 * 1024

/** Lets a test release chunk writes one by one. */
export class Gate {
  private allowed = 0
  private wake: (() => void) | undefined

  allow (n = 1): void {
    this.allowed += n
    this.wake?.()
  }

  async take (signal: AbortSignal): Promise<void> {
    while (this.allowed === 0) {
      signal.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        this.wake = resolve
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      })
      this.wake = undefined
    }
    this.allowed--
  }
}

/**
 * A stand-in for the swarm (a separate module): it copies an object chunk by chunk from a
 * store that has it into the store that serves, through the real `writeChunk`, in the order
 * and at the pace the test says. Both stores are real.
 */
export class CopyingSource implements BlobSource {
  readonly calls: Array<{ bundleId: string, object: string, signal: AbortSignal }> = []
  readonly gate = new Gate()
  failAfter: number | undefined
  order: (count: number) => number[] = count => [...Array(count).keys()]

  constructor (private readonly from: Store, private readonly to: Store) {}

  async fetchObject (bundleId: string, object: string, options: { signal: AbortSignal }): Promise<void> {
    this.calls.push({ bundleId, object, signal: options.signal })
    const size = (await this.to.requireBundle(bundleId)).objectSizes.get(object) ?? 0
    let written = 0
    for (const index of this.order(Math.max(1, Math.ceil(size / MIB)))) {
      await this.gate.take(options.signal)
      if (this.failAfter !== undefined && written >= this.failAfter) throw new Error('no peer has this object')
      await this.to.writeChunk(bundleId, object, index, await this.from.readChunk(object, index), options)
      written++
    }
  }
}
