import { AlignedBuffers, DIRECT_IO_ALIGN_BYTES, DIRECT_IO_SLAB_BUFFERS } from '../store/index.js'

export interface BufferPoolInit {
  /**
   * Lend memory in which a chunk's bytes can land on a page boundary (`take`'s `alignAt`), so
   * the store writes them O_DIRECT as they are instead of copying each 1 MiB into a bounce
   * buffer first (~0.06 CPU-s per 512 MiB on the edge's main thread). The memory is carved out
   * of the store's kind of page-aligned slabs, which are kept once made (they cannot shrink):
   * at most as many buffers as were lent at once.
   */
  aligned?: boolean
}

/**
 * Reusable buffers for chunk responses: a chunk lives from its arrival until the store has
 * written it, and the next chunk can take the same memory instead of a fresh allocation.
 */
export class BufferPool {
  private readonly free: Uint8Array[] = []
  /** Buffers handed out and not yet given back: per backing memory, each buffer's start and the number of its current loan. */
  private readonly lent = new WeakMap<ArrayBufferLike, Map<number, number>>()
  private loans = 0
  private readonly aligned: AlignedBuffers | undefined
  /** Each buffer's size: room for `bufferBytes` from any start within its first block, when aligned. */
  private readonly slotBytes: number

  constructor (readonly bufferBytes: number, private readonly maxFree: number, init: BufferPoolInit = {}) {
    this.slotBytes = init.aligned === true ? Math.ceil((bufferBytes + DIRECT_IO_ALIGN_BYTES) / DIRECT_IO_ALIGN_BYTES) * DIRECT_IO_ALIGN_BYTES : bufferBytes
    this.aligned = init.aligned === true ? new AlignedBuffers(this.slotBytes, DIRECT_IO_SLAB_BUFFERS) : undefined
  }

  /**
   * A buffer of at least `bytes`; requests larger than the pool's size get their own. With
   * `alignAt`, in an aligned pool, byte `alignAt` of the buffer is on a page boundary.
   */
  take (bytes: number, alignAt?: number): Uint8Array {
    if (bytes > this.bufferBytes) return new Uint8Array(bytes)
    const slot = this.aligned?.take() ?? this.free.pop() ?? new Uint8Array(new ArrayBuffer(this.bufferBytes))
    let loans = this.lent.get(slot.buffer)
    if (loans === undefined) {
      loans = new Map()
      this.lent.set(slot.buffer, loans)
    }
    loans.set(slot.byteOffset, ++this.loans)
    if (this.aligned === undefined || alignAt === undefined) return slot
    return slot.subarray((DIRECT_IO_ALIGN_BYTES - alignAt % DIRECT_IO_ALIGN_BYTES) % DIRECT_IO_ALIGN_BYTES)
  }

  /**
   * The loan behind `view` (any view of a buffer `take` handed out), to give back once
   * nothing reads it; undefined for memory the pool did not lend. A lease gives back only
   * its own loan, once: releasing it twice, or after the buffer was given back and lent
   * again, does nothing, so no buffer can be lent to two readers at once.
   */
  lease (view: Uint8Array): BufferLease | undefined {
    const memory = view.buffer
    const loans = this.lent.get(memory)
    // Buffers sit at whole multiples of their size in their memory (one per ArrayBuffer, or a slab's).
    const start = Math.floor(view.byteOffset / this.slotBytes) * this.slotBytes
    const loan = loans?.get(start)
    if (loans === undefined || loan === undefined) return undefined
    return new BufferLease(() => {
      if (loans.get(start) !== loan) return
      loans.delete(start)
      const slot = new Uint8Array(memory, start, this.slotBytes)
      // A slab's buffer goes back to it whatever the count: dropped, it would stay allocated unused.
      if (this.aligned !== undefined) this.aligned.give(slot)
      else if (this.free.length < this.maxFree) this.free.push(slot)
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
