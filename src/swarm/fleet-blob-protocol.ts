import { FIRST_MESSAGE_TIMEOUT_MS, MAX_CHUNK_RESPONSE_BYTES, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { LaneClosedError, MessageTimeoutError, ProtocolViolationError, SwarmError } from './errors.js'
import { FLEET_BLOB_RELAY_READY_WAIT_MS, FLEET_BLOB_RELAY_REPORT_MS, type FleetBlobProgress, type FleetBlobRelays } from './fleet-blob-relays.js'
import { FLEET_PULL_THROUGH_TIMEOUT_MS } from './fleet-protocol.js'
import { dataFrameHead, dataFramePayload } from './fleet-blob-data.js'
import { readPooledFrame, type PooledFrame, type ReadInto } from './fleet-blob-frames.js'
import { borrows, type BorrowingStream, type ChunkStream } from './chunk-stream.js'
import { encodeVarint, flushed, FrameQueue, readFrames, sendFrame } from './framing.js'
import { FleetBlobAck, FleetBlobFrame, FleetBlobRequest } from './pb/swarm-fleet-blob.pb.js'
import type { RateLimiter } from './rate-limiter.js'
import type { ReaderBudget, StreamGauge } from './reader-budget.js'
import type { KeyedSemaphores, Semaphore } from './semaphore.js'
import type { Connection } from '@libp2p/interface'
import { Uint8ArrayList } from 'uint8arraylist'
import { abortAfter, wakeOrThrow, wakeOrTimeout, Wakers, withinDeadline } from '../wait/index.js'

/**
 * /shoal/fleet-blob/1.0.0: an edge asks the fleet's pull-through node (a trusted peer with an
 * upstream) for a blob and receives its bytes while that node is still downloading it from the
 * registry (issue 8, part a). One request; then a HEADER with the size, DATA frames in order,
 * and END once the answerer's download matched the blob's sha256 (or FAILED: everything sent
 * is void). The pull-through node may instead answer RELAY: ask that edge, which is receiving
 * the blob already and serves it on from what it has (fleet-blob-asker.ts follows it). The
 * asker checks the sha256 itself before it keeps or serves anything as the blob; see
 * docs/architecture.md "Pull-through streams into the fleet".
 */
export const FLEET_BLOB_PROTOCOL = '/shoal/fleet-blob/1.0.0'
/** A DATA frame holds at most 1 MiB of the blob (the answerer's read size) plus the frame's fields. */
export const MAX_FLEET_BLOB_FRAME_BYTES = 1024 * 1024 + 4 * 1024
const MAX_REQUEST_BYTES = 4 * 1024
const MAX_NAME_CHARS = 512
/** Addresses of a relay a RELAY frame may name (more are ignored), and the longest one. */
const MAX_RELAY_ADDRS = 8
const MAX_ADDR_CHARS = 512
/** Blobs streamed to one peer at once (containerd fetches a few layers in parallel). */
export const MAX_FLEET_BLOB_STREAMS_PER_CONNECTION = 16
/**
 * DATA frames of one peer's blob streams (all its connections) waiting for or holding an
 * upload slot at once. A frame is handed to the muxer, not to the wire, so two in hand keep a
 * peer's streams busy; a peer with sixteen streams open no longer takes sixteen turns of the
 * node's upload slots and cap for every one an edge with one stream takes.
 */
export const FLEET_BLOB_SENDS_PER_PEER = 2
/**
 * Nothing new on a blob stream for this long fails it. Longer than the answerer's own wait on
 * its upstream (UPSTREAM_BODY_IDLE_TIMEOUT_MS, 60 s), so a silent registry reaches the edge as
 * the answerer's clear FAILED, not as our timeout.
 */
export const FLEET_BLOB_STALL_MS = 90 * 1000
/**
 * Blob data the answerer sends ahead of the asker's acknowledgements. Flow control by the
 * protocol, not by the transport: an edge's disk is often slower than its link (a 512 MiB layer
 * over loopback queued 64 MiB at a loaded edge and failed), and pause()/resume() of a libp2p
 * stream failed under load ("Cannot resume a stream that is closing/closed").
 */
export const FLEET_BLOB_WINDOW_BYTES = 16 * 1024 * 1024
/** The asker acknowledges each time it has taken in this much more. */
const FLEET_BLOB_ACK_EVERY_BYTES = FLEET_BLOB_WINDOW_BYTES / 4
/** Received data held for the consumer: the window and a frame; an answerer past it ignores the window. */
const MAX_QUEUED_BYTES = FLEET_BLOB_WINDOW_BYTES + MAX_FLEET_BLOB_FRAME_BYTES
/**
 * What a DATA frame is reserved as in the asker's reader budget before its bytes are read: a
 * step of a blob's reader is at most 1 MiB (GROWING_READ_BYTES) and a frame's head a few bytes,
 * as a chunk's response is. Reserved as the whole frame limit (1 MiB + 4 KiB), two frames were
 * over a stranger's budget (two chunks, STRANGER_UNREAD_BYTES): a fresh asker's stream started
 * with one frame in flight, and waited for each to be read before the next.
 */
const BUDGETED_FRAME_BYTES = MAX_CHUNK_RESPONSE_BYTES
/** Acknowledgements that may wait unread at the answerer (it reads them as they come). */
const MAX_QUEUED_ACKS = 64

const DIGEST = /^sha256:[0-9a-f]{64}$/
const noop = (): void => {}

export interface FleetBlobQuery {
  registry: string
  repository: string
  /** `sha256:<hex>`. */
  digest: string
}

/**
 * How the asker wants it: from this byte on; `direct` forbids pointing it at a relay; `progress`
 * asks for no bytes, only the PROGRESS figures (`offset` is then what its relay sent it).
 */
export interface FleetBlobAsk {
  offset: number
  direct: boolean
  progress?: boolean
}

/** What the answering node streams: the blob's bytes in order, its last byte only once verified there. */
export interface FleetBlobBytes {
  size: number | undefined
  /** Each step's bytes as fresh pieces, which the stream's muxer and cipher may keep after the send (GrowingFileReader.read). */
  read: (options: { start?: number, stallMs: number, signal: AbortSignal }) => AsyncIterable<Uint8Array[]>
  /** The next bytes at `position` into memory of the caller's, once some are readable; 0 at the end (GrowingFileReader.readInto): a lane's frames are read so. */
  readInto?: ReadInto
  /** Bytes (from the first) it could send now without waiting: told in HEADER (an asker judging a relay it left reads it). */
  held?: () => number
  close: () => Promise<void>
}

/** What the serving side needs from the swarm besides the responder. */
export interface FleetBlobServeHooks {
  /** Who receives which blob from here; without it every asker is served directly (an edge serving as a relay). */
  relays?: FleetBlobRelays
  /** Whether a receiver may be named as a relay (connected here, not banned, one this node would have serve others). */
  usable: (peer: string) => boolean
  /** An asker came back from the relay it was pointed at (that relay is not named again for the blob). */
  relayFailed?: (relay: string, asker: string, digest: string) => void
  /** An asker pointed at a relay held the RELAY's stream past the report window without a report. */
  penalize?: (peer: string, kind: 'slow', detail: string) => void
  /** The addresses `peer` listens on, for the RELAY frame that names it. */
  addressesOf: (peer: string) => Promise<string[]>
  /** Blob bytes sent to `peer` (transfer stats: what a gateway's uplink carried). */
  sent: (peer: string, bytes: number) => void
  /** The node's upload cap (--max-upload), which chunks to peers take from too. */
  uploadLimiter?: RateLimiter
  /**
   * The chunk server's per-peer reader budget (reader-budget.ts): blob bytes a peer has not read
   * count against the same allowance as its chunks, and nothing more is read for it meanwhile.
   */
  budget?: ReaderBudget
  /** The chunk server's upload slots: each DATA frame holds one while it waits for the cap and is sent (FIFO with chunk uploads). */
  uploadSlots?: Semaphore
  /** Per peer, FLEET_BLOB_SENDS_PER_PEER frames at the upload slots at once. */
  peerSends?: KeyedSemaphores
  /** How long a frame may wait to leave for the asker (default FLEET_BLOB_STALL_MS; tests shorten it). */
  sendTimeoutMs?: number
}

export type FleetBlobAnswer =
  | { status: 'stream', bytes: FleetBlobBytes }
  | { status: 'not-found' | 'unavailable', reason: string }

/** What a node answers (the daemon); `from` is the asking peer. */
export type FleetBlobResponder = (query: FleetBlobQuery, from: string, signal: AbortSignal) => Promise<FleetBlobAnswer>

/** The answerer's download broke off after bytes were sent, or it sent more than it announced. */
export class FleetBlobFailedError extends SwarmError {
  constructor (message: string, options?: ErrorOptions) {
    super('FLEET_BLOB_FAILED', message, options)
    this.name = 'FleetBlobFailedError'
  }
}

/** The answerer sent nothing new for the stall timeout (a relay so silent is charged as slow by its asker). */
export class FleetBlobStalledError extends FleetBlobFailedError {
  constructor (message: string) {
    super(message)
    this.name = 'FleetBlobStalledError'
  }
}

/**
 * Serves one blob stream: a libp2p stream of FLEET_BLOB_PROTOCOL, or a data lane asked for it
 * (BLOB_LANE_PROTOCOL, lanes.ts): the same request, frames, window and bounds on either.
 */
export async function serveFleetBlobRequest (respond: FleetBlobResponder | undefined, stream: ChunkStream, connection: Pick<Connection, 'remotePeer'>, lifetime: AbortSignal, hooks: FleetBlobServeHooks): Promise<void> {
  // Attached before the first await: data that arrives with no listener would be buffered.
  const frames = new FrameQueue(stream, { maxFrameBytes: MAX_REQUEST_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: MAX_QUEUED_ACKS })
  const gone = new AbortController()
  stream.addEventListener('close', () => { gone.abort(new Error('the asker closed the stream')) }, { once: true })
  const signal = AbortSignal.any([lifetime, gone.signal])
  const asker = connection.remotePeer.toString()
  let bytes: FleetBlobBytes | undefined
  let release = (): void => {}
  /** The asker's account in the reader budget while its blob is sent. */
  let tracked: { gauge: StreamGauge, close: () => void } | undefined
  // An asker that stops reading (its stream paused, the muxer's window spent) held this handler,
  // the blob's reader (an open file) and its relay plan for as long as it kept the connection:
  // every frame, and the close, must leave within this, as a chunk must (CHUNK_SEND_TIMEOUT_MS).
  const sendTimeoutMs = hooks.sendTimeoutMs ?? FLEET_BLOB_STALL_MS
  let sendFailed = false
  const send = async (frame: Uint8Array | Uint8Array[]): Promise<void> => {
    try {
      if (Array.isArray(frame) && frame.length > 1 && borrows(stream)) await sendPieces(stream, frame, { signal, timeoutMs: sendTimeoutMs })
      else await sendFrame(stream, frame, { signal, timeoutMs: sendTimeoutMs })
    } catch (err) {
      sendFailed = true
      throw err
    }
  }
  const close = async (): Promise<void> => { await stream.close({ signal: abortAfter(sendTimeoutMs, signal) }) }
  /** A wait for the asker to read, failing as a frame that does not leave does (no FAILED). */
  const withinSendTimeout = async (wait: (within: AbortSignal) => Promise<void>): Promise<void> => {
    try {
      await withinDeadline(sendTimeoutMs, signal, wait)
    } catch (err) {
      sendFailed = true
      throw err
    }
  }
  try {
    const { query, ask } = parseRequest(FleetBlobRequest.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS })))
    if (ask.progress === true) {
      // Figures only, from what this node already knows: nothing is fetched or routed.
      const { held, bytesPerSecond } = hooks.relays?.progress(query.digest, asker) ?? {}
      await send(FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.PROGRESS, ...(held === undefined ? {} : { held: BigInt(held) }), ...(bytesPerSecond === undefined ? {} : { bytesPerSecond: BigInt(bytesPerSecond) }) }))
      await close()
      return
    }
    let route = hooks.relays?.route(query.digest, asker, { mayRelay: !ask.direct && ask.offset === 0, usable: hooks.usable, cameBack: ask.direct })
    if (route?.kind === 'direct' && route.failedRelay !== undefined) hooks.relayFailed?.(route.failedRelay, asker, query.digest)
    while (route?.kind === 'relay') {
      // Settles when a direct stream has the bytes or the last one ended (a stopping daemon ends them all).
      const header = await route.header
      if (header === undefined) {
        // Every stream from here ended before it had the bytes: nobody to relay from.
        route = hooks.relays?.route(query.digest, asker, { mayRelay: false, usable: hooks.usable })
        break
      }
      // Named only once it can answer at once (it has our HEADER, or reported its relay's), so
      // an asker it leaves without an answer may charge it: a receiver two hops down that never
      // answers was named unjudgeable, and cost every asker pointed at it the judging window.
      if (!await settlesWithin(route.ready, FLEET_BLOB_RELAY_READY_WAIT_MS, signal)) {
        route.passOver()
        route = hooks.relays?.route(query.digest, asker, { mayRelay: true, usable: hooks.usable })
        continue
      }
      const relayAddrs = (await hooks.addressesOf(route.peer)).slice(0, MAX_RELAY_ADDRS)
      await send(FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.RELAY, relayPeer: route.peer, relayAddrs, size: BigInt(header.size ?? 0), sizeUnknown: header.size === undefined, relayAnswering: true }))
      // The asker's one report of its relay's answer (an older asker closes instead: never named).
      let answered = false
      try {
        answered = FleetBlobAck.decode(await frames.next({ timeoutMs: FLEET_BLOB_RELAY_REPORT_MS, signal })).relayAnswered
      } catch (err) {
        // An honest asker reports within the window, yes or no (a no closes the stream: the
        // dial, the stream's opening and its relay's answer are each bounded, and the window is
        // their sum and a margin). One that holds the stream past it with neither cost the askers
        // pointed at it meanwhile the wait for its readiness (FLEET_BLOB_RELAY_READY_WAIT_MS):
        // charged as a slow holder is. A stream closed or reset is no charge (an older asker
        // closes without a report; a dropped connection says nothing of the asker). The timeout
        // resets the stream, which aborts `signal` too: the node's own stop is what excuses it.
        if (err instanceof MessageTimeoutError && !lifetime.aborted) hooks.penalize?.(asker, 'slow', `fleet blob relay report: none within ${FLEET_BLOB_RELAY_REPORT_MS} ms of the RELAY for ${query.digest}`)
      }
      route.report(answered)
      await close()
      return
    }
    if (route?.kind === 'direct') release = route.release
    const answer = respond === undefined
      ? { status: 'not-found' as const, reason: 'this node answers no fleet requests' }
      : await respond(query, asker, abortAfter(FLEET_PULL_THROUGH_TIMEOUT_MS, signal))
    if (answer.status !== 'stream') {
      const kind = answer.status === 'not-found' ? FleetBlobFrame.Kind.NOT_FOUND : FleetBlobFrame.Kind.UNAVAILABLE
      await send(FleetBlobFrame.encode({ kind, reason: answer.reason.slice(0, 1000) }))
      await close()
      return
    }
    bytes = answer.bytes
    if (bytes.size !== undefined && ask.offset > bytes.size) throw new ProtocolViolationError(`a fleet blob request from byte ${ask.offset} of a ${bytes.size}-byte blob`)
    const held = bytes.held?.()
    // To an asker back from its relay: what that relay could have sent it (fleet-blob-relays.ts).
    const relayHeld = route?.kind === 'direct' ? route.relayHeld?.(held) : undefined
    await send(FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.HEADER, size: BigInt(bytes.size ?? 0), sizeUnknown: bytes.size === undefined, ...(held === undefined ? {} : { held: BigInt(held) }), ...(relayHeld === undefined ? {} : { relayHeld: BigInt(relayHeld) }) }))
    let ended = false
    /** Set as the END or FAILED goes: an asker ends its side once it has either (not before). */
    let finishing = false
    // An asker acknowledges until our END, so once no acknowledgement can come (its side ended:
    // a lane's asker that lets its stream go sends TCP's FIN, which the holder takes for a
    // half-close; an ack that breaks the rules; none for FLEET_BLOB_STALL_MS) it reads no more,
    // and the answer stops. It went on before: its reader open and a frame reserved in the peer's
    // reader budget until a send or a read timed out (90 s), and the same peer's next stream of
    // the blob waited behind that budget (docs/architecture.md, "A full disk under a pull-through").
    const window = new SendWindow(frames, signal, (err) => { if (!finishing) gone.abort(new Error(`the asker stopped acknowledging: ${err.message}`, { cause: err })) })
    const blobSize = bytes.size
    const reader = bytes
    // Time spent waiting for bytes this node did not hold yet (its registry's pace, not the
    // stream's): left out of the stream's rate, which askers judge their relays against.
    let starvedMs = 0
    let starvedSince: number | undefined
    let position = ask.offset
    const starvedNow = (): number => starvedMs + (starvedSince === undefined ? 0 : performance.now() - starvedSince)
    if (route?.kind === 'direct') route.answered(bytes.size, () => ended && blobSize !== undefined ? blobSize : ask.offset + window.acknowledged, { held: () => reader.held?.(), starvedMs: starvedNow })
    tracked = hooks.budget?.track(asker, stream)
    const gauge = tracked?.gauge
    try {
      const nextFrame = frameReader(stream, reader, ask.offset, signal, async (frame) => {
        try {
          await frame.send(stream as ChunkStream & BorrowingStream, { signal, timeoutMs: sendTimeoutMs })
        } catch (err) {
          sendFailed = true
          throw err
        }
      }, send)
      for (;;) {
        await window.room()
        // Read only once the asker has room in its reader budget: one that does not read (its
        // stream paused) is sent a stranger's few frames, whatever its other streams and
        // connections ask, and no more is read from disk for it. Within the send timeout, as a frame.
        // Checked and reserved in one step, so the peer's other streams see the reservation.
        while (gauge !== undefined && hooks.budget !== undefined) {
          if (hooks.budget.hasRoom(asker, BUDGETED_FRAME_BYTES)) {
            gauge.reserve(BUDGETED_FRAME_BYTES)
            break
          }
          const budget = hooks.budget
          await withinSendTimeout(async (within) => { await budget.room(asker, BUDGETED_FRAME_BYTES, within) })
        }
        try {
          if (reader.held !== undefined && reader.held() <= position) starvedSince = performance.now()
          const frame = await nextFrame(position).finally(() => {
            if (starvedSince !== undefined) starvedMs += performance.now() - starvedSince
            starvedSince = undefined
          })
          if (frame === undefined) break
          const length = frame.dataBytes
          // Sent in turn with chunk uploads and the peer's other streams (not while the blob's
          // bytes are awaited: a registry's pause holds no slot).
          let releasePeer = noop
          try {
            releasePeer = await hooks.peerSends?.acquire(asker, { signal }) ?? noop
            await hooks.uploadSlots?.acquire({ signal })
            try {
              await hooks.uploadLimiter?.take(length, { signal, key: asker })
              gauge?.sentBytes(frame.wireBytes)
              await frame.send().finally(() => { gauge?.handed() })
            } finally {
              hooks.uploadSlots?.release()
            }
          } finally {
            releasePeer()
            frame.drop()
          }
          window.sent(length)
          position += length
          hooks.sent(asker, length)
        } finally {
          gauge?.release(BUDGETED_FRAME_BYTES)
        }
      }
    } catch (err) {
      // Nothing more can reach an asker that does not read: no FAILED for it.
      if (signal.aborted || sendFailed) throw err
      // The asker must throw away what it has: say why, then end the stream.
      finishing = true
      await send(FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.FAILED, reason: (err instanceof Error ? err.message : String(err)).slice(0, 1000) }))
      await close()
      return
    }
    finishing = true
    await send(FleetBlobFrame.encode({ kind: FleetBlobFrame.Kind.END }))
    ended = true
    await close()
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  } finally {
    release()
    tracked?.close()
    await bytes?.close()
  }
}

