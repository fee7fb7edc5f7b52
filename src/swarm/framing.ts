import { Uint8ArrayList } from 'uint8arraylist'
import { MessageTimeoutError, MessageTooLargeError, ProtocolViolationError, SwarmError } from './errors.js'
import { lends, type BorrowingStream, type ChunkStream } from './chunk-stream.js'
import { wakeOrTimeout, withinDeadline } from '../wait/index.js'

/**
 * Every message on a shoal stream is an unsigned varint byte length followed by that many
 * bytes of protobuf. The reader enforces a maximum per stream and a deadline per message, so
 * a peer can neither make us buffer without bound nor hold a half-sent message forever.
 */

/** Lengths above 2^28 are refused before the limit check; no shoal message is near that. */
const MAX_VARINT_BYTES = 4

export function encodeVarint (value: number): Uint8Array {
  const out: number[] = []
  let rest = value
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return Uint8Array.from(out)
}

/** `undefined` while more bytes are needed. */
export function decodeVarint (list: Uint8ArrayList): { value: number, bytes: number } | undefined {
  let value = 0
  for (let i = 0; i < Math.min(list.byteLength, MAX_VARINT_BYTES); i++) {
    const byte = list.get(i)
    value += (byte & 0x7f) * 2 ** (7 * i)
    if ((byte & 0x80) === 0) {
      if (i > 0 && byte === 0) throw new ProtocolViolationError('a length prefix is not minimally encoded')
      return { value, bytes: i + 1 }
    }
  }
  if (list.byteLength >= MAX_VARINT_BYTES) throw new ProtocolViolationError('a length prefix is longer than 4 bytes')
  return undefined
}

export interface FrameReaderInit {
  /** Frames larger than this reset the stream. */
  maxFrameBytes: number
  /** A frame that has started arriving must complete within this time. */
  messageTimeoutMs: number
  /** Called synchronously for each complete frame; a throw resets the stream with that error. */
  onFrame: (frame: Uint8Array) => void
  /** Called once when the remote has finished writing (not on reset). */
  onEnd?: () => void
  /**
   * Where frames of at least LARGE_FRAME_BYTES are assembled (a reusable buffer of at least
   * `bytes`); by default a fresh allocation. Chunk responses use a pool: a new 1 MiB buffer
   * per chunk was a tenth of a receiver's CPU in page faults and garbage collection. Taken
   * when the frame starts (after its head, if onFrameStart is given) and filled as its pieces
   * arrive, so each piece is garbage at once.
   */
  allocate?: (bytes: number) => Uint8Array
  /**
   * Called once per frame of at least LARGE_FRAME_BYTES, as soon as its first
   * FRAME_HEAD_BYTES (or the whole frame) have arrived, with those bytes: a chunk client
   * learns which chunk is on its way seconds before its last byte on a shared slow uplink.
   */
  onFrameStart?: (head: Uint8Array) => void
  /**
   * Called instead of `onFrame` for each frame of at least LARGE_FRAME_BYTES, with the
   * frame's pieces as they arrived (a list sharing their memory: no copy). For a consumer
   * that writes or hashes a frame piece by piece: joining a 1 MiB fleet-blob frame out of
   * its 64 KiB pieces into fresh memory was 2.1 s of a cold edge's CPU per 512 MiB (page
   * faults; docs/architecture.md "containerd through an edge"). Takes precedence over `allocate`.
   */
  onLargeFrame?: (frame: Uint8ArrayList) => void
}

/** The head of a large frame handed to `onFrameStart`: enough for a chunk response's object and index. */
export const FRAME_HEAD_BYTES = 64

/** Frames this large are assembled in `allocate`d memory. */
export const LARGE_FRAME_BYTES = 64 * 1024

/** Copies bytes [start, end) of a list into `target` (no intermediate concatenation). */
function copyOut (list: Uint8ArrayList, start: number, end: number, target: Uint8Array): Uint8Array {
  let offset = 0
  let skip = start
  for (const piece of list) {
    if (offset >= end - start) break
    if (skip >= piece.byteLength) {
      skip -= piece.byteLength
      continue
    }
    const part = piece.subarray(skip, Math.min(piece.byteLength, skip + (end - start - offset)))
    target.set(part, offset)
    offset += part.byteLength
    skip = 0
  }
  return target.subarray(0, end - start)
}

/**
 * Attaches to `stream` at once (FACTS.md: a listener must be attached synchronously in the
 * handler, or data buffers and the stream is reset) and delivers whole frames.
 */
