/**
 * Reusable buffers for chunk responses: a chunk lives from its arrival until the store has
 * written it, and the next chunk can take the same memory instead of a fresh allocation.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = []
  /** Buffers handed out and not yet given back: a buffer returns to the pool at most once. */
  private readonly lent = new WeakSet<ArrayBufferLike>()

  constructor (readonly bufferBytes: number, private readonly maxFree: number) {}

  /** A buffer of at least `bytes`; requests larger than the pool's size get their own. */
  take (bytes: number): Uint8Array {
    if (bytes > this.bufferBytes) return new Uint8Array(bytes)
    const buffer = this.free.pop() ?? new ArrayBuffer(this.bufferBytes)
    this.lent.add(buffer)
    return new Uint8Array(buffer)
  }

  /** Gives back the buffer behind `view`, once nothing reads it any more; other views are ignored. */
  give (view: Uint8Array): void {
    const buffer = view.buffer
    if (!this.lent.delete(buffer)) return
    if (this.free.length < this.maxFree) this.free.push(buffer as ArrayBuffer)
  }
}
