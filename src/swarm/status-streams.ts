import type { Connection, Stream } from '@libp2p/interface'
import { sendBatch } from './batch-stream.js'
import { MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { MessageTooLargeError, ProtocolViolationError } from './errors.js'
import { readFrames, sendFrame } from './framing.js'
import { MAX_QUEUED_STATUS_BATCHES, MAX_STATUS_BATCH_BYTES, STATUS_PROTOCOL, STATUS_STREAM_PROTOCOL } from './status-constants.js'
import { abortAfter } from '../wait/index.js'

/**
 * How status batches travel between neighbours. /shoal/status/2.0.0: one long-lived stream each
 * way per connection, opened by the sender at its first batch and kept while the connection
 * lasts; a batch is one frame on it. /shoal/status/1.0.0 (what a neighbour of an older version
 * offers): one stream per batch. On the 16-host bed each batch's own stream was most of an idle
 * daemon's cost: a protocol negotiation, a peer-store write and a handler at both ends, ~1.9
 * stream ends a second per daemon (docs/architecture.md, "The fleet bed").
 *
 * The receiver reads both the same way: frames until the sender closes, each within
 * MESSAGE_TIMEOUT_MS once it has started, none over MAX_STATUS_BATCH_BYTES, applied one after
 * another; past MAX_QUEUED_STATUS_BATCHES waiting it stops reading (the muxer's read buffer bounds
 * the rest). What a batch holds is rate-limited per neighbour by the gossip (its allowance).
 */
export class StatusStreams {
  /** Connection ID → our open stream to it (2.0.0). */
  private readonly outbound = new Map<string, Stream>()
  /** Connection ID → the last batch queued to it: batches to one neighbour leave in order. */
  private readonly tails = new Map<string, Promise<void>>()
  /** Connection ID → the neighbour's 2.0.0 stream to us; a newer one replaces it. */
  private readonly inbound = new Map<string, Stream>()
  /** Connections to neighbours that offer only 1.0.0: one stream per batch. */
  private readonly oneShot = new WeakSet<Connection>()

  /** Sends one encoded batch after those queued before it to the same connection. */
  async send (connection: Connection, batch: Uint8Array, options: { signal: AbortSignal }): Promise<void> {
    const key = connection.id
    const previous = this.tails.get(key) ?? Promise.resolve()
    const sent = previous.catch(() => {}).then(async () => { await this.sendNow(connection, batch, options) })
    this.tails.set(key, sent)
    try {
      await sent
    } finally {
      if (this.tails.get(key) === sent) this.tails.delete(key)
    }
  }

  /**
   * Reads a neighbour's stream (either version): `apply` gets each decoded batch in order;
   * `onInvalid` hears what the sender got wrong (a reset or a timeout is not charged).
   */
  receive<T> (stream: Stream, connection: Connection, handlers: {
    decode: (frame: Uint8Array) => T
    apply: (batch: T) => Promise<void>
    onInvalid: (err: Error) => void
    onFailed: (err: Error) => void
  }): void {
    const key = connection.id
    if (stream.protocol === STATUS_STREAM_PROTOCOL) {
      // The sender opens a new stream only when it lost the old one.
      this.inbound.get(key)?.abort(new Error('replaced by a newer status stream'))
      this.inbound.set(key, stream)
    }
    let queued = 0
    let applied = Promise.resolve()
    readFrames(stream, {
      maxFrameBytes: MAX_STATUS_BATCH_BYTES,
      messageTimeoutMs: MESSAGE_TIMEOUT_MS,
      onFrame: (frame) => {
        const batch = handlers.decode(frame)
        if (++queued >= MAX_QUEUED_STATUS_BATCHES && stream.readStatus === 'readable') stream.pause()
        applied = applied.then(async () => { await handlers.apply(batch) }).catch((err: unknown) => {
          handlers.onFailed(err instanceof Error ? err : new Error(String(err)))
        }).finally(() => {
          if (--queued < MAX_QUEUED_STATUS_BATCHES && stream.readStatus === 'paused') stream.resume()
        })
      },
      onEnd: () => { void stream.close().catch(() => { stream.abort(new Error('status stream close failed')) }) },
    })
    stream.addEventListener('close', (evt) => {
      if (this.inbound.get(key) === stream) this.inbound.delete(key)
      if (evt.error instanceof ProtocolViolationError || evt.error instanceof MessageTooLargeError) handlers.onInvalid(evt.error)
      else if (evt.error !== undefined) handlers.onFailed(evt.error)
    }, { once: true })
  }

  /** Closes every stream of ours; the neighbours' streams end with their connections. */
  stop (): void {
    for (const stream of [...this.outbound.values(), ...this.inbound.values()]) stream.abort(new Error('the status gossip is stopping'))
    this.outbound.clear()
    this.inbound.clear()
    this.tails.clear()
  }

  private async sendNow (connection: Connection, batch: Uint8Array, options: { signal: AbortSignal }): Promise<void> {
    if (this.oneShot.has(connection)) {
      await sendBatch(connection, STATUS_PROTOCOL, batch, options)
      return
    }
    const stream = this.outbound.get(connection.id) ?? await this.open(connection, options)
    const signal = abortAfter(MESSAGE_TIMEOUT_MS, options.signal)
    try {
      await sendFrame(stream, batch, { signal })
      // An older neighbour's stream carries one batch.
      if (stream.protocol === STATUS_PROTOCOL) await stream.close({ signal })
    } catch (err) {
      // The next batch opens a new stream; the receiver drops this one for it.
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  /** A stream to the connection: our long-lived one, or for a neighbour that speaks only 1.0.0 one for this batch. */
  private async open (connection: Connection, options: { signal: AbortSignal }): Promise<Stream> {
    const stream = await connection.newStream([STATUS_STREAM_PROTOCOL, STATUS_PROTOCOL], {
      signal: abortAfter(STREAM_OPEN_TIMEOUT_MS, options.signal),
    })
    if (stream.protocol === STATUS_PROTOCOL) {
      this.oneShot.add(connection)
      return stream
    }
    const key = connection.id
    this.outbound.set(key, stream)
    stream.addEventListener('close', () => { if (this.outbound.get(key) === stream) this.outbound.delete(key) }, { once: true })
    // One way: nothing may come back on it (unread, it would pile up in the stream's buffer).
    stream.addEventListener('message', () => { stream.abort(new ProtocolViolationError('data on the receiving end of a one-way status stream')) })
    return stream
  }
}