export function readFrames (stream: ChunkStream, init: FrameReaderInit): void {
  const buffer = new Uint8ArrayList()
  let expected: { value: number, bytes: number } | undefined
  /** onFrameStart was called for the frame now arriving. */
  let started = false
  /**
   * The `allocate`d memory of the large frame now arriving and how much of it has come. Its
   * pieces are copied in as they arrive, not kept until the frame's last byte: on a slow link
   * a chunk takes seconds to arrive, and its pieces (TLS records, yamux data) outlived two
   * scavenges, were promoted and freed only at the next mark-compact, growing a receiving
   * edge's malloc heap (docs/architecture.md, "Where an edge's memory goes").
   */
  let assembly: { target: Uint8Array, filled: number } | undefined
  let timer: NodeJS.Timeout | undefined

  const stopTimer = (): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
  }
  const fail = (err: Error): void => {
    stopTimer()
    buffer.consume(buffer.byteLength)
    assembly = undefined
    stream.abort(err)
  }

  /**
   * Bytes the stream lends (a lane asker's cleartext in one reused buffer, chunk-stream.ts
   * LendingStream): frames below LARGE_FRAME_BYTES are copied out, and what is left of the
   * piece in the buffer after a pass is copied before the piece goes back. Large frames are
   * copied into their `allocate`d memory as they arrive in any case.
   */
  const lent = lends(stream) && init.onLargeFrame === undefined
  /**
   * Where a lending stream should read next: the rest of the large frame being assembled, once
   * every byte before it is in, so that its bytes arrive in place (a lane asker's TLS reads
   * there, lane-transport.ts). Never past the frame's end: the next frame's head cannot land in
   * this frame's memory, and memory handed on with `onFrame` is never given out again.
   */
  const place = (): Uint8Array | undefined => {
    if (assembly === undefined || expected === undefined || buffer.byteLength > 0 || stream.status !== 'open') return undefined
    return assembly.target.subarray(assembly.filled, expected.value)
  }
  /** Whether `data` is the next bytes of the frame being assembled, already read into place. */
  const inPlace = (data: Uint8Array | Uint8ArrayList): boolean => {
    if (assembly === undefined || expected === undefined || buffer.byteLength > 0 || !(data instanceof Uint8Array)) return false
    const { target, filled } = assembly
    return data.buffer === target.buffer && data.byteOffset === target.byteOffset + filled && filled + data.byteLength <= expected.value
  }
  const onMessage = (evt: { data: Uint8Array | Uint8ArrayList }): void => {
    if (stream.status !== 'open') return
    const placed = lent && inPlace(evt.data)
    // In place, the bytes only need counting; drain completes the frame.
    if (placed && assembly !== undefined) assembly.filled += evt.data.byteLength
    else buffer.append(evt.data)
    try {
      drain()
    } catch (err) {
      // A frame protobuf could not decode is the peer's fault like any other violation.
      fail(err instanceof SwarmError ? err : new ProtocolViolationError(`a malformed message (${err instanceof Error ? err.message : String(err)})`, { cause: err }))
      return
    }
    if (lent && !placed) keepLentTail(evt.data.byteLength)
    if (buffer.byteLength === 0 && assembly === undefined) {
      stopTimer()
    } else if (timer === undefined) {
      // The deadline runs from the first byte of a message, so a trickle cannot keep it alive.
      timer = setTimeout(() => { fail(new MessageTimeoutError('the rest of a message', init.messageTimeoutMs)) }, init.messageTimeoutMs)
      timer.unref()
    }
  }

  /** The last `lentBytes` appended were lent: whatever of them is still buffered becomes a copy of our own. */
  const keepLentTail = (lentBytes: number): void => {
    const left = Math.min(buffer.byteLength, lentBytes)
    if (left === 0) return
    const owned = buffer.sublist(0, buffer.byteLength - left)
    const copy = buffer.slice(buffer.byteLength - left)
    buffer.consume(buffer.byteLength)
    buffer.append(owned)
    buffer.append(copy)
  }

  const drain = (): void => {
    while (stream.status === 'open') {
      if (expected === undefined) {
        expected = decodeVarint(buffer)
        if (expected === undefined) return
        if (expected.value > init.maxFrameBytes) throw new MessageTooLargeError(expected.value, init.maxFrameBytes)
      }
      const end = expected.bytes + expected.value
      if (!started && init.onFrameStart !== undefined && expected.value >= LARGE_FRAME_BYTES) {
        const headEnd = expected.bytes + Math.min(FRAME_HEAD_BYTES, expected.value)
        if (buffer.byteLength < headEnd) return
        started = true
        init.onFrameStart(buffer.subarray(expected.bytes, headEnd))
        if (stream.status !== 'open') return
      }
      const large = expected.value >= LARGE_FRAME_BYTES
      if (large && init.onLargeFrame === undefined && init.allocate !== undefined) {
        if (assembly === undefined) {
          assembly = { target: init.allocate(expected.value), filled: 0 }
          buffer.consume(expected.bytes)
        }
        const take = Math.min(buffer.byteLength, expected.value - assembly.filled)
        copyOut(buffer, 0, take, assembly.target.subarray(assembly.filled))
        buffer.consume(take)
        assembly.filled += take
        if (assembly.filled < expected.value) return
        const frame = assembly.target.subarray(0, expected.value)
        assembly = undefined
        expected = undefined
        started = false
        stopTimer()
        init.onFrame(frame)
        continue
      }
      if (buffer.byteLength < end) return
      const frame = large && init.onLargeFrame !== undefined
        ? buffer.sublist(expected.bytes, end)
        : lent ? buffer.slice(expected.bytes, end) : buffer.subarray(expected.bytes, end)
      buffer.consume(end)
      expected = undefined
      started = false
      stopTimer()
      if (frame instanceof Uint8ArrayList) init.onLargeFrame?.(frame)
      else init.onFrame(frame)
    }
  }

  if (lent) stream.readLent((data) => { onMessage({ data }) }, init.allocate !== undefined ? place : undefined)
  else stream.addEventListener('message', onMessage)
  stream.addEventListener('remoteCloseWrite', () => {
    if (buffer.byteLength > 0 || assembly !== undefined) {
      fail(new ProtocolViolationError('the stream ended inside a message'))
      return
    }
    stopTimer()
    init.onEnd?.()
  }, { once: true })
  stream.addEventListener('close', () => {
    stopTimer()
    stream.removeEventListener('message', onMessage)
  }, { once: true })
}

