import type { Connection } from '@libp2p/interface'
import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { ChunkReads, type ReadChunk } from './chunk-reads.js'
import { CHUNK_SEND_TIMEOUT_MS, FIRST_MESSAGE_TIMEOUT_MS, OBJECT_STREAM_READ_AHEAD } from './constants.js'
import { LaneClosedError, MessageTimeoutError, ProtocolViolationError, SlowReaderError } from './errors.js'
import type { LaneStream } from './lane-stream.js'
import type { LocalBundles } from './local-bundles.js'
import { bytesFrom, decodeObjectRequest, encodeObjectHead, OBJECT_REQUEST_BYTES, ObjectStreamStatus, type ObjectStreamRequest } from './object-stream-wire.js'
import type { RateLimiter } from './rate-limiter.js'
import type { Semaphore } from './semaphore.js'
import type { SwarmStore } from './swarm-options.js'
import { abortAfter, wakeOrThrow } from '../wait/index.js'

/** Read buffers kept between an object stream's reads (its read-ahead, and one being sent). */
const SPARE_READ_BUFFERS = OBJECT_STREAM_READ_AHEAD + 2

export interface ObjectStreamServerComponents {
  store: Pick<SwarmStore, 'objectState'> & { readChunk: ReadChunk }
  local: LocalBundles
  uploadSlots: Semaphore
  uploadLimiter?: RateLimiter
  /** The chunk server's books: what left for whom (its resend window and a gateway's seeding count a streamed chunk as a sent one). */
  recordSent: (key: string, peer: string, connectionId: string, object: string, index: number) => void
  /** Whether chunks of `object` left for a peer other than `asker` lately (a gateway's seeding window), by either protocol. */
  spreadingElsewhere: (object: string, asker: string) => boolean
  /** A peer that gives nothing back (chunk-protocol.ts isTaker): not sent whole objects. */
  isTaker: (peer: string) => boolean
}

export interface ObjectStreamServerInit {
  /** A gateway streams an object to one asker at a time, and not while its chunks are spreading among others (each chunk leaves it about once). */
  gateway: boolean
  onUploaded: (peer: string, bytes: number) => void
  onOffence: (peer: string, kind: 'violation', detail: string) => void
}

/**
 * The holder's side of an object lane (OBJECT_LANE_PROTOCOL, docs/architecture.md "A whole
 * object over one lane"): one request, then the object's bytes from the asked chunk to its end,
 * read ahead from the store and written to the lane as they are read, the lane's TCP window the
 * only pace. The asker checks each chunk against its bundle's table as it comes; this side sends
 * only an object it holds whole (only verified bytes are ever in the store).
 */
export class ObjectStreamServer {
  private readonly reads: ChunkReads
  /** Objects being streamed, and to how many askers (a gateway's count is one at most). */
  private readonly streaming = new Map<string, number>()

  constructor (private readonly components: ObjectStreamServerComponents, private readonly init: ObjectStreamServerInit) {
    this.reads = new ChunkReads(async (hash, index, options) => await components.store.readChunk(hash, index, options), SPARE_READ_BUFFERS)
  }

  /** Serves one object lane until it is sent, refused or closed; never throws. */
  async serve (stream: LaneStream, connection: Pick<Connection, 'remotePeer' | 'id'>, lifetime: AbortSignal): Promise<void> {
    const peer = connection.remotePeer.toString()
    const closed = new AbortController()
    const onClose = (): void => { closed.abort(new LaneClosedError('the object lane closed')) }
    stream.addEventListener('close', onClose, { once: true })
    const signal = AbortSignal.any([closed.signal, lifetime])
    let request: ObjectStreamRequest | undefined
    try {
      request = await readRequest(stream, abortAfter(FIRST_MESSAGE_TIMEOUT_MS, signal))
      const refusal = await this.refusal(request, peer)
      if (refusal !== undefined) {
        stream.send(encodeObjectHead({ status: refusal, bytes: 0 }))
        await stream.close()
        return
      }
      try {
        await this.send(stream, peer, connection.id, request, signal)
      } finally {
        const left = (this.streaming.get(request.object) ?? 1) - 1
        if (left > 0) this.streaming.set(request.object, left)
        else this.streaming.delete(request.object)
      }
      await stream.close()
    } catch (err) {
      if (err instanceof ProtocolViolationError) this.init.onOffence(peer, 'violation', `object lane: ${err.message}`)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      stream.removeEventListener('close', onClose)
    }
  }

