import { constants } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { CodedError } from '../errors/index.js'
import { wakeOrThrow, Wakers } from '../wait/index.js'
import { BlobHasher, type HashedBlob } from './blob-hasher.js'
import { openStoreFile, type DirectIo } from './direct-io.js'
import { DirectStagingBytes } from './direct-staging-bytes.js'
import { BufferedStagingBytes, type StagingBytes } from './staging-bytes.js'

/** How much a reader reads from the file per step (and so the most one step yields). */
export const GROWING_READ_BYTES = 1024 * 1024
/**
 * The pieces `read` reads into: below the 128 KiB mmap threshold bin/shoal.js gives the daemon,
 * so malloc serves them from memory it holds. A fresh 1 MiB buffer per step was an mmap, 256
 * page faults and an munmap each (the chunk path measured 1.7-2.1 CPU-s per 512 MiB that way,
 * chunk-reads.ts); one readv fills all of a step's pieces, so the syscalls stay one per MiB.
 */
export const GROWING_PIECE_BYTES = 64 * 1024

/** The most a staging file of no known size may grow to, and the error for an append past it. */
export interface GrowingFileLimit {
  bytes: number
  refusal: (bytes: number) => Error
}

/** What a growing file's readers get once its writer gave up: everything they read must be thrown away. */
export class GrowingFileFailedError extends CodedError<'GROWING_FILE_FAILED'> {
  constructor (message: string, options?: ErrorOptions) {
    super('GROWING_FILE_FAILED', message, options)
    this.name = 'GrowingFileFailedError'
  }
}

interface WaitOptions {
  /** Exclusive; the whole file by default. */
  end?: number
  /** Nothing new for this long fails the read (a writer that stalls). */
  stallMs: number
  signal: AbortSignal
}

export interface ReadOptions extends WaitOptions {
  start?: number
}

export interface ReadIntoOptions extends WaitOptions {
  /** Where in the file the bytes start. */
  position: number
}

export interface GrowingFileReader {
  /** The blob's size, when the writer knew it when the reader was made. */
  size: number | undefined
  /**
   * The bytes in order, each step's as fresh pieces of at most GROWING_PIECE_BYTES (a consumer
   * may keep them as long as it likes: the muxer and cipher of a libp2p stream do).
   */
  read: (options: ReadOptions) => AsyncGenerator<Uint8Array[]>
  /**
   * Reads the next bytes at `position` into `into` (the caller's memory, to reuse once it is
   * done with them), waiting until some are readable; resolves how many, 0 at the end.
   */
  readInto: (into: Uint8Array, options: ReadIntoOptions) => Promise<number>
  /** Bytes (from the first) a reader could read now without waiting. */
  held: () => number
  /** Lets the file's handle go (idempotent). */
  close: () => Promise<void>
}

/**
 * A staging file one writer is filling while readers follow it (a blob on its way from a
 * registry or from the fleet's pull-through node, issue 8). Readers never see the final byte
 * until the writer says the whole file checked out (`complete`), so a reader that forwards
 * what it reads (to containerd, to another node) can never finish a response with bytes that
 * failed their digest; a writer that fails (`fail`) removes the file and every reader throws.
 *
 * Readers read through the writer's own handle (positional reads; a direct file's latest bytes
 * from its memory), which stays open until the writer is done and the last reader left: the
 * file may be renamed into the store (or removed) meanwhile without a reader noticing.
 */
export class GrowingFile {
  private written = 0
  private state: 'writing' | 'complete' | 'failed' = 'writing'
  private failure: Error | undefined
  private readers = 0
  private writerDone = false
  private closed = false
  private finished = false
  private readonly wakers = new Wakers()
  /** What was appended, hashed from the very buffers written: the one pass a streamed blob needs (`hashes`). */
  private readonly hasher = new BlobHasher()

  private constructor (readonly path: string, private readonly file: StagingBytes, private totalSize: number | undefined, private readonly limit?: GrowingFileLimit) {}

