import type { Connection, Stream } from '@libp2p/interface'
import { FIRST_MESSAGE_TIMEOUT_MS, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { BatchNotTakenError } from './errors.js'
import { FrameQueue, sendFrame } from './framing.js'
import { abortAfter, wakeOrTimeout } from '../wait/index.js'

/*
 * One batch per stream, one way: how the gossip protocols (ref and preheat records, and node
 * statuses to a neighbour that offers only /shoal/status/1.0.0) carry what they pass on. The sender opens a stream, writes one frame and closes;
 * the receiver reads that frame, decodes it and closes its side. Every step has a timeout, so
 * a stalled neighbour never holds a stream.
 */

/**
 * Reads and decodes the one batch an inbound stream carries, then closes; on any failure the
 * stream is aborted and the error thrown. Call it synchronously in the protocol handler: the
 * reader must be attached before the handler first awaits (FACTS.md).
 */
export async function receiveBatch<T> (stream: Stream, init: { maxBytes: number, decode: (frame: Uint8Array) => T }): Promise<T> {
  const frames = new FrameQueue(stream, { maxFrameBytes: init.maxBytes, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
  try {
    const batch = init.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS }))
    await stream.close()
    return batch
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/**
 * Opens a `protocol` stream on the connection, sends one encoded batch and closes; the stream is
 * aborted if a step fails. With `acknowledged`, it resolves only once the receiver closed its
 * side too, which `receiveBatch` does after it read and decoded the batch: a receiver that
 * reset the stream instead (its stream limit for the protocol full, a handler that failed) is
 * an error here. Without it, such a batch was lost unnoticed: `close` returns once our side is
 * closed, and returns quietly on a stream the receiver already reset.
 */
export async function sendBatch (connection: Connection, protocol: string, batch: Uint8Array, options: { signal?: AbortSignal, acknowledged?: boolean } = {}): Promise<void> {
  const stream = await connection.newStream(protocol, { signal: abortAfter(STREAM_OPEN_TIMEOUT_MS, options.signal) })
  try {
    const signal = abortAfter(MESSAGE_TIMEOUT_MS, options.signal)
    await sendFrame(stream, batch, { signal })
    await stream.close({ signal })
    if (options.acknowledged === true) await closedByReceiver(stream, signal)
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/** Waits until the receiver closed its side of a stream whose sending side we closed; throws when it ended any other way. */
async function closedByReceiver (stream: Stream, signal: AbortSignal): Promise<void> {
  if (stream.status === 'open' || stream.status === 'closing') {
    const outcome = await wakeOrTimeout(wake => {
      stream.addEventListener('close', wake)
      return () => { stream.removeEventListener('close', wake) }
    }, { signal })
    if (outcome === 'aborted') signal.throwIfAborted()
  }
  if (stream.status !== 'closed') throw new BatchNotTakenError(stream.status)
}
