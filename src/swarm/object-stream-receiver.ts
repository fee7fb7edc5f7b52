import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { LaneClosedError, ProtocolViolationError, SwarmError } from './errors.js'
import type { LaneStream } from './lane-stream.js'
import { bytesFrom, decodeObjectHead, encodeObjectRequest, OBJECT_HEAD_BYTES, ObjectStreamStatus } from './object-stream-wire.js'

/** An object lane's holder completed no chunk within the time allowed: the rest goes chunk by chunk. */
export class ObjectStreamStalledError extends SwarmError {
  constructor (readonly index: number, timeoutMs: number) {
    super('SWARM_OBJECT_STREAM_STALLED', `the holder sent no whole chunk within ${timeoutMs} ms (waiting for chunk ${index}); the rest of the object is asked for chunk by chunk`)
    this.name = 'ObjectStreamStalledError'
  }
}

export interface ObjectReceipt {
  object: string
  size: number
  /** The first chunk asked for: the stream brings it and every one after it. */
  firstIndex: number
  /** Memory for one chunk, its start page-aligned (the store writes it O_DIRECT as it is). */
  take: () => Uint8Array
  /** Gives back memory `take` lent that never became a whole chunk (the stream ended inside it). */
  giveBack: (memory: Uint8Array) => void
  /** A whole chunk came: check and store it. Resolves once its memory is free again; a rejection ends the stream. */
  chunk: (index: number, bytes: Uint8Array) => Promise<void>
  /** Chunks waiting on `chunk` at most: past it the lane stops reading, and the holder waits on TCP. */
  maxBufferedChunks: number
  /** A read lane that completes no chunk for this long fails (ObjectStreamStalledError). */
  chunkTimeoutMs: number
  signal: AbortSignal
}

/** 'complete': every byte came and every chunk was handed to `chunk` and settled. 'not-held' and 'busy': the holder's refusal. */
export type ObjectStreamOutcome = 'complete' | 'not-held' | 'busy'

/**
 * The asker's side of an object lane: sends the request, then reads the object's bytes straight
 * into chunk memory (lane-transport.ts ReadPlace: no copy on our side), hands each whole chunk to
 * `chunk` and stops reading while `maxBufferedChunks` wait there. Rejects on anything short of
 * the whole object: the lane closed early, more bytes than asked, a stall, a chunk that failed.
 */
