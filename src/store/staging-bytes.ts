import type { FileHandle } from 'node:fs/promises'
import { translateWriteError } from './errors.js'

/**
 * Where a growing file's bytes go and come back from (growing-file.ts keeps the order, the
 * readers' waits and the hashes): through the page cache (`BufferedStagingBytes`), or with
 * O_DIRECT from aligned memory (`DirectStagingBytes`, direct-staging-bytes.ts).
 */
export interface StagingBytes {
  /** Writes `pieces` (`length` bytes in all) at `position`, which is everything appended so far. */
  append: (pieces: Uint8Array[], length: number, position: number) => Promise<void>
  /**
   * Reads up to `length` bytes at `position` (all appended already) into `pieces`, in order;
   * resolves how many (at least one), fewer when a step ends sooner.
   */
  readAt: (pieces: Uint8Array[], position: number, length: number) => Promise<number>
  /** Everything appended (`size` bytes) is in the file, and the file is that long. */
  finish: (size: number) => Promise<void>
  /** Bytes appended that are not in the file yet: `finish` puts them there. */
  readonly unwritten: number
  close: () => Promise<void>
}

/** A staging file written and read through the page cache, with positional writev and readv. */
export class BufferedStagingBytes implements StagingBytes {
  readonly unwritten = 0

  constructor (private readonly path: string, private readonly file: FileHandle) {}

  async append (data: Uint8Array[], length: number, position: number): Promise<void> {
    let pieces = data
    let offset = 0
    while (offset < length) {
      let bytesWritten: number
      try {
        ({ bytesWritten } = await this.file.writev(pieces, position + offset))
      } catch (err) {
        throw translateWriteError(err, this.path)
      }
      offset += bytesWritten
      // A short write (a full disk about to fail, a signal): the rest goes in the next call.
      if (offset < length) pieces = unwritten(pieces, bytesWritten)
    }
  }

  /** One positional readv; `pieces` are sized to `length` by the caller. */
  async readAt (pieces: Uint8Array[], position: number): Promise<number> {
    const { bytesRead } = await this.file.readv(pieces, position)
    if (bytesRead === 0) throw new Error(`the growing file ${this.path} is shorter than what was written to it`)
    return bytesRead
  }

  async finish (): Promise<void> {}

  async close (): Promise<void> {
    await this.file.close()
  }
}

/** What is left of `pieces` after their first `bytes` bytes. */
function unwritten (pieces: Uint8Array[], bytes: number): Uint8Array[] {
  let skip = bytes
  let first = 0
  while (first < pieces.length && skip >= (pieces[first]?.byteLength ?? 0)) skip -= pieces[first++]?.byteLength ?? 0
  const rest = pieces.slice(first)
  if (skip > 0 && rest[0] !== undefined) rest[0] = rest[0].subarray(skip)
  return rest
}
