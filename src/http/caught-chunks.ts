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
  private readonly caught = new Map<number, { buffer: Buffer, length: number }>()
  /** The chunk the response needs next: only it and the ones just after it are kept. */
  private next: number

  /**
   * `ahead`: how many chunks from the next needed one may be kept; less than the body's buffer
   * count, so a chunk that was not caught always has a buffer to be read into.
   */
  constructor (private readonly body: BodyWriter, first: number, private readonly ahead: number) {
    this.next = first
  }

  /** The store's verified chunk: copied when it is one the response needs soon and a buffer is free. */
  offer (index: number, bytes: Uint8Array): boolean {
    if (index < this.next || index >= this.next + this.ahead || this.caught.has(index)) return false
    if (bytes.byteLength > this.body.bufferBytes) return false
    const buffer = this.body.tryBuffer()
    if (buffer === undefined) return false
    buffer.set(bytes)
    this.caught.set(index, { buffer, length: bytes.byteLength })
    return true
  }

  has (index: number): boolean {
    return this.caught.has(index)
  }

  /**
   * The response needs chunk `index` now (chunks are needed in order): its copy if one was
   * caught, which the caller sends with its buffer. Copies of earlier chunks go back.
   */
  take (index: number): { bytes: Buffer, buffer: Buffer } | undefined {
    for (const [i, { buffer }] of this.caught) {
      if (i >= index) continue
      this.caught.delete(i)
      this.body.giveBack(buffer)
    }
    const entry = this.caught.get(index)
    this.next = entry === undefined ? index : index + 1
    if (entry === undefined) return undefined
    this.caught.delete(index)
    return { bytes: entry.buffer.subarray(0, entry.length), buffer: entry.buffer }
  }

  /** Every copy goes back to the body (the rest is sent from the file, or the response ended). */
  clear (): void {
    for (const { buffer } of this.caught.values()) this.body.giveBack(buffer)
    this.caught.clear()
  }
}
