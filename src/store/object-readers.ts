import { constants } from 'node:fs'
import { MAX_DIRECT_READ_OBJECTS, MAX_OPEN_OBJECT_READERS, OBJECT_READER_IDLE_MS } from './constants.js'
import { openStoreFile, type DirectIo, type StoreFile } from './direct-io.js'
import { RecentSet } from '../recent/index.js'

interface Reader {
  handle: StoreFile
  /** Reads under way; the handle is closed only at zero. */
  users: number
  lastUsedAt: number
  /** Out of the pool (evicted, idle, forgotten): closed as soon as nobody reads it. */
  retired: boolean
}

export interface ObjectReadersInit {
  maxOpen?: number
  idleMs?: number
  /**
   * Memory for direct reads (`readDirect`) and the store's direct I/O mode (they stop when it
   * goes off); without them every read goes through the page cache.
   */
  directIo?: DirectIo
}

/**
 * Read handles of complete objects, kept open and shared by every chunk read: serving a
 * chunk used to cost open + read + close. Safe to keep because a complete object's bytes
 * never change (it is content-addressed and published by rename); gc and an idle timer close
 * handles so a removed file's space is freed.
 */
export class ObjectReaders {
  private readonly readers = new Map<string, Reader>()
  private readonly opening = new Map<string, Promise<Reader | undefined>>()
  private readonly maxOpen: number
  private readonly idleMs: number
  private sweeper: NodeJS.Timeout | undefined
  /** Objects written here with O_DIRECT, newest last: the page cache holds none of them. */
  private readonly direct = new RecentSet<string>(MAX_DIRECT_READ_OBJECTS)

  private readonly directIo: DirectIo | undefined

  constructor (private readonly pathOf: (hash: string) => string, init: ObjectReadersInit = {}) {
    this.maxOpen = init.maxOpen ?? MAX_OPEN_OBJECT_READERS
    this.idleMs = init.idleMs ?? OBJECT_READER_IDLE_MS
    this.directIo = init.directIo
  }

  /**
   * Up to `length` bytes at `offset` of a complete object, into `into` when given; undefined
   * when the object is not complete here.
   */
  async read (hash: string, offset: number, length: number, into?: Uint8Array): Promise<Uint8Array | undefined> {
    const reader = await this.acquire(hash)
    if (reader === undefined) return undefined
    try {
      return await reader.handle.read(into ?? Buffer.allocUnsafe(length), length, offset)
    } finally {
      this.release(reader)
    }
  }

  /**
   * `hash` was written past the page cache (a pull's chunks, direct-io.ts): read it the same
   * way, or its first reads (the response to containerd behind the pull, the chunk server)
   * would fill cold page-cache pages with it after all. Only the latest MAX_DIRECT_READ_OBJECTS
   * are remembered; older ones, and any after a restart, are read through the page cache.
   */
  readDirect (hash: string): void {
    if (this.directIo?.mode.on !== true) return
    this.direct.add(hash)
  }

  /** The object's file is going away (gc): stop reading it through a kept handle. */
  forget (hash: string): void {
    this.direct.delete(hash)
    const reader = this.readers.get(hash)
    if (reader !== undefined) this.retire(hash, reader)
  }

  async close (): Promise<void> {
    clearInterval(this.sweeper)
    this.sweeper = undefined
    // Settled, not all fulfilled: one open that failed must not keep the others' handles open.
    await Promise.allSettled([...this.opening.values()])
    const all = [...this.readers]
    this.readers.clear()
    await Promise.all(all.map(async ([, reader]) => { await reader.handle.close().catch(() => {}) }))
  }

  private async acquire (hash: string): Promise<Reader | undefined> {
    for (;;) {
      const reader = this.readers.get(hash)
      if (reader !== undefined) {
        reader.users++
        reader.lastUsedAt = performance.now()
        return reader
      }
      let opening = this.opening.get(hash)
      if (opening === undefined) {
        opening = this.load(hash).finally(() => { this.opening.delete(hash) })
        this.opening.set(hash, opening)
      }
      if (await opening === undefined) return undefined
      // Loop: take it from the pool (it may have been evicted meanwhile, and is then opened again).
    }
  }

  private async load (hash: string): Promise<Reader | undefined> {
    let handle: StoreFile
    try {
      handle = await openStoreFile(this.pathOf(hash), constants.O_RDONLY, this.direct.has(hash) ? this.directIo : undefined)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    const reader: Reader = { handle, users: 0, lastUsedAt: performance.now(), retired: false }
    this.readers.set(hash, reader)
    this.evict()
    this.sweeper ??= setInterval(() => { this.sweep() }, this.idleMs).unref()
    return reader
  }

  private release (reader: Reader): void {
    reader.users--
    if (reader.users === 0 && reader.retired) void reader.handle.close().catch(() => {})
  }

  private retire (hash: string, reader: Reader): void {
    if (this.readers.get(hash) === reader) this.readers.delete(hash)
    reader.retired = true
    if (reader.users === 0) void reader.handle.close().catch(() => {})
  }

  /** Over the cap: the least recently used go (a handle still being read closes after its read). */
  private evict (): void {
    if (this.readers.size <= this.maxOpen) return
    const oldest = [...this.readers].sort((a, b) => a[1].lastUsedAt - b[1].lastUsedAt)
    for (const [hash, reader] of oldest.slice(0, this.readers.size - this.maxOpen)) this.retire(hash, reader)
  }

  private sweep (): void {
    const now = performance.now()
    for (const [hash, reader] of [...this.readers]) {
      if (reader.users === 0 && now - reader.lastUsedAt >= this.idleMs) this.retire(hash, reader)
    }
    if (this.readers.size === 0) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }
}