export async function receiveObject (stream: LaneStream, receipt: ObjectReceipt): Promise<ObjectStreamOutcome> {
  const { object, size, firstIndex, maxBufferedChunks, chunkTimeoutMs } = receipt
  const chunks = Math.ceil(size / CHUNK_SIZE_BYTES)
  const lengthOf = (index: number): number => Math.min(CHUNK_SIZE_BYTES, size - index * CHUNK_SIZE_BYTES)
  const head = new Uint8Array(OBJECT_HEAD_BYTES)
  let headFilled = 0
  let current: Uint8Array | undefined
  let filled = 0
  let index = firstIndex
  /** Chunks handed to `chunk` whose memory is not free yet, and those not settled at all. */
  let buffered = 0
  let unsettled = 0
  let paused = false
  let outcome: ObjectStreamOutcome | undefined
  let stallTimer: NodeJS.Timeout | undefined

  let settle!: { resolve: (outcome: ObjectStreamOutcome) => void, reject: (err: Error) => void }
  const result = new Promise<ObjectStreamOutcome>((resolve, reject) => { settle = { resolve, reject } })
  let over = false
  const finish = (err: Error | undefined): void => {
    if (over) return
    over = true
    clearTimeout(stallTimer)
    const leftover = current
    current = undefined
    stream.removeEventListener('close', onClose)
    receipt.signal.removeEventListener('abort', onAbort)
    if (err === undefined) {
      settle.resolve(outcome ?? 'complete')
      void stream.close().catch(() => {})
    } else {
      settle.reject(err)
      stream.abort(err)
    }
    // After the abort: node reads into it no more.
    if (leftover !== undefined) receipt.giveBack(leftover)
  }
  const fail = (err: Error): void => { finish(err) }
  /** All bytes in and every chunk settled: done. */
  const maybeDone = (): void => {
    if (index === chunks && current === undefined && unsettled === 0) finish(undefined)
  }
  const armStall = (): void => {
    clearTimeout(stallTimer)
    if (paused || over || index >= chunks) return
    stallTimer = setTimeout(() => { fail(new ObjectStreamStalledError(index, chunkTimeoutMs)) }, chunkTimeoutMs)
    stallTimer.unref()
  }
  /** Reading stops while the chunks given out fill what we may hold (one more may still come: node's decrypted bytes). */
  const flow = (): void => {
    const stop = buffered >= maxBufferedChunks - 1
    if (stop && !paused) stream.pauseReading()
    else if (!stop && paused) stream.resumeReading()
    paused = stop
    armStall()
  }
  const handOver = (bytes: Uint8Array, at: number): void => {
    buffered++
    unsettled++
    let freed = false
    const free = (): void => {
      if (freed) return
      freed = true
      buffered--
      flow()
    }
    receipt.chunk(at, bytes).then(() => {
      free()
      unsettled--
      maybeDone()
    }, (err: unknown) => {
      free()
      unsettled--
      fail(err instanceof Error ? err : new Error(String(err)))
    })
  }
  const onHead = (): void => {
    const { status, bytes } = decodeObjectHead(head)
    if (status === ObjectStreamStatus.NOT_HELD) outcome = 'not-held'
    else if (status === ObjectStreamStatus.BUSY) outcome = 'busy'
    else if (bytes !== bytesFrom(size, firstIndex)) throw new ProtocolViolationError(`an object stream of ${bytes} bytes for ${bytesFrom(size, firstIndex)} asked`)
    if (outcome !== undefined) finish(undefined)
  }
  /** Bytes read (in place where `place` put them, or lent elsewhere and copied), in order. */
  const reader = (bytes: Uint8Array): void => {
    if (over) return
    try {
      let at = 0
      while (at < bytes.byteLength) {
        if (headFilled < OBJECT_HEAD_BYTES) {
          const n = Math.min(OBJECT_HEAD_BYTES - headFilled, bytes.byteLength - at)
          copyUnlessInPlace(bytes.subarray(at, at + n), head, headFilled)
          headFilled += n
          at += n
          if (headFilled === OBJECT_HEAD_BYTES) onHead()
          if (over) return
          continue
        }
        if (index >= chunks) throw new ProtocolViolationError(`the holder sent more than the ${bytesFrom(size, firstIndex)} bytes of ${object} it said`)
        current ??= receipt.take()
        const length = lengthOf(index)
        const n = Math.min(length - filled, bytes.byteLength - at)
        copyUnlessInPlace(bytes.subarray(at, at + n), current, filled)
        filled += n
        at += n
        if (filled < length) continue
        const whole = current.subarray(0, length)
        current = undefined
        filled = 0
        handOver(whole, index++)
        flow()
      }
      maybeDone()
    } catch (err) {
      fail(err instanceof Error ? err : new Error(String(err)))
    }
  }
  /** Where node reads next: the head, then the rest of the chunk being filled; past the end, its own buffer (more is a violation). */
  const place = (): Uint8Array | undefined => {
    if (headFilled < OBJECT_HEAD_BYTES) return head.subarray(headFilled)
    if (index >= chunks || over) return undefined
    current ??= receipt.take()
    return current.subarray(filled, lengthOf(index))
  }
  const onClose = (evt: Event): void => {
    // Every byte is in: the holder may close first; what is left is the store's.
    if (index === chunks && current === undefined) return
    const error = (evt as Event & { error?: Error }).error
    fail(new LaneClosedError(`the object lane closed after ${index - firstIndex} of ${chunks - firstIndex} chunks${error === undefined ? '' : `: ${error.message}`}`))
  }
  const onAbort = (): void => { fail(receipt.signal.reason instanceof Error ? receipt.signal.reason : new LaneClosedError('the object stream was stopped')) }

  if (receipt.signal.aborted) {
    onAbort()
    return await result
  }
  stream.addEventListener('close', onClose)
  receipt.signal.addEventListener('abort', onAbort, { once: true })
  stream.stopCrediting()
  stream.readLent(reader, place)
  try {
    stream.send(encodeObjectRequest({ object, firstIndex }))
    armStall()
  } catch (err) {
    fail(err instanceof Error ? err : new Error(String(err)))
  }
  return await result
}

/** Puts `bytes` at `offset` of `into`, unless node read them there already. */
function copyUnlessInPlace (bytes: Uint8Array, into: Uint8Array, offset: number): void {
  if (bytes.buffer === into.buffer && bytes.byteOffset === into.byteOffset + offset) return
  into.set(bytes, offset)
}
