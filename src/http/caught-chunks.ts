import type { KeepBytes } from '../store/index.js'
import type { BodyWriter } from './body-writer.js'

/**
 * Chunks of an arriving object copied into a response's own buffers as they pass their hash
 * check (the store's 'chunk:verified'), so the response sends them from memory instead of
 * reading each back from the file once its group commit made it durable.
 *
 * Why: on the neighbour path the edge received a 512 MiB layer in 3.0 s while containerd had
 * only 268 MiB of it by then (bench-containerd with a per-chunk trace, 2026-12-06): the
 * response waited for each chunk's commit (fdatasync, then LevelDB; 43-104 ms after the write,
 * median) and then for its read-back, one at a time, through libuv's pool, queued behind the
 * store's writes and fdatasyncs (6-10 ms a read, 85% of the response's time).
 *
 * Only the next few chunks the response needs are kept, each in a buffer the body would read
 * into anyway, and only while one is free: memory stays the body's `count` buffers, and a
 * client slower than the swarm gets the chunks it fell behind on from the store, as before.
 * Faster in 18 of 24 in-run pairs (docs/architecture.md, "the response from the verified chunk"
 * and "the edge lane"): mostly the first chunk, which containerd often asks for before it is stored.
 */
export class CaughtChunks {
  /** Each kept chunk: a copy in a body buffer, or the verified memory itself, kept until `release`. */
  private readonly caught = new Map<number, { bytes: Buffer, buffer?: Buffer, release?: () => void }>()
  /** The chunk the response needs next: only it and the ones after it are kept. */
  private next: number
  /** Chunks held in the memory they arrived in (not given back yet, here or by the socket). */
  private keptCount = 0

  /**
   * `ahead`: how many chunks from the next needed one may be copied; less than the body's buffer
   * count, so a chunk that was not caught always has a buffer to be read into. `kept`: how many,
   * at any distance ahead, may be held in the memory they arrived in (when the writer lets us
   * keep it) until the socket has sent them: the writer reuses that memory only then, so a
   * response behind a fast source holds the source back (an object lane stops reading once its
   * chunk memory is all held) instead of reading each chunk it fell behind on back from the file.
   */
  constructor (private readonly body: BodyWriter, first: number, private readonly ahead: number, private readonly kept = 0) {
    this.next = first
  }

  /** The store's verified chunk: kept where it is (with `keep`) or copied, when the response needs it soon and there is room. */
  offer (index: number, bytes: Uint8Array, keep?: KeepBytes): boolean {
    if (index < this.next || this.caught.has(index) || bytes.byteLength > this.body.bufferBytes) return false
    if (keep !== undefined && this.keptCount < this.kept) {
      this.keptCount++
      const release = keep()
      this.caught.set(index, {
        bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        release: () => {
          this.keptCount--
          release()
        },
      })
      return true
    }
    if (index >= this.next + this.ahead) return false
    const buffer = this.body.tryBuffer()
    if (buffer === undefined) return false
    buffer.set(bytes)
    this.caught.set(index, { bytes: buffer.subarray(0, bytes.byteLength), buffer })
    return true
  }

  has (index: number): boolean {
    return this.caught.has(index)
  }

  /**
   * The response needs chunk `index` now (chunks are needed in order): its kept bytes if it was
   * caught, which the caller sends with their buffer or release. Earlier ones go back.
   */
  take (index: number): { bytes: Buffer, buffer?: Buffer, release?: () => void } | undefined {
    for (const [i, entry] of this.caught) {
      if (i >= index) continue
      this.caught.delete(i)
      this.giveBack(entry)
    }
    const entry = this.caught.get(index)
    this.next = entry === undefined ? index : index + 1
    if (entry === undefined) return undefined
    this.caught.delete(index)
    return entry
  }

  /** Every kept chunk goes back (the rest is sent from the file, or the response ended). */
  clear (): void {
    for (const entry of this.caught.values()) this.giveBack(entry)
    this.caught.clear()
  }

  private giveBack (entry: { buffer?: Buffer, release?: () => void }): void {
    if (entry.buffer !== undefined) this.body.giveBack(entry.buffer)
    entry.release?.()
  }
}
