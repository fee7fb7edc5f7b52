import { DIRECT_IO_ALIGN_BYTES, STAGING_RECENT_BUFFERS } from './constants.js'
import type { AlignedBuffers, StoreFile } from './direct-io.js'
import { translateWriteError } from './errors.js'
import type { StagingBytes } from './staging-bytes.js'

/**
 * A staging file written with O_DIRECT (docs/architecture.md, "Staging files that skip the page
 * cache"). A pull-through's staging files (the gateway's from the registry, the edge's from
 * the fleet-blob stream) were written through the page cache, and the kernel's copy into fresh
 * page-cache pages (`copy_folio_from_iter_atomic`, on libuv's pool) was the largest item of
 * either daemon: 1.2 CPU-s per 512 MiB each, as the chunk path's was before its writes went
 * direct ("Chunk writes that skip the page cache": this VM hands free pages back to the host,
 * and the next touch of each faults there).
 *
 * Appended bytes are copied into one aligned buffer (a memcpy on the main thread, ~0.1 ms per
 * MiB), which is written whole at its block offset once full; the last buffer's few blocks are
 * written by `finish`, padded, and the file cut to its size. Readers follow the writer closely
 * (a fleet-blob sender, containerd's response), so the buffer being filled and the last
 * STAGING_RECENT_BUFFERS written are read from memory; older bytes come back with direct reads
 * through an aligned bounce, copied out.
 */
export class DirectStagingBytes implements StagingBytes {
  /** Holds the bytes from `flushed` on: `filled` of them. */
  private carry: Uint8Array
  private filled = 0
  /** Bytes in the file: always a whole number of `carry`s. */
  private flushed = 0
  /** The last buffers written, oldest first, kept for readers at the growing end. */
  private readonly recent: Array<{ start: number, bytes: Uint8Array }> = []
  private released = false
  private finished = false

  constructor (private readonly path: string, private readonly file: StoreFile, private readonly aligned: AlignedBuffers) {
    this.carry = aligned.take()
  }

  get unwritten (): number {
    return this.finished ? 0 : this.filled
  }

  async append (pieces: Uint8Array[]): Promise<void> {
    for (const piece of pieces) {
      let at = 0
      while (at < piece.byteLength) {
        const take = Math.min(piece.byteLength - at, this.carry.byteLength - this.filled)
        this.carry.set(piece.subarray(at, at + take), this.filled)
        this.filled += take
        at += take
        if (this.filled === this.carry.byteLength) await this.writeCarry()
      }
    }
  }

  async readAt (pieces: Uint8Array[], position: number, length: number): Promise<number> {
    if (position >= this.flushed) return copyInto(pieces, this.carry.subarray(position - this.flushed, position - this.flushed + length))
    const kept = this.recent.find(r => position >= r.start && position < r.start + r.bytes.byteLength)
    if (kept !== undefined) return copyInto(pieces, kept.bytes.subarray(position - kept.start, position - kept.start + length))
    return await this.readFile(pieces, position, Math.min(length, this.flushed - position))
  }

  async finish (size: number): Promise<void> {
    if (this.filled === 0 || this.finished) return
    try {
      // A tail that is not whole blocks goes from an aligned copy, padded with zeros: cut them.
      if (await this.file.write(this.carry.subarray(0, this.filled), this.flushed)) await this.file.truncate(size)
    } catch (err) {
      throw translateWriteError(err, this.path)
    }
    // The carry still serves readers; nothing more is appended.
    this.finished = true
  }

  async close (): Promise<void> {
    if (!this.released) {
      this.released = true
      this.aligned.give(this.carry)
      for (const { bytes } of this.recent.splice(0)) this.aligned.give(bytes)
    }
    await this.file.close()
  }

  private async writeCarry (): Promise<void> {
    const full = this.carry
    try {
      await this.file.write(full, this.flushed)
    } catch (err) {
      throw translateWriteError(err, this.path)
    }
    this.recent.push({ start: this.flushed, bytes: full })
    if (this.recent.length > STAGING_RECENT_BUFFERS) this.aligned.give((this.recent.shift() as { bytes: Uint8Array }).bytes)
    this.flushed += full.byteLength
    this.carry = this.aligned.take()
    this.filled = 0
  }

  /** Bytes that are only in the file: whole blocks around them into a bounce, then copied out. */
  private async readFile (pieces: Uint8Array[], position: number, length: number): Promise<number> {
    const start = position - position % DIRECT_IO_ALIGN_BYTES
    const skip = position - start
    const want = Math.min(length, this.aligned.bufferBytes - skip)
    // `flushed` is whole blocks, so rounding up never reads past it.
    const blocks = Math.ceil((skip + want) / DIRECT_IO_ALIGN_BYTES) * DIRECT_IO_ALIGN_BYTES
    const bounce = this.aligned.take()
    try {
      const read = await this.file.read(bounce, blocks, start)
      if (read.byteLength <= skip) throw new Error(`the growing file ${this.path} is shorter than what was written to it`)
      return copyInto(pieces, read.subarray(skip, skip + want))
    } finally {
      this.aligned.give(bounce)
    }
  }
}

/** Copies `from` into `pieces` in order, as far as they hold; resolves how many bytes. */
function copyInto (pieces: Uint8Array[], from: Uint8Array): number {
  let copied = 0
  for (const piece of pieces) {
    if (copied >= from.byteLength) break
    const part = from.subarray(copied, copied + piece.byteLength)
    piece.set(part)
    copied += part.byteLength
  }
  return copied
}