/** The asker's view: the blob's size and its bytes, in order, ending only after the answerer's END. */
export interface FleetBlobStream {
  size: number | undefined
  /**
   * The blob's bytes, one DATA frame's worth at a time as the pieces it arrived in (a frame
   * is not joined: see FrameReaderInit.onLargeFrame). Throws FleetBlobFailedError when the
   * answerer reports a failure; a broken stream throws its error. Read it once.
   */
  data: AsyncIterable<Uint8ArrayList>
  /** Lets the stream go (aborts it when not read to its end). */
  close: () => void
  /** Bytes (from the first) the answerer could send at once when it answered; undefined when it did not say. */
  readonly held?: number | undefined
  /** To an asker back from its relay: what to judge that relay's lag against (FleetBlobFrame.relay_held); undefined when not said. */
  readonly relayHeld?: number | undefined
  /**
   * The relay (an edge, not the trusted pull-through node) that sent bytes of it, if any;
   * undefined when every byte came from the pull-through node.
   */
  readonly relay?: string | undefined
  /**
   * The whole blob failed its digest at the asker: charges the relay that sent bytes of it (the
   * pull-through node checked its own copy before its last byte), so it is dropped.
   */
  rejected?: (detail: string) => void
}

/** A refusal: the answerer neither streams nor relays it. */
export interface FleetBlobRefusal {
  status: 'not-found' | 'unavailable'
  reason: string
}

