import { Worker } from 'node:worker_threads'
import { CHUNK_SIZE_BYTES } from '../manifest/index.js'

/**
 * Chunk buffers a push shares between its files. Eight keep the read ahead, the write behind
 * and the thread's queue busy (a file in flight uses three or four) while a push stays far
 * under its memory goal: 8 MiB whatever the tree holds.
 */
export const HASH_WORKER_SLOTS = 8

/**
 * One chunk-sized buffer. Whoever reads, hashes or writes its bytes holds it; it is filled
 * again only once every holder released it, so no reader ever sees bytes change under it.
 */
export class ChunkSlot {
  private holders = 0

  constructor (readonly index: number, readonly bytes: Buffer, private readonly onFree: (slot: ChunkSlot) => void) {}

  hold (): void {
    this.holders++
  }

  release (): void {
    if (this.holders <= 0) throw new Error(`chunk slot ${this.index} released more often than held`)
    if (--this.holders === 0) this.onFree(this)
  }
}

/** A fixed set of chunk buffers; `acquire` waits for one to be free (the pipeline's back-pressure). */
export class ChunkSlots {
  private readonly free: ChunkSlot[] = []
  private readonly waiting: Array<(slot: ChunkSlot) => void> = []
  private allocated = 0

  /** `memory` holds every slot back to back (shared with a thread); without it each slot is allocated on first use. */
  constructor (readonly count: number, private readonly memory?: SharedArrayBuffer, readonly slotBytes = CHUNK_SIZE_BYTES) {
    if (memory !== undefined && memory.byteLength < count * slotBytes) throw new RangeError('shared memory is smaller than its slots')
  }

  /** Slots nobody holds (free or not yet allocated): all of them once every ingest using them settled. */
  get idle (): number {
    return this.free.length + this.count - this.allocated
  }

  async acquire (): Promise<ChunkSlot> {
    let slot = this.free.pop()
    if (slot === undefined && this.allocated < this.count) slot = this.allocate()
    if (slot === undefined) slot = await new Promise<ChunkSlot>(resolve => this.waiting.push(resolve))
    slot.hold()
    return slot
  }

  private allocate (): ChunkSlot {
    const index = this.allocated++
    const bytes = this.memory !== undefined
      ? Buffer.from(this.memory, index * this.slotBytes, this.slotBytes)
      : Buffer.allocUnsafe(this.slotBytes)
    return new ChunkSlot(index, bytes, slot => { this.giveBack(slot) })
  }

  private giveBack (slot: ChunkSlot): void {
    const next = this.waiting.shift()
    if (next !== undefined) next(slot)
    else this.free.push(slot)
  }
}

/** sha256 of one file, computed on the hashing thread from the chunk slots it is given in order. */
export interface Sha256Job {
  /** Hands the slot's first `length` bytes to the thread; the slot is held until they are hashed. */
  update (slot: ChunkSlot, length: number): void
  digest (): Promise<string>
  /** Forgets the job (the file failed); resolves once the thread gave back every slot it was handed. */
  drop (): Promise<void>
}

type FromThread =
  | { type: 'released', slot: number }
  | { type: 'digest', job: number, hex: string | undefined }
  | { type: 'dropped', job: number }

interface PendingDigest { resolve: (hex: string) => void, reject: (err: Error) => void }

/**
 * A push's hashing thread and the chunk slots it shares with the main thread (one thread per
 * push, reused for every file, started with the first job). sha256 is the slowest hash a push
 * computes (~1.9 GB/s against BLAKE3's ~4 GB/s per pass on this machine kind); on the thread it
 * runs beside BLAKE3 on the main thread, so on two cores the two hashes cost the time of one.
 * BLAKE3 stays on the main thread: a second thread for it measured no faster (bench-push.ts),
 * the two cores are already busy, and @napi-rs/blake-hash has no threaded or async API.
 */
export class HashWorker {
  readonly slots: ChunkSlots
  private readonly memory: SharedArrayBuffer
  private thread: Worker | undefined
  private failure: Error | undefined
  private closed = false
  private nextJob = 1
  private activeJobs = 0
  private readonly digests = new Map<number, PendingDigest>()
  private readonly drops = new Map<number, () => void>()
  /** Slots handed to the thread, in the order it hashes (and gives back) them. */
  private readonly inThread: ChunkSlot[] = []

