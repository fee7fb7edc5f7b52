import type { ServerResponse } from 'node:http'
import { wakeOrTimeout, Wakers } from '../wait/index.js'

/** Where a BodyWriter may borrow its buffers (the store's aligned ones: Store.lendReadBuffer). */
export interface BufferLender {
  lendReadBuffer: () => Buffer | undefined
  returnReadBuffer: (buffer: Buffer) => void
}

/**
 * A response body sent from a few buffers that are filled again once the socket has taken
 * them. Each read of a layer used to get a fresh 1 MiB buffer (a read stream's, or a chunk
 * read's) that the garbage collector then had to find: 512 of them for a 512 MiB layer, on
 * the same thread that receives the swarm's chunks. Here the memory is `count` buffers per
 * response whatever the blob's size, and the socket sets the pace: a buffer comes back only
 * when its write completed (libuv wrote it from the buffer itself, no copy), so a slow client
 * makes `buffer()` wait instead of letting bytes pile up.
 */
export class BodyWriter {
  private readonly free: Buffer[] = []
  private allocated = 0
  private writing = 0
  private failure: Error | undefined
  private readonly wakers = new Wakers()
  /** Buffers borrowed from `lender`, and whether they go back as their writes complete (released). */
  private readonly borrowed = new Set<Buffer>()
  private released = false
  /** ms the body spent with none of its bytes on their way to the socket, from its first write on (see idleMs). */
  private idleTotalMs = 0
  private idleSince: number | undefined

  /**
   * With a `lender` (whose buffers must be `bufferBytes` long), buffers are borrowed from it while
   * it has some, and go back by `release`.
   */
  constructor (private readonly res: ServerResponse, private readonly count: number, readonly bufferBytes: number, private readonly lender?: BufferLender) {}

  /** A buffer to fill; waits while every buffer is on its way to the socket. Rejects when `signal` aborts (the client left) or a write failed. */
  async buffer (signal: AbortSignal): Promise<Buffer> {
    for (;;) {
      this.throwIfFailed(signal)
      const free = this.tryBuffer()
      if (free !== undefined) return free
      await this.changed(signal)
    }
  }

  /** A buffer to fill if one is free now, else undefined (never waits; undefined too once a write failed or the body was released). */
  tryBuffer (): Buffer | undefined {
    if (this.failure !== undefined || this.released) return undefined
    const free = this.free.pop()
    if (free !== undefined) return free
    if (this.allocated >= this.count) return undefined
    this.allocated++
    const lent = this.lender?.lendReadBuffer()
    if (lent !== undefined) {
      this.borrowed.add(lent)
      return lent
    }
    // Slow: out of Node's shared pool, as these live as long as the response.
    return Buffer.allocUnsafeSlow(this.bufferBytes)
  }

  /**
   * Sends `bytes`: a view of `buffer` (one from `buffer()`, reused once the socket has them),
   * or, with no `buffer`, memory of the caller's own, which `written` gives back once the socket
   * no longer reads it (the write completed or failed).
   */
  send (bytes: Buffer, buffer?: Buffer, written?: () => void): void {
    if (bytes.byteLength === 0) {
      if (buffer !== undefined) this.giveBack(buffer)
      written?.()
      return
    }
    this.writing++
    if (this.idleSince !== undefined) {
      this.idleTotalMs += performance.now() - this.idleSince
      this.idleSince = undefined
    }
    this.res.write(bytes, (err) => {
      this.writing--
      if (this.writing === 0) this.idleSince = performance.now()
      if (err !== null && err !== undefined) this.failure ??= err
      if (buffer !== undefined) this.done(buffer, err === null || err === undefined)
      written?.()
      this.notify()
    })
    // Node's http corks the socket on a response's first write until the next tick; a failure
    // found in the microtasks before it (the source broke right after) destroyed the socket
    // with those bytes still corked, and the client saw no status line at all instead of a
    // cut body. Our writes are large: nothing is gained by waiting to coalesce them.
    const socket = this.res.socket
    if (socket !== null && socket.writableCorked > 0) socket.uncork()
  }

  /**
   * Fills a buffer with `read` (which resolves how many bytes it put at the buffer's start) and
   * sends them; resolves that count, 0 when `read` brought nothing. The buffer goes back when
   * nothing was read or `read` threw.
   */
  async sendRead (read: (buffer: Buffer) => Promise<number>, signal: AbortSignal): Promise<number> {
    const buffer = await this.buffer(signal)
    let bytesRead: number
    try {
      bytesRead = await read(buffer)
    } catch (err) {
      this.giveBack(buffer)
      throw err
    }
    this.send(buffer.subarray(0, bytesRead), buffer)
    return bytesRead
  }

  /** A buffer from `buffer()` that was not sent (nothing was read into it). */
  giveBack (buffer: Buffer): void {
    this.done(buffer, true)
    this.notify()
  }

  /**
   * The response is over (sent, or failed): borrowed buffers go back to their lender, those
   * still under a socket write once it completes (libuv reads them until then).
   */
  release (): void {
    this.released = true
    for (const buffer of this.free.splice(0)) this.done(buffer, true)
  }

  /** Nothing reads `buffer` any more: reused when `reusable` (a failed write's is not), or back to its lender. */
  private done (buffer: Buffer, reusable: boolean): void {
    if (this.borrowed.has(buffer) && (this.released || !reusable)) {
      this.borrowed.delete(buffer)
      this.lender?.returnReadBuffer(buffer)
    } else if (reusable && !this.released) {
      this.free.push(buffer)
    }
  }

  /**
   * Ends the response once every write went through (so the caller may close what it read
   * from). Not waiting for 'finish': every byte is with the socket already, and a client gone
   * now would leave that wait hanging.
   */
  async end (signal: AbortSignal): Promise<void> {
    while (this.writing > 0) {
      this.throwIfFailed(signal)
      await this.changed(signal)
    }
    this.throwIfFailed(signal)
    this.res.end()
  }

  /**
   * How long, since its first write, the body had nothing queued at the socket (every write
   * completed, the next not yet sent): time a client that could take more waited on us.
   */
  get idleMs (): number {
    return this.idleTotalMs + (this.idleSince === undefined ? 0 : performance.now() - this.idleSince)
  }

  private throwIfFailed (signal: AbortSignal): void {
    signal.throwIfAborted()
    if (this.failure !== undefined) throw this.failure
  }

  private notify (): void {
    this.wakers.wakeAll()
  }

  /** Until the next write completion or give-back; rejects when `signal` aborts. No timer: a stalled client is the socket's idle timeout's to cut, which aborts the signal. */
  private async changed (signal: AbortSignal): Promise<void> {
    await wakeOrTimeout(this.wakers.subscribe, { signal })
    signal.throwIfAborted()
  }
}
