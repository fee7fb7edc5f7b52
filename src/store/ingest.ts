import { open, type FileHandle } from 'node:fs/promises'
import { createBlake3, createSha256, blake3Hex, type Sha256Hasher } from '../hash/index.js'
import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { translateWriteError } from './errors.js'
import { ChunkSlots, type ChunkSlot, type HashWorker, type Sha256Job } from './hash-worker.js'

/**
 * Chunk buffers of one ingest without a hashing thread: the chunk being hashed, the next one
 * being read and the previous one being written. Allocated as needed, so a small file costs
 * one buffer, as it did when the loop was sequential.
 */
const LOCAL_SLOTS = 3

/**
 * While a copy is written, its dirty pages are pushed to the disk every this many bytes (an
 * fdatasync the loop does not wait for: later writes go on meanwhile), so that writeback
 * overlaps the hashing of the rest of the file and the final fdatasync waits only for the tail.
 * On 1 GiB, the copy made durable took 2.48 s with one final fdatasync, 2.07 s with an early
 * one every 8 MiB, 1.79 s every 32 MiB, 2.00 s every 128 MiB, against 1.73 s with no fdatasync
 * at all (medians of 7, loaded machine). Each early one commits the journal (the size grew),
 * hence not more often.
 *
 * Why push keeps an fdatasync per staged file at all: a kill -9 would not need it (the page
 * cache outlives the process), but a power loss would. Without it, a rename into objects/ and
 * the LevelDB commit could reach the disk before the bytes, leaving an object that is listed
 * and present but empty or torn: served until `shoal verify` ran. With it, every byte is on
 * disk before the object becomes visible (DESIGN.md: write discipline), and its cost is now
 * small: the early fdatasyncs above for large files, and small files' fdatasyncs issued
 * several at once by push (they share journal commits).
 */
const WRITEBACK_KICK_BYTES = 32 * CHUNK_SIZE_BYTES

/** What one pass over a file learns: every digest the store and the OCI checks need. */
export interface IngestedFile {
  checksum: string
  size: number
  /** BLAKE3 of each 1 MiB chunk, only for files over one chunk. */
  chunkHashes?: string[]
  sha256?: string
  /** Where the verified bytes now are: a staging copy, or the source itself when moving. */
  stagedPath: string
}

export interface IngestOptions {
  /** Copy to this path while hashing; without it the file is only read (it will be moved). */
  copyTo?: string
  sha256?: boolean
  /** fdatasync the copy before returning (default true): the copy is durable once this resolves. */
  fsync?: boolean
  /**
   * A push's hashing thread: files over one chunk then have their sha256 computed on it, beside
   * BLAKE3 here, in its shared chunk buffers. Without it everything is hashed on this thread.
   */
  hashWorker?: HashWorker
  signal?: AbortSignal
}

interface Piece { slot: ChunkSlot, length: number }

/**
 * Reads a file once, in whole chunks, hashing it (BLAKE3 whole and per chunk, optionally
 * sha256) and optionally copying it. Hashing what is written, from the same buffer, means the
 * stored bytes are exactly the hashed ones even if the source changes meanwhile.
 *
 * The loop is a pipeline over chunk buffers: while chunk n is hashed here (and its sha256 on
 * the hashing thread, when given one), chunk n+1 is being read and chunk n-1 written, both on
 * libuv's thread pool. A buffer is refilled only after its write and every hash of it are done.
 */