/**
 * Sends one frame made of `parts` (concatenated without copying) and waits until the stream
 * has handed it to the muxer, so a slow reader slows the writer instead of growing our memory.
 * `timeoutMs` bounds that wait; its deadline is made only if there is a wait (a frame the
 * stream takes at once, as nearly every have-list update is, costs no timer, and no
 * TimeoutError built when the timer fires long after the send).
 */
export async function sendFrame (stream: ChunkStream, parts: Uint8Array | Uint8Array[], options: { signal?: AbortSignal, timeoutMs?: number } = {}): Promise<void> {
  const list = new Uint8ArrayList()
  const pieces = Array.isArray(parts) ? parts : [parts]
  let length = 0
  for (const part of pieces) length += part.byteLength
  list.append(encodeVarint(length))
  for (const part of pieces) list.append(part)
  if (stream.send(list)) return
  if (options.timeoutMs === undefined) await flushed(stream, options)
  else await withinDeadline(options.timeoutMs, options.signal, async within => { await flushed(stream, { signal: within }) })
}

/**
 * Sends one frame like `sendFrame`, handed to the muxer `pieceBytes` at a time, each piece once
 * the one before has left the stream's write buffer: each piece is then a yamux frame of its
 * own, which the reader credits back as it arrives (upload-pace.ts counts on that), and other
 * streams' messages (a ping, a have batch) can pass between pieces instead of behind the whole.
 */
export async function sendFrameInPieces (stream: ChunkStream, parts: Uint8Array[], pieceBytes: number, options: { signal?: AbortSignal } = {}): Promise<void> {
  const list = new Uint8ArrayList()
  let length = 0
  for (const part of parts) length += part.byteLength
  list.append(encodeVarint(length))
  for (const part of parts) list.append(part)
  for (let offset = 0; offset < list.byteLength; offset += pieceBytes) {
    options.signal?.throwIfAborted()
    if (!stream.send(list.sublist(offset, Math.min(list.byteLength, offset + pieceBytes)))) await flushed(stream, options)
  }
}

/**
 * Sends a frame already length-prefixed by the caller from memory the stream borrows
 * (chunk-stream.ts), `pieceBytes` at a time as `sendFrameInPieces` does; `written` runs once
 * the stream is done with the last piece (and so with all of them: a stream writes in order).
 * Stopped half-way, `written` never runs and the memory is left to the garbage collector.
 */