  /** Why this request is not served (a status for the head), or undefined to serve it: then it counts in `streaming` from here, in the turn that judged it. */
  private async refusal ({ object, firstIndex }: ObjectStreamRequest, peer: string): Promise<ObjectStreamStatus | undefined> {
    const local = this.components.local.object(object)
    if (local === undefined || bytesFrom(local.size, firstIndex) === 0) return ObjectStreamStatus.NOT_HELD
    if ((await this.components.store.objectState(object)).state !== 'complete') return ObjectStreamStatus.NOT_HELD
    if (this.components.isTaker(peer)) return ObjectStreamStatus.BUSY
    if (this.init.gateway) {
      if ((this.streaming.get(object) ?? 0) > 0 || this.components.spreadingElsewhere(object, peer)) return ObjectStreamStatus.BUSY
    }
    this.streaming.set(object, (this.streaming.get(object) ?? 0) + 1)
    return undefined
  }

  private async send (stream: LaneStream, peer: string, connectionId: string, { object, firstIndex }: ObjectStreamRequest, signal: AbortSignal): Promise<void> {
    const size = this.components.local.object(object)?.size ?? 0
    const chunks = Math.ceil(size / CHUNK_SIZE_BYTES)
    const { uploadSlots, uploadLimiter } = this.components
    // Reads started and not yet sent, oldest first: each holds an upload slot until its send.
    const ahead: Array<Promise<Awaited<ReturnType<ChunkReads['framed']>>>> = []
    const readNext = (index: number): void => {
      const read = uploadSlots.acquire({ signal }).then(async () => await this.reads.framed(object, index, signal).catch((err: unknown) => {
        uploadSlots.release()
        throw err
      }))
      // Awaited in order below; one the stream's end leaves unawaited must not go unhandled.
      read.catch(() => {})
      ahead.push(read)
    }
    try {
      stream.send(encodeObjectHead({ status: ObjectStreamStatus.OK, bytes: bytesFrom(size, firstIndex) }))
      let next = firstIndex
      for (let index = firstIndex; index < chunks; index++) {
        while (next < chunks && ahead.length <= OBJECT_STREAM_READ_AHEAD) readNext(next++)
        const framed = await ahead.shift() as Awaited<ReturnType<ChunkReads['framed']>>
        try {
          await uploadLimiter?.take(framed.bytes.byteLength, { signal, key: peer })
          this.components.recordSent(`${object}:${index}`, peer, connectionId, object, index)
          // The buffer is the lane's until its write completes, which gives it back.
          const room = stream.sendBorrowed(framed.bytes, framed.release)
          this.init.onUploaded(peer, framed.bytes.byteLength)
          if (!room) await drained(stream, signal)
        } finally {
          uploadSlots.release()
        }
      }
    } finally {
      // Reads started for chunks never sent hold slots until they settle.
      for (const read of ahead) read.then((framed) => { framed.release(); uploadSlots.release() }, () => {})
    }
  }
}

/** The asker's request: exactly OBJECT_REQUEST_BYTES, in one or more of its records. */
async function readRequest (stream: LaneStream, signal: AbortSignal): Promise<ObjectStreamRequest> {
  return await new Promise<ObjectStreamRequest>((resolve, reject) => {
    const bytes = new Uint8Array(OBJECT_REQUEST_BYTES)
    let filled = 0
    const done = (): void => {
      stream.removeEventListener('message', onMessage)
      signal.removeEventListener('abort', onAbort)
    }
    const onMessage = (evt: { data: Uint8Array | { subarray: () => Uint8Array } }): void => {
      const piece = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      if (filled + piece.byteLength > OBJECT_REQUEST_BYTES) {
        done()
        reject(new ProtocolViolationError(`an object stream request longer than ${OBJECT_REQUEST_BYTES} bytes`))
        return
      }
      bytes.set(piece, filled)
      filled += piece.byteLength
      if (filled < OBJECT_REQUEST_BYTES) return
      done()
      try {
        resolve(decodeObjectRequest(bytes))
      } catch (err) {
        reject(err)
      }
    }
    const onAbort = (): void => {
      done()
      const timedOut = (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError'
      reject(timedOut || !(signal.reason instanceof Error) ? new MessageTimeoutError('an object stream request', FIRST_MESSAGE_TIMEOUT_MS) : signal.reason)
    }
    stream.addEventListener('message', onMessage)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * Resolves once the lane has handed what it holds to the kernel; rejects when `signal` aborts
 * (the lane closed), or after CHUNK_SEND_TIMEOUT_MS (SlowReaderError): an asker that stops
 * reading frees the upload slots its stream holds. Not charged: an honest asker stops while its
 * own client does not read.
 */
async function drained (stream: LaneStream, signal: AbortSignal): Promise<void> {
  await wakeOrThrow((wake) => {
    stream.addEventListener('drain', wake)
    return () => { stream.removeEventListener('drain', wake) }
  }, { timeoutMs: CHUNK_SEND_TIMEOUT_MS, signal, timeoutError: () => new SlowReaderError(CHUNK_SEND_TIMEOUT_MS) })
}