  /**
   * A new staging file at `path` (which must not exist), `size` bytes long when known. Its room
   * is the caller's to check first (Store.createStagingFile: the disk and the quota); `limit`
   * refuses an append that would take the file past it, before a byte of it is written. With
   * `direct` (the store's, while its mode is on) the bytes skip the page cache
   * (direct-staging-bytes.ts), and the writer must `finish` before `complete`.
   */
  static async create (path: string, size: number | undefined, limit?: GrowingFileLimit, direct?: DirectIo): Promise<GrowingFile> {
    if (direct?.mode.on === true) {
      // Made first, as `wx` would: the direct handle's flags are also what it reopens with
      // through the page cache if O_DIRECT is refused later, where O_EXCL would fail.
      await (await open(path, 'wx', 0o600)).close()
      const file = await openStoreFile(path, constants.O_RDWR, direct)
      return new GrowingFile(path, new DirectStagingBytes(path, file, direct.aligned), size, limit)
    }
    return new GrowingFile(path, new BufferedStagingBytes(path, await open(path, 'wx+', 0o600)), size, limit)
  }

  /** A file already whole and verified (an object in the store), read the same way. */
  static async whole (path: string): Promise<GrowingFile> {
    const file = await open(path, 'r')
    let size: number
    try {
      ({ size } = await file.stat())
    } catch (err) {
      await file.close().catch(() => undefined)
      throw err
    }
    const growing = new GrowingFile(path, new BufferedStagingBytes(path, file), size)
    growing.written = size
    growing.state = 'complete'
    growing.writerDone = true
    return growing
  }

  /** Whether its bytes were written past the page cache (direct-staging-bytes.ts). */
  get direct (): boolean {
    return this.file instanceof DirectStagingBytes
  }

  /** The size the writer announced (undefined when the source did not say). */
  get size (): number | undefined {
    return this.totalSize
  }

  get bytesWritten (): number {
    return this.written
  }

  /**
   * Appends the next bytes, hashed on their way in (`hashes`); readers may read them at once
   * (except the very last byte, see `complete`). Pieces (a network frame as it arrived) go in
   * one positional writev: joining them first would copy them into fresh memory.
   */
  async append (data: Uint8Array | Iterable<Uint8Array>): Promise<void> {
    if (this.state !== 'writing' || this.finished) throw new Error(`append to a growing file that is ${this.finished ? 'finished' : this.state}`)
    const pieces = data instanceof Uint8Array ? [data] : [...data]
    let length = 0
    for (const piece of pieces) length += piece.byteLength
    if (this.limit !== undefined && this.written + length > this.limit.bytes) throw this.limit.refusal(this.written + length)
    for (const piece of pieces) this.hasher.update(piece)
    await this.file.append(pieces, length, this.written)
    this.written += length
    this.wakers.wakeAll()
  }

  /**
   * BLAKE3 (whole and per chunk) and sha256 of everything appended, hashed from the buffers
   * that were written: the writer checks the sha256 before `complete`, and the store takes the
   * file as an object on these digests without reading it again (ingestBlobFile `hashed`).
   * Appending ends here.
   */
  hashes (): HashedBlob {
    return this.hasher.digest()
  }

  /**
   * Appending ends: every byte appended is put in the file (a direct file holds its last few
   * blocks in memory until now) and the file is its size; resolves `hashes`. A writer calls it
   * before it checks the digest and `complete`s, so the file it hands the store is whole.
   */
  async finish (): Promise<HashedBlob> {
    if (this.state !== 'writing') throw new Error(`finish of a growing file that is ${this.state}`)
    this.finished = true
    await this.file.finish(this.written)
    return this.hashes()
  }

  /** The writer checked the whole file (size and digest): readers may read to its end. */
  complete (): void {
    if (this.state !== 'writing') return
    // A file with bytes only in memory is not whole: the store must not take it as an object.
    if (this.file.unwritten > 0) throw new Error(`complete of the growing file ${this.path} before finish: ${this.file.unwritten} bytes are not in it`)
    this.totalSize = this.written
    this.state = 'complete'
    this.wakers.wakeAll()
  }