export async function ingestFile (source: string, options: IngestOptions = {}): Promise<IngestedFile> {
  const { signal } = options
  signal?.throwIfAborted()
  const input = await open(source, 'r')
  let output: FileHandle | undefined
  try {
    if (options.copyTo !== undefined) output = await open(options.copyTo, 'wx', 0o600)
    const writer = output !== undefined && options.copyTo !== undefined ? new CopyWriter(output, options.copyTo, options.fsync !== false) : undefined
    const slots = options.hashWorker?.slots ?? new ChunkSlots(LOCAL_SLOTS)
    const whole = createBlake3()
    const chunkHashes: string[] = []
    let localSha: Sha256Hasher | undefined
    let threadSha: Sha256Job | undefined
    let size = 0
    let checksum: string | undefined
    let next: Promise<Piece> | undefined = readPiece(input, slots, 0)
    try {
      while (next !== undefined) {
        const { slot, length } = await next
        next = undefined
        try {
          signal?.throwIfAborted()
          writer?.throwIfFailed()
          // Chunk boundaries must not depend on short reads: a piece is a whole chunk unless the file ended.
          const full = length === slot.bytes.length
          if (full) next = readPiece(input, slots, size + length)
          if (length === 0) break
          const bytes = slot.bytes.subarray(0, length)
          if (options.sha256 === true) {
            if (threadSha === undefined && localSha === undefined) {
              // A file that fits in one read is hashed here: the round trip to the thread costs more.
              if (full && options.hashWorker !== undefined) threadSha = options.hashWorker.sha256()
              else localSha = createSha256()
            }
            if (threadSha !== undefined) threadSha.update(slot, length)
            else localSha?.update(bytes)
          }
          writer?.write(slot, length, size)
          if (size === 0 && !full) {
            // The whole file in one piece: its checksum is the one BLAKE3 pass it needs.
            checksum = blake3Hex(bytes)
          } else {
            whole.update(bytes)
            chunkHashes.push(blake3Hex(bytes))
          }
          size += length
        } finally {
          slot.release()
        }
      }
      await writer?.finish()
      let sha256: string | undefined
      if (threadSha !== undefined) sha256 = await threadSha.digest()
      else if (options.sha256 === true) sha256 = (localSha ?? createSha256()).digest('hex')
      return {
        checksum: checksum ?? whole.digestHex(),
        size,
        chunkHashes: size > CHUNK_SIZE_BYTES ? chunkHashes : undefined,
        sha256,
        stagedPath: options.copyTo ?? source,
      }
    } catch (err) {
      // Let what is still running finish before the files close and the caller goes on: a read
      // ahead, queued writes (a write to a closed descriptor could land in whichever file reuses
      // its number), the thread's hashing of chunks it was handed.
      if (next !== undefined) await next.then(piece => { piece.slot.release() }, () => {})
      await writer?.settle()
      await threadSha?.drop()
      throw err
    }
  } finally {
    await input.close()
    await output?.close()
  }
}

/** Reads the chunk at `position` into a free slot; the slot comes back held by the caller. */
async function readPiece (file: FileHandle, slots: ChunkSlots, position: number): Promise<Piece> {
  const slot = await slots.acquire()
  try {
    return { slot, length: await readFull(file, slot.bytes, position) }
  } catch (err) {
    slot.release()
    throw err
  }
}

/** Fills the buffer from `position` unless the file ends first. */
async function readFull (file: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let filled = 0
  while (filled < buffer.length) {
    const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, position + filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  return filled
}

/**
 * Writes a copy in order, behind the hashing, holding each chunk's slot until its bytes are
 * written. The first error (ENOSPC becomes DiskFullError) is kept and stops further writes.
 */
class CopyWriter {
  private queue: Promise<void> = Promise.resolve()
  private failure: { error: unknown } | undefined
  private unsynced = 0
  private kick: Promise<void> | undefined

  constructor (private readonly file: FileHandle, private readonly path: string, private readonly fsync: boolean) {}

  write (slot: ChunkSlot, length: number, position: number): void {
    slot.hold()
    this.queue = this.queue
      .then(async () => { if (this.failure === undefined) await writeAll(this.file, slot.bytes, length, position) })
      .catch((err: unknown) => { this.fail(err) })
      .finally(() => { slot.release() })
    if (!this.fsync) return
    this.unsynced += length
    if (this.unsynced >= WRITEBACK_KICK_BYTES && this.kick === undefined) {
      this.unsynced = 0
      // Not awaited here: the writes behind it go on while the disk takes what is before it.
      this.kick = this.queue
        .then(async () => { if (this.failure === undefined) await this.file.datasync() })
        .catch((err: unknown) => { this.fail(err) })
        .finally(() => { this.kick = undefined })
    }
  }

  throwIfFailed (): void {
    if (this.failure !== undefined) throw this.failure.error
  }

  /** Every write done and, with fsync, the copy durable; throws the first failure. */
  async finish (): Promise<void> {
    await this.settle()
    this.throwIfFailed()
    if (!this.fsync) return
    try {
      await this.file.datasync()
    } catch (err) {
      this.fail(err)
      this.throwIfFailed()
    }
  }

  /** Waits for the queued writes and any early fdatasync, whatever their outcome. */
  async settle (): Promise<void> {
    await this.queue
    await this.kick
  }

  private fail (err: unknown): void {
    this.failure ??= { error: translateWriteError(err, this.path) }
  }
}

async function writeAll (file: FileHandle, data: Buffer, length: number, position: number): Promise<void> {
  let written = 0
  while (written < length) {
    const { bytesWritten } = await file.write(data, written, length - written, position + written)
    written += bytesWritten
  }
}