export async function sendBorrowedFrame (stream: ChunkStream & BorrowingStream, frame: Uint8Array, pieceBytes: number, written: () => void, options: { signal?: AbortSignal } = {}): Promise<void> {
  for (let offset = 0; offset < frame.byteLength; offset += pieceBytes) {
    options.signal?.throwIfAborted()
    const end = Math.min(frame.byteLength, offset + pieceBytes)
    if (!stream.sendBorrowed(frame.subarray(offset, end), end === frame.byteLength ? written : () => {})) await flushed(stream, options)
  }
}

/** Sends frames already length-prefixed by the caller, in one write. */
export async function sendFrames (stream: ChunkStream, framed: Uint8ArrayList, options: { signal?: AbortSignal } = {}): Promise<void> {
  if (!stream.send(framed)) await flushed(stream, options)
}

/**
 * Waits until nothing is queued in the stream's own write buffer. Not `onDrain` alone: libp2p
 * wakes every stream of a connection when the connection drains, and clears their
 * need-to-drain flag, so a stream whose reader never read was woken and written to again on
 * every drain of its busy connection (a gateway queued 2 GB in 40 s for one such peer).
 */
export async function flushed (stream: ChunkStream, options: { signal?: AbortSignal } = {}): Promise<void> {
  while (stream.writeBufferLength > 0) {
    options.signal?.throwIfAborted()
    if (stream.status !== 'open') throw new Error(`the stream was ${stream.status} before our message was sent`)
    const outcome = await wakeOrTimeout(wake => {
      stream.addEventListener('idle', wake)
      stream.addEventListener('drain', wake)
      stream.addEventListener('close', wake)
      return () => {
        stream.removeEventListener('idle', wake)
        stream.removeEventListener('drain', wake)
        stream.removeEventListener('close', wake)
      }
    }, { signal: options.signal })
    if (outcome === 'aborted') options.signal?.throwIfAborted()
  }
}

/**
 * Frames of a request/response stream, read one at a time with a deadline each. Frames the
 * caller has not asked for yet are held, up to `maxQueuedFrames`; more resets the stream.
 */
export class FrameQueue {
  private readonly frames: Uint8Array[] = []
  private waiter: { resolve: (frame: Uint8Array) => void, reject: (err: Error) => void } | undefined
  private failure: Error | undefined

  constructor (private readonly stream: ChunkStream, init: { maxFrameBytes: number, messageTimeoutMs: number, maxQueuedFrames: number }) {
    readFrames(stream, {
      maxFrameBytes: init.maxFrameBytes,
      messageTimeoutMs: init.messageTimeoutMs,
      onFrame: (frame) => {
        if (this.waiter !== undefined) {
          const waiter = this.waiter
          this.waiter = undefined
          waiter.resolve(frame)
          return
        }
        if (this.frames.length >= init.maxQueuedFrames) throw new ProtocolViolationError('a peer sent messages nobody asked for')
        this.frames.push(frame)
      },
      onEnd: () => { this.finish(new ProtocolViolationError('the stream ended before the expected message')) },
    })
    stream.addEventListener('close', (evt) => {
      this.finish(evt.error ?? new ProtocolViolationError('the stream closed before the expected message'))
    }, { once: true })
    // Reset before we listened (a holder that refused a lane offer at once: its reset came in the
    // turn that opened the stream): no 'close' will come, and `next` would wait for good.
    if (stream.status === 'aborted' || stream.status === 'reset') this.finish(new ProtocolViolationError(`the stream was ${stream.status} before the expected message`))
  }

  /** The next frame; on timeout or abort the stream is reset. */
  async next (options: { timeoutMs: number, signal?: AbortSignal }): Promise<Uint8Array> {
    const queued = this.frames.shift()
    if (queued !== undefined) return queued
    if (this.failure !== undefined) throw this.failure
    options.signal?.throwIfAborted()
    return await new Promise<Uint8Array>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
      }
      // Failed here too, not only by the 'close' that abort dispatches: a stream already ended
      // dispatches none, and the wait would outlive its deadline.
      const fail = (err: Error): void => {
        this.stream.abort(err)
        this.finish(err)
      }
      const onAbort = (): void => {
        const reason: unknown = options.signal?.reason
        fail(reason instanceof Error ? reason : new Error('aborted'))
      }
      const timer = setTimeout(() => {
        fail(new MessageTimeoutError('a response', options.timeoutMs))
      }, options.timeoutMs)
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.waiter = {
        resolve: (frame) => { cleanup(); resolve(frame) },
        reject: (err) => { cleanup(); reject(err) },
      }
    })
  }

  private finish (err: Error): void {
    this.failure ??= err
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.reject(this.failure)
  }
}
