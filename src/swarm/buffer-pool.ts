/**
 * Reusable buffers for chunk responses: a chunk lives from its arrival until the store has
 * written it, and the next chunk can take the same memory instead of a fresh allocation.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = []
  /** Buffers handed out and not yet given back, each with the number of its current loan. */
  private readonly lent = new WeakMap<ArrayBufferLike, number>()
  private loans = 0

  constructor (readonly bufferBytes: number, private readonly maxFree: number) {}

  /** A buffer of at least `bytes`; requests larger than the pool's size get their own. */
  take (bytes: number): Uint8Array {
    if (bytes > this.bufferBytes) return new Uint8Array(bytes)
    const buffer = this.free.pop() ?? new ArrayBuffer(this.bufferBytes)
    this.lent.set(buffer, ++this.loans)
    return new Uint8Array(buffer)
  }

  /**
   * The loan behind `view` (any view of a buffer `take` handed out), to give back once
   * nothing reads it; undefined for memory the pool did not lend. A lease gives back only
   * its own loan, once: releasing it twice, or after the buffer was given back and lent
   * again, does nothing, so no buffer can be lent to two readers at once.
   */
  lease (view: Uint8Array): BufferLease | undefined {
    const buffer = view.buffer
    const loan = this.lent.get(buffer)
    if (loan === undefined) return undefined
    return new BufferLease(() => {
      if (this.lent.get(buffer) !== loan) return
      this.lent.delete(buffer)
      if (this.free.length < this.maxFree) this.free.push(buffer as ArrayBuffer)
    })
  }
}

/** One loan of a pooled buffer; `release` gives it back the first time and never again. */
export class BufferLease {
  private released = false

  constructor (private readonly giveBack: () => void) {}

  release (): void {
    if (this.released) return
    this.released = true
    this.giveBack()
  }
}
