import type { BorrowingStream, ChunkStream } from './chunk-stream.js'
import { dataFrameHead } from './fleet-blob-data.js'
import { encodeVarint, flushed } from './framing.js'
import { withinDeadline } from '../wait/index.js'

/** What a frame's memory holds ahead of the blob's bytes: its length prefix and DATA head (at most 4 + 7 bytes). */
const HEAD_ROOM_BYTES = 16
/** A DATA frame's most blob bytes (a blob reader's step, GROWING_READ_BYTES). */
const FRAME_DATA_BYTES = 1024 * 1024
/**
 * Frame buffers kept for reuse, all blob streams of the process together. A frame is handed to
 * the lane's TLS whole and the next one is read only once the lane's write buffer is empty, so
 * a stream holds one or two at a time; past this many idle ones, a released buffer is left to
 * the garbage collector.
 */
const IDLE_FRAME_BUFFERS = 8

const idle: Buffer[] = []

/** A buffer for one frame: a reused one when any is idle (1 MiB is above malloc's mmap threshold: a fresh one is 256 page faults). */
function take (): Buffer {
  return idle.pop() ?? Buffer.allocUnsafeSlow(HEAD_ROOM_BYTES + FRAME_DATA_BYTES)
}

function give (buffer: Buffer): void {
  if (idle.length < IDLE_FRAME_BUFFERS) idle.push(buffer)
}

/** A blob's bytes as the serving side reads them into memory of its own (GrowingFileReader.readInto). */
export type ReadInto = (into: Uint8Array, options: { position: number, stallMs: number, signal: AbortSignal }) => Promise<number>

/** One DATA frame, length prefix included, in a buffer of the pool; `send` hands it to the lane (once), and the buffer comes back when TLS is done with it. */
export interface PooledFrame {
  /** Blob bytes in the frame. */
  dataBytes: number
  /** The whole frame's bytes on the wire (prefix, head, data). */
  wireBytes: number
  send: (stream: ChunkStream & BorrowingStream, options: { signal: AbortSignal, timeoutMs: number }) => Promise<void>
  /** Gives the buffer back unsent (the stream ended first). */
  drop: () => void
}

/**
 * The next DATA frame of a blob at `position` for a data lane: the bytes read straight behind
 * their head in one reused buffer and sent as one write. On libp2p a step is read into fresh 64
 * KiB pieces (its muxer and cipher may keep them after the send); a lane's TLS says when it is
 * done with what it was given (`sendBorrowed`), and encrypts a single buffer in place where
 * several written together (a frame's pieces queued behind a busy socket) were first joined
 * into a fresh copy. Undefined at the blob's end.
 */
export async function readPooledFrame (readInto: ReadInto, position: number, options: { stallMs: number, signal: AbortSignal }): Promise<PooledFrame | undefined> {
  const buffer = take()
  let bytes: number
  try {
    bytes = await readInto(buffer.subarray(HEAD_ROOM_BYTES), { position, ...options })
  } catch (err) {
    give(buffer)
    throw err
  }
  if (bytes === 0) {
    give(buffer)
    return undefined
  }
  const head = dataFrameHead(bytes)
  const prefix = encodeVarint(head.byteLength + bytes)
  const start = HEAD_ROOM_BYTES - head.byteLength - prefix.byteLength
  buffer.set(prefix, start)
  buffer.set(head, start + prefix.byteLength)
  const frame = buffer.subarray(start, HEAD_ROOM_BYTES + bytes)
  let used = false
  return {
    dataBytes: bytes,
    wireBytes: frame.byteLength,
    send: async (stream, { signal, timeoutMs }) => {
      used = true
      // Not given back if the lane dies first: TLS may still hold it; the collector takes it then.
      if (!stream.sendBorrowed(frame, () => { give(buffer) })) await withinDeadline(timeoutMs, signal, async within => { await flushed(stream, { signal: within }) })
    },
    drop: () => { if (!used) give(buffer) },
  }
}