  constructor (init: { slots?: number } = {}) {
    const count = init.slots ?? HASH_WORKER_SLOTS
    this.memory = new SharedArrayBuffer(count * CHUNK_SIZE_BYTES)
    this.slots = new ChunkSlots(count, this.memory)
  }

  sha256 (): Sha256Job {
    const thread = this.start()
    const job = this.nextJob++
    this.jobStarted()
    thread.postMessage({ type: 'start', job })
    let finished = false
    const finish = (): void => {
      if (finished) return
      finished = true
      this.jobEnded()
    }
    return {
      update: (slot, length) => {
        if (this.failure !== undefined) throw this.failure
        if (finished) throw new Error('sha256 job used after it finished')
        slot.hold()
        this.inThread.push(slot)
        thread.postMessage({ type: 'update', job, slot: slot.index, length })
      },
      digest: async () => {
        if (this.failure !== undefined) throw this.failure
        if (finished) throw new Error('sha256 job used after it finished')
        try {
          return await new Promise<string>((resolve, reject) => {
            this.digests.set(job, { resolve, reject })
            thread.postMessage({ type: 'digest', job })
          })
        } finally {
          finish()
        }
      },
      drop: async () => {
        if (finished) return
        try {
          if (this.failure !== undefined) return
          await new Promise<void>(resolve => {
            this.drops.set(job, resolve)
            thread.postMessage({ type: 'drop', job })
          })
        } finally {
          finish()
        }
      },
    }
  }

  /** Stops the thread. Every job must have finished or been dropped. */
  async close (): Promise<void> {
    this.closed = true
    const thread = this.thread
    this.thread = undefined
    if (thread !== undefined) await thread.terminate()
    this.fail(new Error('the hashing thread was closed'))
  }

  private start (): Worker {
    if (this.failure !== undefined) throw this.failure
    if (this.closed) throw new Error('the hashing thread was closed')
    if (this.thread !== undefined) return this.thread
    const thread = new Worker(new URL('./hash-thread.js', import.meta.url), {
      workerData: { memory: this.memory, slotBytes: CHUNK_SIZE_BYTES },
      // The thread is plain JavaScript: it needs none of the parent's flags (tsx, --cpu-prof).
      execArgv: [],
    })
    thread.on('message', (message: FromThread) => { this.receive(message) })
    thread.on('error', (err) => { this.fail(new Error(`the hashing thread failed: ${err.message}`, { cause: err })) })
    thread.on('exit', (code) => { if (!this.closed) this.fail(new Error(`the hashing thread exited with code ${code}`)) })
    // Only a running job keeps the process alive (see jobStarted).
    thread.unref()
    this.thread = thread
    return thread
  }

  private receive (message: FromThread): void {
    if (message.type === 'released') {
      const slot = this.inThread.shift()
      if (slot?.index !== message.slot) {
        this.fail(new Error(`the hashing thread gave back slot ${message.slot}, expected ${String(slot?.index)}`))
        return
      }
      slot.release()
      return
    }
    if (message.type === 'dropped') {
      this.drops.get(message.job)?.()
      this.drops.delete(message.job)
      return
    }
    const pending = this.digests.get(message.job)
    this.digests.delete(message.job)
    if (message.hex === undefined) pending?.reject(new Error(`the hashing thread has no sha256 job ${message.job}`))
    else pending?.resolve(message.hex)
  }

  /** The thread is gone: nobody will give back its slots or answer its digests, so do it here. */
  private fail (err: Error): void {
    this.failure ??= err
    for (const slot of this.inThread.splice(0)) slot.release()
    for (const pending of this.digests.values()) pending.reject(this.failure)
    this.digests.clear()
    for (const dropped of this.drops.values()) dropped()
    this.drops.clear()
  }

  private jobStarted (): void {
    if (this.activeJobs++ === 0) this.thread?.ref()
  }

  private jobEnded (): void {
    if (--this.activeJobs === 0) this.thread?.unref()
  }
}
