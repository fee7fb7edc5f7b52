import { constants } from 'node:fs'
import { ChunkBitmap, chunkCount, CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { wakeOrTimeout, Wakers } from '../wait/index.js'
import { DIRECT_IO_SLAB_BUFFERS, MAX_OPEN_PARTIAL_FILES, PREFIX_HOLD_CHUNKS } from './constants.js'
import { AlignedBuffers, DirectIoMode, openStoreFile, type StoreFile } from './direct-io.js'
import { ObjectCorruptError, StoreClosingError, StoreError, translateWriteError } from './errors.js'
import type { StoreLayout } from './layout.js'
import type { Metadata } from './metadata.js'
import { fileExists, hashOpenFile, publishObject, removeQuietly } from './object-files.js'
import { ChunkBytesUsers, EarlyChunkBudget, PrefixHash } from './prefix-hash.js'
import type { ChunkWriteResult, StoreEvents } from './types.js'

export interface PartialObjectsComponents {
  layout: StoreLayout
  meta: Metadata
  emit: <E extends keyof StoreEvents>(event: E, detail: StoreEvents[E]) => void
  /** An object is in objects/, its file written with O_DIRECT when `direct`. */
  /**
   * The object is in objects/: `chunkHashes` is its chunk table when every chunk was written
   * through this file with the table entry it was verified against (PartialWriteOptions.chunkHash).
   */
  published?: (hash: string, direct: boolean, chunkHashes?: string[]) => void
}

export interface PartialObjectsInit {
  /** fdatasync chunks before their bits are recorded (default true). */
  fsync?: boolean
  /** Partial files kept open while idle; more are closed, least recently used first. */
  maxOpenFiles?: number
  /**
   * Write chunks with O_DIRECT, from page-aligned memory, past the page cache, while it is on
   * (default off; the caller checks that the filesystem takes it: direct-io.ts `directIoWorks`).
   */
  directIo?: DirectIoMode
  /** Where chunks that are not in aligned memory are copied for a direct write or read (default: the store's own). */
  aligned?: AlignedBuffers
}

export interface PartialWriteOptions {
  signal?: AbortSignal
  /** Called once the bytes are in the file (not yet durable): the caller may reuse its buffer. */
  onWritten?: () => void
  /** The chunk table entry the bytes were verified against (BLAKE3 of the chunk). */
  chunkHash?: string
}

/** One partial object while it is being filled: its open file and which chunks are where. */
class PartialFile {
  /** Chunks whose bits LevelDB holds; their bytes were made durable before that. */
  readonly durable: ChunkBitmap
  /** Chunks being written or waiting for their commit, each settling with it. */
  readonly unsettled = new Map<number, Promise<ChunkWriteResult>>()
  /** Writes (until their commit) and reads using the handle; it is closed only at zero. */
  users = 0
  lastUsedAt = 0
  /** Closed or being closed: acquire a new one. */
  closed = false
  /** Out of the map (published, corrupt or discarded): closed as soon as nobody uses it. */
  retired = false
  /** gc removed the object while writes were under way: their commits record nothing. */
  discarded = false
  /**
   * The object's BLAKE3 over the chunks that came in order, so completion reads back only the
   * rest. Every write of one offset carries the same bytes (verified against the same chunk
   * table entry; a second write of an index happens only after the first failed), so hashing
   * them from memory equals hashing the file. Undefined once a write failed: the file's bytes
   * at that offset are then unknown.
   */
  prefix: PrefixHash | undefined
  /** A direct write of the tail went out rounded up to a whole block (and was cut back after it). */
  padded = false
  /**
   * The table entry each chunk written through this file was verified against: once the object
   * is whole (and its BLAKE3 checked), the object's chunk table, known without reading it back.
   * Chunks made durable before this file was opened (an idle close, a restart) leave holes.
   */
  readonly chunkHashes: Array<string | undefined> = []

  constructor (readonly hash: string, readonly size: number, readonly path: string, readonly handle: StoreFile, durable: ChunkBitmap, early: EarlyChunkBudget) {
    this.durable = durable
    this.prefix = new PrefixHash(early)
  }
}

interface PendingChunk {
  file: PartialFile
  index: number
  resolve: (result: ChunkWriteResult) => void
  reject: (err: unknown) => void
}

class PartialDiscardedError extends StoreError {
  constructor (hash: string) {
    super('OBJECT_DISCARDED', `object ${hash} was removed (gc) while chunks of it were being written; pull it again if it is still wanted`)
    this.name = 'PartialDiscardedError'
  }
}

/**
 * The receive path for objects over one chunk (DESIGN.md "Write discipline"). Each partial
 * object has one open handle; a verified chunk is written at its offset at once, and then
 * waits for the next group commit: every file written since the last commit is fdatasynced,
 * then all their bits go to LevelDB in one batch. So a crash never leaves a bit for bytes that
 * are not on disk, and a burst of chunks costs one fdatasync per object and one LevelDB write,
 * instead of open + write + fdatasync + close + put per chunk, serialised per object.
 *
 * The bits LevelDB holds are the durable ones; the in-memory bitmap of an open file always
 * equals them once its commits settle, so closing an idle file loses nothing.
 */
export class PartialObjects {
  private readonly files = new Map<string, PartialFile>()
  private readonly opening = new Map<string, Promise<PartialFile | 'complete'>>()
  private pending: PendingChunk[] = []
  private committing: Promise<void> | undefined
  private readonly completions = new Set<Promise<void>>()
  /** Set by close(): no file is opened after it, or nobody would close that handle. */
  private closing = false
  /** Woken when a file's last user lets go, for close() to wait on writes and reads under way. */
  private readonly released = new Wakers()
  private readonly fsync: boolean
  private readonly maxOpenFiles: number
  /** Early chunks the open files' prefix hashes may hold, all together. */
  private readonly early = new EarlyChunkBudget(PREFIX_HOLD_CHUNKS, PREFIX_HOLD_CHUNKS)
  private readonly directIo: DirectIoMode
  /** Where chunks that are not in aligned memory are copied for a direct write or read. */
  private readonly aligned: AlignedBuffers

  constructor (private readonly components: PartialObjectsComponents, init: PartialObjectsInit = {}) {
    this.fsync = init.fsync ?? true
    this.maxOpenFiles = init.maxOpenFiles ?? MAX_OPEN_PARTIAL_FILES
    this.directIo = init.directIo ?? new DirectIoMode(false)
    this.aligned = init.aligned ?? new AlignedBuffers(CHUNK_SIZE_BYTES, DIRECT_IO_SLAB_BUFFERS)
  }

  /** Which chunks of an object being filled here are durable; undefined when it is not open. */
  durableBitmap (hash: string): ChunkBitmap | undefined {
    const file = this.files.get(hash)
    return file === undefined || file.closed ? undefined : file.durable
  }

  /**
   * Reads a durable chunk through the open handle, or returns undefined when the object is
   * not open here or the chunk is not durable (the caller then asks LevelDB and the disk).
   */
  async readDurable (hash: string, index: number, into?: Uint8Array): Promise<Uint8Array | undefined> {
    const file = this.files.get(hash)
    if (file === undefined || file.closed || index < 0 || index >= file.durable.chunkCount || !file.durable.has(index)) return undefined
    const length = Math.min(CHUNK_SIZE_BYTES, file.size - index * CHUNK_SIZE_BYTES)
    file.users++
    try {
      return await file.handle.read(into ?? Buffer.allocUnsafe(length), length, index * CHUNK_SIZE_BYTES)
    } finally {
      this.release(file)
    }
  }

  /**
   * Writes one verified chunk of an object of `size` bytes and resolves once it is durable and
   * recorded; the write that completes the object resolves once the object is in objects/.
   */
  async write (hash: string, size: number, index: number, bytes: Uint8Array, options: PartialWriteOptions = {}): Promise<ChunkWriteResult> {
    const file = await this.acquire(hash, size)
    if (file === 'complete') return { stored: false, objectComplete: false }
    let retry = false
    try {
      if (file.durable.has(index)) return { stored: false, objectComplete: false }
      const earlier = file.unsettled.get(index)
      if (earlier !== undefined) {
        // The same chunk twice at once: the second waits for the first (and writes it if that failed).
        retry = await earlier.then(() => false, () => true)
        if (!retry) return { stored: false, objectComplete: false }
      } else {
        options.signal?.throwIfAborted()
        // Fed in arrival order, before the write: writes finish in the thread pool's order.
        const users = new ChunkBytesUsers(options.onWritten)
        file.prefix?.add(index, bytes, users)
        if (options.chunkHash !== undefined) file.chunkHashes[index] = options.chunkHash
        const settled = this.writeAndCommit(file, index, bytes, () => { users.drop() })
        file.unsettled.set(index, settled)
        try {
          return await settled
        } finally {
          file.unsettled.delete(index)
          file.prefix?.settled(index)
        }
      }
    } finally {
      this.release(file)
    }
    return await this.write(hash, size, index, bytes, options)
  }

  /** Forgets an object gc removes: its file is closed (once idle) and nothing more is recorded for it. */
  async discard (hash: string): Promise<void> {
    const file = this.files.get(hash)
    if (file === undefined) return
    file.discarded = true
    this.retire(file)
    if (file.users === 0) await this.close(file)
  }

  /**
   * Waits for every open, write, read, commit and completion under way, then closes every
   * file; a write that starts after this is refused (StoreClosingError).
   */
  async close (file?: PartialFile): Promise<void> {
    if (file !== undefined) {
      if (file.closed) return
      file.closed = true
      if (this.files.get(file.hash) === file) this.files.delete(file.hash)
      await file.handle.close()
      return
    }
    this.closing = true
    // An open under way puts its file in the map only when it ends, and its write then holds
    // the file until the write's commit settles: closing before either would leave a handle.
    while (this.opening.size > 0 || this.committing !== undefined || this.completions.size > 0 || this.inUse()) {
      await Promise.allSettled(this.opening.values())
      await this.committing
      await Promise.all(this.completions)
      if (this.inUse()) await wakeOrTimeout(this.released.subscribe, {})
    }
    await Promise.all([...this.files.values()].map(async f => { await this.close(f) }))
  }

  // ---- open files ---------------------------------------------------------------------

  private async acquire (hash: string, size: number): Promise<PartialFile | 'complete'> {
    for (;;) {
      const file = this.files.get(hash)
      if (file !== undefined && !file.closed) {
        file.users++
        file.lastUsedAt = performance.now()
        return file
      }
      let opening = this.opening.get(hash)
      if (opening === undefined) {
        if (this.closing) throw new StoreClosingError(`chunks of object ${hash}`)
        opening = this.load(hash, size).finally(() => { this.opening.delete(hash) })
        this.opening.set(hash, opening)
      }
      if (await opening === 'complete') return 'complete'
      // Loop: take it from the map (another caller may have closed it meanwhile).
    }
  }

  private release (file: PartialFile): void {
    file.users--
    if (file.users > 0) return
    this.released.wakeAll()
    if (file.retired) {
      void this.close(file).catch(() => {})
      return
    }
    this.closeIdle()
  }

  private async load (hash: string, size: number): Promise<PartialFile | 'complete'> {
    if (await fileExists(this.components.layout.objectPath(hash))) return 'complete'
    const record = await this.components.meta.getPartial(hash)
    const durable = new ChunkBitmap(chunkCount(size), record?.bitmap)
    const path = this.components.layout.partialPath(hash)
    let handle: StoreFile
    try {
      handle = await openStoreFile(path, constants.O_RDWR | constants.O_CREAT, { mode: this.directIo, aligned: this.aligned })
    } catch (err) {
      throw translateWriteError(err, path)
    }
    const file = new PartialFile(hash, size, path, handle, durable, this.early)
    this.files.set(hash, file)
    return file
  }

  private inUse (): boolean {
    for (const file of this.files.values()) if (file.users > 0) return true
    return false
  }

  private retire (file: PartialFile): void {
    file.retired = true
    if (this.files.get(file.hash) === file) this.files.delete(file.hash)
  }

  /** Keeps at most maxOpenFiles open: closes idle ones, least recently used first. */
  private closeIdle (): void {
    if (this.files.size <= this.maxOpenFiles) return
    const idle = [...this.files.values()].filter(f => f.users === 0).sort((a, b) => a.lastUsedAt - b.lastUsedAt)
    for (const file of idle.slice(0, this.files.size - this.maxOpenFiles)) void this.close(file).catch(() => {})
  }

  // ---- writes and group commits ---------------------------------------------------------

  private async writeAndCommit (file: PartialFile, index: number, bytes: Uint8Array, onWritten?: () => void): Promise<ChunkWriteResult> {
    const offset = index * CHUNK_SIZE_BYTES
    try {
      // Direct, the bytes are copied into aligned memory first (unless they are in it), and the
      // caller's buffer is free from then on.
      if (await file.handle.write(bytes, offset, onWritten)) {
        // A direct write of the object's tail went out rounded up to a whole block.
        file.padded = true
        await file.handle.truncate(file.size)
      }
    } catch (err) {
      file.prefix?.clear()
      file.prefix = undefined
      throw translateWriteError(err, file.path)
    }
    return await new Promise<ChunkWriteResult>((resolve, reject) => {
      this.pending.push({ file, index, resolve, reject })
      this.scheduleCommit()
    })
  }

  /**
   * One commit at a time; chunks written while it runs wait for the next. Under load the
   * batches grow by themselves, and a lone chunk commits at once.
   */
  private scheduleCommit (): void {
    if (this.committing !== undefined) return
    this.committing = (async () => {
      while (this.pending.length > 0) await this.commit(this.pending.splice(0))
    })().finally(() => {
      this.committing = undefined
      if (this.pending.length > 0) this.scheduleCommit()
    })
  }

  private async commit (chunks: PendingChunk[]): Promise<void> {
    const byFile = new Map<PartialFile, PendingChunk[]>()
    for (const chunk of chunks) {
      if (chunk.file.discarded) chunk.reject(new PartialDiscardedError(chunk.file.hash))
      else byFile.set(chunk.file, [...(byFile.get(chunk.file) ?? []), chunk])
    }
    if (this.fsync) {
      // One fdatasync per file for the whole batch, the files' in parallel (libuv's pool).
      const synced = await Promise.allSettled([...byFile.keys()].map(async file => { await file.handle.datasync() }))
      for (const [i, file] of [...byFile.keys()].entries()) {
        const outcome = synced[i]
        if (outcome?.status !== 'rejected') continue
        for (const chunk of byFile.get(file) ?? []) chunk.reject(translateWriteError(outcome.reason, file.path))
        byFile.delete(file)
      }
    }
    const batch = this.components.meta.batch()
    const recorded: Array<[PartialFile, PendingChunk[], ChunkBitmap]> = []
    for (const [file, fileChunks] of byFile) {
      const next = new ChunkBitmap(file.durable.chunkCount, file.durable.bytes)
      for (const chunk of fileChunks) next.set(chunk.index)
      if (next.isComplete()) {
        // The last bits are never recorded: a crash before the object is published re-fetches them.
        this.track(this.complete(file, fileChunks))
        continue
      }
      this.components.meta.setPartial(batch, file.hash, { size: file.size, bitmap: next.bytes })
      recorded.push([file, fileChunks, next])
    }
    if (recorded.length === 0) return
    try {
      await batch.write()
    } catch (err) {
      for (const [, fileChunks] of recorded) for (const chunk of fileChunks) chunk.reject(err)
      return
    }
    for (const [file, fileChunks, next] of recorded) {
      file.durable.bytes.set(next.bytes)
      for (const chunk of fileChunks) {
        this.components.emit('chunk:stored', { object: file.hash, index: chunk.index })
        chunk.resolve({ stored: true, objectComplete: false })
      }
    }
  }

  private track (completion: Promise<void>): void {
    this.completions.add(completion)
    void completion.finally(() => { this.completions.delete(completion) })
  }

  /**
   * Every chunk is durable: hash the whole object once more (the chunk table holds root
   * hashes of each chunk, which do not combine into the object's BLAKE3; see
   * docs/architecture.md), from memory for the chunks that came in order and from the file
   * for the rest, then rename it into objects/ and only then drop its bitmap.
   */
  private async complete (file: PartialFile, chunks: PendingChunk[]): Promise<void> {
    const { layout, meta, emit } = this.components
    const hasher = file.prefix?.state
    const prefix = hasher === undefined ? undefined : { hasher, offset: Math.min(file.size, (file.prefix?.chunks ?? 0) * CHUNK_SIZE_BYTES) }
    const rereadBytes = file.size - (prefix?.offset ?? 0)
    // Direct reads go into aligned memory: one of ours, instead of a copy out of it.
    const buffer = file.handle.direct && rereadBytes > 0 ? this.aligned.take() : undefined
    try {
      let whole: string
      try {
        whole = await hashOpenFile(file.handle, file.size, prefix, buffer)
      } finally {
        if (buffer !== undefined) this.aligned.give(buffer)
      }
      // What is published must be the object's size exactly: a direct write of the tail went out
      // rounded up and was truncated after it; this catches a truncate that did not last.
      if (file.padded && await file.handle.size() !== file.size) await file.handle.truncate(file.size)
      if (whole !== file.hash) {
        this.retire(file)
        await removeQuietly(file.path)
        await meta.deletePartial(file.hash)
        throw new ObjectCorruptError(file.hash, whole)
      }
      await publishObject(file.path, layout.objectPath(file.hash))
      this.components.published?.(file.hash, file.handle.direct, wholeTable(file))
      this.retire(file)
      await meta.deletePartial(file.hash)
    } catch (err) {
      for (const chunk of chunks) chunk.reject(err)
      return
    }
    const last = chunks[chunks.length - 1]
    for (const chunk of chunks) {
      emit('chunk:stored', { object: file.hash, index: chunk.index })
    }
    emit('object:complete', { object: file.hash, rereadBytes })
    for (const chunk of chunks) chunk.resolve({ stored: true, objectComplete: chunk === last })
  }
}

/** The chunk table of a partial file whose every chunk was written through it, else undefined. */
function wholeTable (file: PartialFile): string[] | undefined {
  const count = chunkCount(file.size)
  const table = file.chunkHashes.slice(0, count)
  if (table.length !== count) return undefined
  for (const hash of table) if (hash === undefined) return undefined
  return table as string[]
}