  /** The writer gave up: the file is removed and every reader throws `err`. */
  async fail (err: Error): Promise<void> {
    if (this.state !== 'writing') return
    this.state = 'failed'
    this.failure = err
    this.wakers.wakeAll()
    try {
      await rm(this.path, { force: true })
    } finally {
      // Even when the file could not be removed, the handle must not outlive the readers.
      await this.writerFinished()
    }
  }

  /** The writer is done with the handle (after `complete`, once the file was moved into the store). */
  async writerFinished (): Promise<void> {
    this.writerDone = true
    await this.maybeClose()
  }

  /**
   * A reader, counted from now (so the handle stays open for it even if the writer finishes
   * before it reads); `close` it when done, however it ends.
   */
  reader (): GrowingFileReader {
    if (this.closed) throw new Error('the growing file was already closed')
    this.readers++
    let open = true
    return {
      size: this.totalSize,
      read: (options) => this.bytes(options),
      readInto: async (into, options) => await this.readInto(into, options),
      held: () => this.readableEnd(),
      close: async () => {
        if (!open) return
        open = false
        this.readers--
        await this.maybeClose()
      },
    }
  }

  /**
   * The file's bytes from `start` to `end` (exclusive; the whole file by default), in order, as
   * they are written. Ends only once the writer completed; throws when it failed, when nothing
   * new arrives for `stallMs`, or when `signal` aborts.
   */
  private async * bytes (options: ReadOptions): AsyncGenerator<Uint8Array[]> {
    let position = options.start ?? 0
    for (;;) {
      const end = await this.readable(position, options)
      if (end <= position) return
      const want = Math.min(end - position, GROWING_READ_BYTES)
      const pieces: Buffer[] = []
      for (let at = 0; at < want; at += GROWING_PIECE_BYTES) pieces.push(Buffer.allocUnsafe(Math.min(GROWING_PIECE_BYTES, want - at)))
      const bytesRead = await this.file.readAt(pieces, position, want)
      position += bytesRead
      yield bytesRead === want ? pieces : firstBytes(pieces, bytesRead)
    }
  }

  private async readInto (into: Uint8Array, options: ReadIntoOptions): Promise<number> {
    const { position } = options
    const end = await this.readable(position, options)
    if (end <= position) return 0
    const length = Math.min(into.byteLength, end - position)
    return await this.file.readAt([into.subarray(0, length)], position, length)
  }

  /**
   * Waits until bytes at `position` may be read and resolves where they end (exclusive), or
   * `position` itself when the reader is at its end. Throws when the writer failed, nothing new
   * arrives for `stallMs`, or `signal` aborts.
   */
  private async readable (position: number, options: WaitOptions): Promise<number> {
    for (;;) {
      options.signal.throwIfAborted()
      if (this.state === 'failed') throw this.failure ?? new GrowingFileFailedError('the writer failed')
      const end = Math.min(options.end ?? Infinity, this.readableEnd())
      if (position < end) return end
      if (this.state === 'complete' && position >= Math.min(options.end ?? Infinity, this.written)) return position
      await this.change(options.stallMs, options.signal)
    }
  }

  /** Everything written is readable once complete; before that, all but the last byte the size announces (or all, when none was announced). */
  private readableEnd (): number {
    if (this.state === 'complete') return this.written
    return this.totalSize === undefined ? this.written : Math.min(this.written, this.totalSize - 1)
  }

  private async change (stallMs: number, signal: AbortSignal): Promise<void> {
    await wakeOrThrow(this.wakers.subscribe, { timeoutMs: stallMs, signal, timeoutError: () => new GrowingFileFailedError(`nothing new arrived for ${stallMs} ms`) })
  }

  private async maybeClose (): Promise<void> {
    if (this.closed || !this.writerDone || this.readers > 0) return
    this.closed = true
    await this.file.close().catch(() => undefined)
  }
}

/** The first `bytes` bytes of `pieces`, filled in order (a short read). */
function firstBytes (pieces: Buffer[], bytes: number): Buffer[] {
  const kept: Buffer[] = []
  let left = bytes
  for (const piece of pieces) {
    if (left <= 0) break
    kept.push(left >= piece.byteLength ? piece : piece.subarray(0, left))
    left -= piece.byteLength
  }
  return kept
}