/** The pull-through node's RELAY: ask `peer` (at `addrs`), which is receiving the blob already. */
export interface FleetBlobRelayAnswer {
  status: 'relay'
  peer: string
  /** The relay has the blob's HEADER from the pull-through node already, so it can answer at once (a direct receiver). */
  answering: boolean
  addrs: string[]
  size: number | undefined
  /**
   * Tells the pull-through node, once, whether the relay answered with a HEADER of the right
   * size (then it may name us a relay in turn), and lets the RELAY's stream go. Call it always.
   */
  report: (answered: boolean) => void
}

/**
 * The pull-through node's figures for a blob we receive from a relay it named (a `progress`
 * request, `received` the bytes the relay sent us): what it holds and how fast its direct streams
 * typically run (fleet-blob-relays.ts `referenceRate`). Undefined when it gave none (an older
 * node answers the request as a direct one: that stream is let go at its HEADER). Bounded by
 * MESSAGE_TIMEOUT_MS in all.
 */
export async function fetchFleetBlobProgress (connection: Connection, query: FleetBlobQuery, received: number, options: { signal: AbortSignal }): Promise<FleetBlobProgress | undefined> {
  const signal = abortAfter(MESSAGE_TIMEOUT_MS, options.signal)
  const stream = await connection.newStream(FLEET_BLOB_PROTOCOL, { signal })
  const incoming = new IncomingFrames(stream)
  try {
    await sendFrame(stream, FleetBlobRequest.encode({ ...query, offset: BigInt(received), direct: true, progress: true }), { signal })
    const frame = FleetBlobFrame.decode(await incoming.next(MESSAGE_TIMEOUT_MS, signal))
    if (frame.kind !== FleetBlobFrame.Kind.PROGRESS) {
      stream.abort(new Error('an older node answered a progress request with a stream'))
      return undefined
    }
    await stream.close({ signal }).catch(() => undefined)
    const figure = (value: bigint | undefined): number | undefined => value === undefined || !Number.isSafeInteger(Number(value)) ? undefined : Number(value)
    const held = figure(frame.held)
    const bytesPerSecond = figure(frame.bytesPerSecond)
    return { ...(held === undefined ? {} : { held }), ...(bytesPerSecond === undefined ? {} : { bytesPerSecond }) }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/**
 * Asks one peer for a blob; resolves once its HEADER (or refusal, or RELAY) arrived. Anything
 * broken throws. `stallMs` is how long the data may pause before the stream fails; `answerMs`
 * how long the first frame may take (default FLEET_PULL_THROUGH_TIMEOUT_MS: a pull-through
 * node may fetch before it answers; a relay answers from what it receives, and is given less).
 */
export async function fetchFleetBlob (connection: Connection, query: FleetBlobQuery, options: FetchFleetBlobOptions): Promise<FleetBlobStream | FleetBlobRefusal | FleetBlobRelayAnswer> {
  const lane = await options.lane?.(options.signal)
  if (lane !== undefined) {
    try {
      return await askFleetBlob(lane, query, options)
    } catch (err) {
      // A lane that died before the first answer (the holder closed it at its handshake: the
      // peer had its lanes; or its idle timeout while the node waited on its registry): the
      // same request on libp2p. The answerer's single flight is shared, so nothing is fetched twice.
      if (!(err instanceof LaneClosedError) || options.signal.aborted) throw err
    }
  }
  return await askFleetBlob(await connection.newStream(FLEET_BLOB_PROTOCOL, { signal: abortAfter(STREAM_OPEN_TIMEOUT_MS, options.signal) }), query, options)
}

export interface FetchFleetBlobOptions {
  signal: AbortSignal
  ask?: FleetBlobAsk
  stallMs?: number
  answerMs?: number
  onData?: (bytes: number) => void
  /**
   * A data lane to the answerer for this one stream (lanes.ts blobLane), or undefined for
   * libp2p: the blob's bytes then skip noise, the swarm key's cipher and yamux for TLS 1.3's
   * AES-GCM in node's C++ (docs/architecture.md "The blob stream over a data lane").
   */
  lane?: (signal: AbortSignal) => Promise<ChunkStream | undefined>
}

async function askFleetBlob (stream: ChunkStream, query: FleetBlobQuery, options: FetchFleetBlobOptions): Promise<FleetBlobStream | FleetBlobRefusal | FleetBlobRelayAnswer> {
  const incoming = new IncomingFrames(stream)
  const ask = options.ask ?? { offset: 0, direct: false }
  try {
    await sendFrame(stream, FleetBlobRequest.encode({ ...query, offset: BigInt(ask.offset), direct: ask.direct }), options)
    const first = FleetBlobFrame.decode(await incoming.next(options.answerMs ?? FLEET_PULL_THROUGH_TIMEOUT_MS, options.signal))
    if (first.kind === FleetBlobFrame.Kind.NOT_FOUND || first.kind === FleetBlobFrame.Kind.UNAVAILABLE) {
      await stream.close(options).catch(() => undefined)
      return { status: first.kind === FleetBlobFrame.Kind.NOT_FOUND ? 'not-found' : 'unavailable', reason: first.reason }
    }
    if (first.kind === FleetBlobFrame.Kind.RELAY && !ask.direct) {
      if (first.relayPeer === '' || first.relayPeer.length > MAX_NAME_CHARS) throw new ProtocolViolationError('a fleet blob RELAY names no peer')
      const size = sizeOf(first)
      // The stream stays open for our one report of the relay's answer (FleetBlobAck.relay_answered).
      let reported = false
      const report = (answered: boolean): void => {
        if (reported) return
        reported = true
        void (async () => {
          if (answered) await sendFrame(stream, FleetBlobAck.encode({ relayAnswered: true }), { signal: options.signal })
          await stream.close({ signal: abortAfter(MESSAGE_TIMEOUT_MS, options.signal) })
        })().catch(() => { stream.abort(new Error('the relay report could not be sent')) })
      }
      return { status: 'relay', peer: first.relayPeer, addrs: first.relayAddrs.slice(0, MAX_RELAY_ADDRS).filter(a => a.length <= MAX_ADDR_CHARS), size, answering: first.relayAnswering, report }
    }
    if (first.kind !== FleetBlobFrame.Kind.HEADER) throw new ProtocolViolationError(`a fleet blob stream began with ${first.kind}`)
    const size = sizeOf(first)
    if (size !== undefined && ask.offset > size) throw new ProtocolViolationError(`a fleet blob of ${size} bytes streamed from byte ${ask.offset}`)
    const held = first.held === undefined ? undefined : Number(first.held)
    const relayHeld = first.relayHeld === undefined ? undefined : Number(first.relayHeld)
    return {
      size,
      held: held !== undefined && Number.isSafeInteger(held) ? held : undefined,
      relayHeld: relayHeld !== undefined && Number.isSafeInteger(relayHeld) ? relayHeld : undefined,
      data: dataFrames(incoming, stream, { size, start: ask.offset, stallMs: options.stallMs ?? FLEET_BLOB_STALL_MS, signal: options.signal, digest: query.digest, onData: options.onData }),
      close: () => { if (stream.status === 'open') stream.abort(new Error('the asker stopped reading')) },
    }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

function sizeOf (frame: FleetBlobFrame): number | undefined {
  if (frame.sizeUnknown) return undefined
  const size = Number(frame.size)
  if (!Number.isSafeInteger(size)) throw new ProtocolViolationError('a fleet blob size beyond 2^53')
  return size
}

async function * dataFrames (incoming: IncomingFrames, stream: ChunkStream, options: { size: number | undefined, start: number, stallMs: number, signal: AbortSignal, digest: string, onData?: (bytes: number) => void }): AsyncGenerator<Uint8ArrayList> {
  const { size, signal, digest } = options
  // Counted from the blob's first byte: a stream resumed at an offset ends at the same size.
  let received = options.start
  try {
    for (;;) {
      const read = readAnswerFrame(await incoming.next(options.stallMs, signal))
      if ('data' in read) {
        received += read.data.byteLength
        if (size !== undefined && received > size) throw new ProtocolViolationError(`a fleet blob stream sent more than the ${size} bytes it announced`)
        options.onData?.(read.data.byteLength)
        yield read.data
        continue
      }
      const { frame } = read
      if (frame.kind === FleetBlobFrame.Kind.END) {
        if (size !== undefined && received !== size) throw new ProtocolViolationError(`a fleet blob stream ended after ${received} of ${size} bytes`)
        await stream.close({ signal }).catch(() => undefined)
        return
      }
      if (frame.kind === FleetBlobFrame.Kind.FAILED) throw new FleetBlobFailedError(`the answerer's fetch of ${digest} failed after ${received} bytes: ${frame.reason}`)
      throw new ProtocolViolationError(`a fleet blob stream sent ${frame.kind} among its data`)
    }
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/** A DATA frame's bytes (a large one read in place, fleet-blob-data.ts), or any other frame as protons decodes it. */
function readAnswerFrame (bytes: Uint8Array | Uint8ArrayList): { data: Uint8ArrayList } | { frame: FleetBlobFrame } {
  const inPlace = bytes instanceof Uint8ArrayList ? dataFramePayload(bytes) : undefined
  if (inPlace !== undefined) return { data: inPlace }
  const frame = FleetBlobFrame.decode(bytes)
  return frame.kind === FleetBlobFrame.Kind.DATA ? { data: new Uint8ArrayList(frame.data) } : { frame }
}

/** Frames of the answer as they come, held while the consumer is busy (up to MAX_QUEUED_BYTES). */
class IncomingFrames {
  private readonly frames: Array<Uint8Array | Uint8ArrayList> = []
  private queuedBytes = 0
  private consumed = 0
  private acked = 0
  private failure: Error | undefined
  private readonly wakers = new Wakers()

  constructor (private readonly stream: ChunkStream) {
    readFrames(stream, {
      maxFrameBytes: MAX_FLEET_BLOB_FRAME_BYTES,
      messageTimeoutMs: MESSAGE_TIMEOUT_MS,
      onFrame: (frame) => { this.queue(frame) },
      onLargeFrame: (frame) => { this.queue(frame) },
      onEnd: () => { this.finish(new ProtocolViolationError('the fleet blob stream ended before its END')) },
    })
    stream.addEventListener('close', (evt) => {
      this.finish(evt.error ?? new ProtocolViolationError('the fleet blob stream closed before its END'))
    }, { once: true })
  }

  /** The next frame: a large one (a DATA frame's megabyte) as the pieces it arrived in. */
  async next (timeoutMs: number, signal: AbortSignal): Promise<Uint8Array | Uint8ArrayList> {
    for (;;) {
      const frame = this.frames.shift()
      if (frame !== undefined) {
        this.queuedBytes -= frame.byteLength
        this.acknowledge(frame.byteLength)
        return frame
      }
      if (this.failure !== undefined) throw this.failure
      await wakeOrThrow(this.wakers.subscribe, { timeoutMs, signal, timeoutError: () => new FleetBlobStalledError(`the answerer sent nothing for ${timeoutMs} ms`) })
    }
  }

  private queue (frame: Uint8Array | Uint8ArrayList): void {
    this.frames.push(frame)
    this.queuedBytes += frame.byteLength
    if (this.queuedBytes > MAX_QUEUED_BYTES) throw new ProtocolViolationError(`a fleet blob stream sent more than its ${FLEET_BLOB_WINDOW_BYTES}-byte window ahead of our acknowledgements`)
    this.wakers.wakeAll()
  }

  /** Tells the answerer what was taken in, every FLEET_BLOB_ACK_EVERY_BYTES (frame sizes: a frame's few header bytes count too, which only acknowledges early). */
  private acknowledge (bytes: number): void {
    this.consumed += bytes
    if (this.consumed - this.acked < FLEET_BLOB_ACK_EVERY_BYTES || this.stream.status !== 'open') return
    this.acked = this.consumed
    // Not awaited: an ack is a few bytes, and a stream that cannot take it fails the read anyway.
    sendFrame(this.stream, FleetBlobAck.encode({ consumed: BigInt(this.consumed) })).catch(() => undefined)
  }

  private finish (err: Error): void {
    this.failure ??= err
    this.wakers.wakeAll()
  }
}

/**
 * The answerer's side of the window: data sent, and the asker's acknowledgements read as they
 * come. `room()` waits while the window is full (the asker's disk is the bottleneck); an asker
 * that stops acknowledging fails the stream after FLEET_BLOB_STALL_MS. `broken` hears once when
 * no more acknowledgements can come (the asker's side ended, a bad one, the stall timeout).
 */
class SendWindow {
  private sentBytes = 0
  private acked = 0
  private wake: (() => void) | undefined
  private failure: Error | undefined

  constructor (private readonly frames: FrameQueue, private readonly signal: AbortSignal, private readonly broken: (err: Error) => void) {
    void this.readAcks()
  }

  sent (bytes: number): void {
    this.sentBytes += bytes
  }

  /** Blob bytes the asker has acknowledged taking in (a few frame-head bytes over, at most). */
  get acknowledged (): number {
    return Math.min(this.acked, this.sentBytes)
  }

  async room (): Promise<void> {
    while (this.sentBytes - this.acked >= FLEET_BLOB_WINDOW_BYTES) {
      if (this.failure !== undefined) throw this.failure
      this.signal.throwIfAborted()
      await new Promise<void>((resolve) => { this.wake = resolve })
    }
  }

  private async readAcks (): Promise<void> {
    try {
      for (;;) {
        const ack = FleetBlobAck.decode(await this.frames.next({ timeoutMs: FLEET_BLOB_STALL_MS, signal: this.signal }))
        const consumed = Number(ack.consumed)
        // Frame sizes include a few header bytes per frame: an ack may run a little ahead of the data.
        if (consumed < this.acked || consumed > this.sentBytes + FLEET_BLOB_WINDOW_BYTES) throw new ProtocolViolationError(`a fleet blob acknowledgement of ${consumed} bytes when ${this.sentBytes} were sent`)
        this.acked = consumed
        this.wakeSender()
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err))
      this.wakeSender()
      this.broken(this.failure)
    }
  }

  private wakeSender (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}

/** Whether `ready` resolved true within `ms` (false when it resolved false or not in time); rejects when the signal aborts. */
async function settlesWithin (ready: Promise<boolean>, ms: number, signal: AbortSignal): Promise<boolean> {
  let value = false
  const outcome = await wakeOrTimeout((wake) => {
    let live = true
    void ready.then((settled) => { value = settled; if (live) wake() })
    return () => { live = false }
  }, { timeoutMs: ms, signal })
  if (outcome === 'aborted') signal.throwIfAborted()
  return outcome === 'woken' && value
}

function parseRequest (request: FleetBlobRequest): { query: FleetBlobQuery, ask: FleetBlobAsk } {
  for (const text of [request.registry, request.repository]) {
    if (text === '' || text.length > MAX_NAME_CHARS) throw new ProtocolViolationError('a fleet blob request names nothing, or too long a name')
  }
  if (!DIGEST.test(request.digest)) throw new ProtocolViolationError('a fleet blob request without a sha256 digest')
  const offset = Number(request.offset)
  if (!Number.isSafeInteger(offset)) throw new ProtocolViolationError('a fleet blob request from an offset beyond 2^53')
  return { query: { registry: request.registry, repository: request.repository, digest: request.digest }, ask: { offset, direct: request.direct, progress: request.progress } }
}

/**
 * Sends one frame made of `parts` on a lane, each part as a write of its own: node's TLS
 * encrypts a single buffer straight from its memory, while several written at once (a corked
 * `send`) are first joined into a fresh copy (lane-stream.ts sendBorrowed). The parts are fresh
 * memory nobody reuses (FleetBlobBytes.read), so nothing waits for their writes to complete.
 */
async function sendPieces (stream: ChunkStream & BorrowingStream, parts: Uint8Array[], options: { signal: AbortSignal, timeoutMs: number }): Promise<void> {
  let length = 0
  for (const part of parts) length += part.byteLength
  // The length prefix goes with the first part when that is a frame's few head bytes: one small record, not two.
  const [first, ...rest] = parts
  const prefix = encodeVarint(length)
  const small = first !== undefined && first.byteLength <= 64
  let room = stream.sendBorrowed(small ? concatBytes(prefix, first) : prefix, noop)
  for (const part of small ? rest : parts) room = stream.sendBorrowed(part, noop)
  if (!room) await withinDeadline(options.timeoutMs, options.signal, async within => { await flushed(stream, { signal: within }) })
}

function concatBytes (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a)
  out.set(b, a.byteLength)
  return out
}

/** A DATA frame read and ready to go: its blob bytes, its bytes on the wire, and its send. */
interface OutgoingFrame {
  dataBytes: number
  wireBytes: number
  send: () => Promise<void>
  /** Lets the frame's memory go unsent (a pooled buffer back to its pool). */
  drop: () => void
}

/**
 * The serving side's DATA frames from `start`: on a data lane, when the blob's reader can read
 * into memory of ours, each frame read behind its head into a reused buffer and sent as one
 * write (fleet-blob-frames.ts); otherwise each reader step's fresh pieces behind a head written
 * by hand, the frame protons would write without its copy of the data (fleet-blob-data.ts).
 */
function frameReader (stream: ChunkStream, reader: FleetBlobBytes, start: number, signal: AbortSignal, sendPooled: (frame: PooledFrame) => Promise<void>, send: (frame: Uint8Array[]) => Promise<void>): (position: number) => Promise<OutgoingFrame | undefined> {
  const readInto = reader.readInto
  if (readInto !== undefined && borrows(stream)) {
    return async (position) => {
      const frame = await readPooledFrame(readInto, position, { stallMs: FLEET_BLOB_STALL_MS, signal })
      return frame === undefined ? undefined : { dataBytes: frame.dataBytes, wireBytes: frame.wireBytes, send: async () => { await sendPooled(frame) }, drop: frame.drop }
    }
  }
  const steps = reader.read({ start, stallMs: FLEET_BLOB_STALL_MS, signal })[Symbol.asyncIterator]()
  return async () => {
    const step = await steps.next()
    if (step.done === true) return undefined
    const pieces = step.value
    let length = 0
    for (const piece of pieces) length += piece.byteLength
    const head = dataFrameHead(length)
    return { dataBytes: length, wireBytes: encodeVarint(head.byteLength + length).byteLength + head.byteLength + length, send: async () => { await send([head, ...pieces]) }, drop: noop }
  }
}
