import { Uint8ArrayList } from 'uint8arraylist'
import {
  ADVERTISE_GRACE_MS, CHUNK_MESSAGE_TIMEOUT_MS, CHUNK_PIECE_BYTES, CHUNK_READ_AHEAD, CHUNK_SEND_TIMEOUT_MS, FIRST_MESSAGE_TIMEOUT_MS, MAX_CHUNK_REQUEST_BYTES,
  MAX_CHUNK_RESPONSE_BYTES, MAX_CHUNK_STREAMS_PER_PEER, MAX_QUEUED_CHUNK_REQUESTS_PER_STREAM, MESSAGE_TIMEOUT_MS, READER_BUDGET_POLL_MS,
  STRANGER_UNREAD_BYTES, TAKER_AFTER_CHUNKS, UPLOAD_PACE_CAP_BYTES, UPLOAD_PACE_FLOOR_BYTES, UPLOAD_PACE_MAX_WAIT_MS, UPLOAD_PACE_MIN_WAIT_MS, UPLOAD_PACE_TARGET_MS,
} from './constants.js'
import { bytesToId, idToBytes } from './content-id.js'
import { chunkResponseHead } from './chunk-response-head.js'
import { ChunkReads, FRAME_HEAD_ROOM_BYTES, type FramedChunk, type ReadChunk } from './chunk-reads.js'
import { IdleStreamError, ProtocolViolationError, SlowReaderError, isRemoteFault } from './errors.js'
import { encodeVarint, readFrames, sendBorrowedFrame, sendFrame, sendFrameInPieces, sendFrames } from './framing.js'
import { FirstCopyQueues } from './first-copy-queues.js'
import { GATEWAY_SEEDING_POLICY, GatewaySeeding, type ExtraCopyReason, type SeedingPolicy } from './gateway-seeding.js'
import { soleCopyWaitMs } from './sole-copies.js'
import { ChunkRequest, ChunkResponse } from './pb/swarm-chunk.pb.js'
import { ReaderBudget, type StreamGauge } from './reader-budget.js'
import { onReaderClock, ReaderClock } from './reader-clock.js'
import type { HaveList, PeerKey } from './have-list.js'
import type { LocalBundles } from './local-bundles.js'
import type { RateLimiter } from './rate-limiter.js'
import type { Semaphore } from './semaphore.js'
import { gatewayPaceCapBytes, UploadPace } from './upload-pace.js'
import { abortAfter, sleep, type Subscribe, wakeOrTimeout, Wakers } from '../wait/index.js'
import type { Connection } from '@libp2p/interface'
import { borrows, type BorrowingStream, type ChunkStream } from './chunk-stream.js'

/**
 * /shoal/chunk/1.0.0: the asker keeps one long-lived stream per holder and pipelines
 * requests on it (object hash + chunk index); the holder answers each exactly once, with the
 * bytes from its own store (only verified bytes are ever there), NOT_PRESENT, or CANCELLED.
 * A CANCEL is honoured for every chunk not yet handed to the muxer; the holder hands an
 * asker's next chunk down only when its link is nearly empty (upload-pace.ts).
 */

/** 'refused': CANCELLED for a request we never cancelled (a holder that will not serve). */
export type ChunkStatus = 'ok' | 'not-present' | 'cancelled' | 'deferred' | 'refused'

/** protobuf field 4 (`data`), wire type 2 (length-delimited). */
const DATA_FIELD_TAG = Uint8Array.of((4 << 3) | 2)

const chunkKey = (object: string, index: number): string => `${object}:${index}`

// ---- serving ------------------------------------------------------------------------------

export interface ChunkServerComponents {
  store: { readChunk: ReadChunk }
  local: LocalBundles
  haveList: HaveList
  uploadSlots: Semaphore
  uploadLimiter?: RateLimiter
}

export interface ChunkServerInit {
  /** A gateway serves first the chunks its other neighbours lack (DESIGN.md: each chunk leaves it about once). */
  gateway: boolean
  /** Over GATEWAY_SEEDING_POLICY, for a gateway. */
  seeding?: Partial<SeedingPolicy>
  /** An edge's hold for sole copies (sole-copies.ts; default SOLE_COPY_HOLD_MS, tests stretch it). */
  soleCopyHoldMs?: number
  onUploaded: (peer: PeerKey, bytes: number) => void
  /** The asker broke the protocol or would not read what it asked for: the swarm charges it. */
  onOffence?: (peer: PeerKey, kind: 'violation' | 'slow-reader', detail: string) => void
  /** What a peer that has read nothing may hold unread (STRANGER_UNREAD_BYTES). */
  strangerUnreadBytes?: number
}

/** Read buffers kept between chunk reads; reads beyond this many at once get a buffer of their own. */
const SPARE_READ_BUFFERS = 4
/** Chunks sent on a connection remembered for the resend window; beyond this the memory starts over. */
const MAX_REMEMBERED_UPLOADS = 65_536
/** A chunk sent to a peer is not sent to the same peer again within this time. */
const RESEND_WINDOW_MS = 10_000
/**
 * A taker waits this long at most for askers that do pass chunks on before it is sent its
 * next one: it is served, never starved, but not at the cost of the peers that spread what
 * they get.
 */
const TAKER_WAIT_MS = 1_000

export class ChunkServer {
  private readonly sessions = new Set<ServeSession>()
  /** peer/connection|object:index → when we last sent that chunk on that peer's connection. */
  private readonly sentTo = new Map<string, number>()
  /** object → the peer its last chunk left for, and when (spreadingElsewhere). */
  private readonly lastSentOf = new Map<string, { peer: PeerKey, at: number }>()
  /** A gateway's memory of what it sent whom, so it sends every chunk once before any twice. */
  private readonly seeding: GatewaySeeding | undefined

  /** peer → chunks sent to it (any object) and when the first left, to tell a taker from a new neighbour. */
  private readonly sentCount = new Map<PeerKey, { chunks: number, firstAt: number }>()
  /** Takers waiting for the others' queues to empty. */
  private readonly takersWaiting = new Wakers()
  /** A gateway's second copies waiting for the first copies queued for other askers to go. */
  private readonly secondCopiesWaiting = new Wakers()
  /** A gateway's streams with a chunk never sent queued, kept as requests come and go. */
  private readonly firstCopies = new FirstCopyQueues<ServeSession>()
  /** The seeding memory's `forgotten` the counts were made with (-1: count again, a pick was dropped). */
  private firstCopiesCountedAt = 0
  /** What each asker has not read of what we sent it (a stranger gets a small budget). */
  readonly budget: ReaderBudget
  /** Chunk reads for sending, through a few reused buffers (chunk-reads.ts). */
  readonly reads: ChunkReads

  constructor (readonly components: ChunkServerComponents, readonly init: ChunkServerInit) {
    this.reads = new ChunkReads(async (hash, index, options) => await components.store.readChunk(hash, index, options), SPARE_READ_BUFFERS)
    const { haveList } = components
    this.budget = new ReaderBudget({ strangerBytes: init.strangerUnreadBytes ?? STRANGER_UNREAD_BYTES, pollMs: READER_BUDGET_POLL_MS, maxPeers: MAX_REMEMBERED_UPLOADS })
    this.seeding = init.gateway
      ? new GatewaySeeding({
        advertises: (peer, object) => haveList.holding(peer, object) !== undefined,
        holderCount: (object, index, except) => haveList.holderCount(object, index, except),
      }, { ...GATEWAY_SEEDING_POLICY, ...init.seeding })
      : undefined
  }

  /**
   * A peer that gives nothing back: a stranger that never greeted on the have protocol (no
   * honest asker asks before it did: it learns who holds what there), or a neighbour sent a
   * few chunks that still advertises nothing, and has had time to (row 10 of the review: a
   * leech). Honest neighbours advertise within a have batch (50 ms) of storing their first
   * chunk, but storing takes a while on a busy machine: at load 5-9 a gateway sent two honest
   * edges their fifth chunk before their first advertisement came (~0.5 s), and as takers they
   * waited a second behind each other.
   */
  isTaker (peer: PeerKey): boolean {
    if (!this.components.haveList.hasPeer(peer)) return true
    const sent = this.sentCount.get(peer)
    return sent !== undefined && sent.chunks > TAKER_AFTER_CHUNKS && Date.now() - sent.firstAt > ADVERTISE_GRACE_MS &&
      !this.components.haveList.advertisesAnything(peer)
  }

  /** Resolves when no asker that is not a taker has requests queued, or after TAKER_WAIT_MS. */
  async yieldToSharers (signal: AbortSignal): Promise<void> {
    const busy = (): boolean => [...this.sessions].some(s => s.queuedRequests > 0 && !this.isTaker(s.peer))
    if (!busy()) return
    const deadline = Date.now() + TAKER_WAIT_MS
    while (busy()) {
      if (await wakeOrTimeout(this.takersWaiting.subscribe, { timeoutMs: deadline - Date.now(), signal }) !== 'woken') return
    }
  }

  /** A gateway's pace cap for one asker's stream (upload-pace.ts gatewayPaceCapBytes). */
  gatewayPaceCapBytes (session: ServeSession): number {
    return gatewayPaceCapBytes(session.peer, this.sessions, peer => this.isTaker(peer))
  }

  /** A session queued a request: a gateway counts it when its chunk was never sent. */
  queued (session: ServeSession, request: QueuedRequest): void {
    if (this.seeding === undefined) return
    this.recountFirstCopies()
    if (this.seeding.copiesSent(request.object, request.index) === 0) this.firstCopies.queued(session, request.key)
  }

  /**
   * A request left a session's queue (picked or cancelled): takers look again once a queue is
   * empty, held second copies once a stream has no never-sent chunk left queued.
   */
  unqueued (session: ServeSession, request: QueuedRequest): void {
    if (session.queuedRequests === 0) this.takersWaiting.wakeAll()
    // An edge does not count its sole copies (have-lists change them): a held stream looks again.
    if (this.seeding === undefined || this.firstCopies.unqueued(session, request.key)) this.secondCopiesWaiting.wakeAll()
  }

  /** A session closed: it holds nobody back any more. */
  closed (session: ServeSession): void {
    this.sessions.delete(session)
    this.takersWaiting.wakeAll()
    if (this.firstCopies.closed(session)) this.secondCopiesWaiting.wakeAll()
  }

  /** The seeding memory started over (it forgets past MAX_REMEMBERED chunks): every queued chunk counts as never sent again. */
  private recountFirstCopies (): void {
    const forgotten = this.seeding?.forgotten ?? 0
    if (forgotten === this.firstCopiesCountedAt) return
    this.firstCopiesCountedAt = forgotten
    this.firstCopies.clear()
    for (const session of this.sessions) {
      for (const request of session.queuedList()) {
        if (this.copiesSent(request.object, request.index) === 0) this.firstCopies.queued(session, request.key)
      }
    }
  }

  /**
   * How long a gateway holds back this request, a copy of a chunk it sent before, while an
   * asker that passes chunks on has a chunk never sent queued (gateway-seeding.ts
   * secondCopyWaitMs); 0 to send it now. Takers' queues do not count: a leech asking for
   * everything must not hold honest askers back. An edge holds back chunks others hold too
   * behind the ones only it holds, alike (soleCopyWaitMs).
   */
  secondCopyWaitMs (session: ServeSession, request: QueuedRequest): number {
    if (this.seeding === undefined) return this.soleCopyWaitMs(session, request)
    const wait = this.seeding.secondCopyWaitMs(request.object, request.index, request.at)
    if (wait === 0) return 0
    this.recountFirstCopies()
    // Another asker's: a peer's own other stream (a libp2p stream its data lane is retiring) is
    // the same asker, and waiting on it held the lane's chunks behind the retiring stream's.
    for (const other of this.firstCopies.sessions()) {
      if (other.peer !== session.peer && !this.isTaker(other.peer)) return wait
    }
    return 0
  }

  /**
   * An edge's counterpart: how long it holds back this request, for a chunk another edge
   * neighbour holds too, while an asker that passes chunks on has a chunk only we hold queued
   * (sole-copies.ts); 0 to send it now.
   */
  private soleCopyWaitMs (session: ServeSession, request: QueuedRequest): number {
    const { haveList } = this.components
    const wait = soleCopyWaitMs(haveList.edgeHolderCount(request.object, request.index, session.peer), request.at, Date.now(), this.init.soleCopyHoldMs)
    if (wait === 0) return 0
    for (const other of this.sessions) {
      if (other === session || this.isTaker(other.peer)) continue
      if (other.queuedList().some(r => haveList.edgeHolderCount(r.object, r.index, other.peer) === 0)) return wait
    }
    return 0
  }

  /** Resolves when a session's queue changed, `also` wakes, after `timeoutMs`, or on abort. */
  async waitForFirstCopies (timeoutMs: number, also: Subscribe, signal: AbortSignal): Promise<void> {
    const either: Subscribe = (wake) => {
      const off = [this.secondCopiesWaiting.subscribe(wake), also(wake)]
      return () => { for (const unsubscribe of off) unsubscribe() }
    }
    if (await wakeOrTimeout(either, { timeoutMs, signal }) === 'aborted') signal.throwIfAborted()
  }

  /**
   * `connection`: whose stream it is, and the connection (or lane) it came on, for the resend
   * window. `firstRequestTimeoutMs`: how long it may wait for its first request
   * (FIRST_MESSAGE_TIMEOUT_MS on libp2p; a lane's is LANE_FIRST_REQUEST_TIMEOUT_MS).
   */
  handleStream (stream: ChunkStream, connection: Pick<Connection, 'remotePeer' | 'id'>, firstRequestTimeoutMs = FIRST_MESSAGE_TIMEOUT_MS): void {
    const peer = connection.remotePeer.toString()
    let open = 0
    for (const s of this.sessions) if (s.peer === peer) open++
    if (open >= MAX_CHUNK_STREAMS_PER_PEER) {
      // More connections each with their streams would multiply what one peer can ask at once.
      stream.abort(new Error(`more than ${MAX_CHUNK_STREAMS_PER_PEER} chunk streams from one peer`))
      return
    }
    const session = new ServeSession(peer, connection.id, stream, this, firstRequestTimeoutMs, () => { this.closed(session) })
    this.sessions.add(session)
  }

  closeAll (): void {
    for (const session of [...this.sessions]) session.abort(new Error('the swarm is stopping'))
  }

  copiesSent (object: string, index: number): number {
    return this.seeding?.copiesSent(object, index) ?? 0
  }

  /** A gateway's copies after a chunk's first, by why (gateway-seeding.ts); empty elsewhere. */
  extraCopies (): Partial<Record<ExtraCopyReason, number>> {
    return this.seeding?.extraCopies() ?? {}
  }

  /**
   * Upload fairness: the same chunk goes to the same peer at most once per
   * RESEND_WINDOW_MS on one connection (a leech asked one chunk 2,793 times in 20 s). An
   * honest asker never asks again for a chunk it received on the same connection; one that
   * was killed and restarted lost its unsynced chunks and comes back on a new connection, and
   * is served at once (kept per peer, the window turned its re-asks into DEFERRED answers that
   * its refusal score then counted against the gateway).
   */
  sentRecently (asker: string, key: string): boolean {
    const at = this.sentTo.get(`${asker}|${key}`)
    return at !== undefined && Date.now() - at < RESEND_WINDOW_MS
  }

  /**
   * Whether a chunk of `object` left for a peer other than `asker` within RESEND_WINDOW_MS: a
   * gateway then streams the object to nobody else (object-stream-server.ts), so its chunks
   * spread from the one it went to, as its seeding spreads single chunks.
   */
  spreadingElsewhere (object: string, asker: PeerKey): boolean {
    const last = this.lastSentOf.get(object)
    return last !== undefined && last.peer !== asker && Date.now() - last.at < RESEND_WINDOW_MS
  }

  recordSent (key: string, peer: PeerKey, connectionId: string, object: string, index: number): void {
    if (this.sentTo.size >= MAX_REMEMBERED_UPLOADS) this.sentTo.clear()
    this.sentTo.set(`${peer}/${connectionId}|${key}`, Date.now())
    if (this.lastSentOf.size >= MAX_REMEMBERED_UPLOADS) this.lastSentOf.clear()
    const last = this.lastSentOf.get(object)
    if (last === undefined) this.lastSentOf.set(object, { peer, at: Date.now() })
    else {
      last.peer = peer
      last.at = Date.now()
    }
    if (this.sentCount.size >= MAX_REMEMBERED_UPLOADS) this.sentCount.clear()
    const sent = this.sentCount.get(peer)
    if (sent === undefined) this.sentCount.set(peer, { chunks: 1, firstAt: Date.now() })
    else sent.chunks++
    // Seeding counts only copies sent to neighbours that will advertise what they got: chunks
    // a stranger took (a flood of throwaway identities asking and never reading) made the
    // gateway defer honest askers for copies nobody passes on, and rank those chunks as already
    // spread (an honest pull 4-9x slower under a flood).
    if (this.seeding === undefined || !this.passesOn(peer, object)) return
    this.seeding.recordSent(peer, object, index)
    this.recountFirstCopies()
    // Its first copy is on its way: where else it is queued, it is a second copy now.
    if (this.firstCopies.sent(key).length > 0) this.secondCopiesWaiting.wakeAll()
  }

  /**
   * A gateway picked this request for `peer` and is reading it to send: other askers wait for
   * it as for a copy sent (gateway-seeding.ts picked), and where else it is queued it is a
   * second copy now.
   */
  picked (peer: PeerKey, request: QueuedRequest): void {
    if (this.seeding === undefined || !this.passesOn(peer, request.object)) return
    this.seeding.picked(peer, request.object, request.index)
    this.recountFirstCopies()
    if (this.firstCopies.sent(request.key).length > 0) this.secondCopiesWaiting.wakeAll()
  }

  /** A picked request was not sent after all: where else it is queued it may be a first copy again. */
  unpicked (peer: PeerKey, request: QueuedRequest): void {
    if (this.seeding === undefined) return
    this.seeding.dropped(peer, request.object, request.index)
    this.firstCopiesCountedAt = -1
    this.secondCopiesWaiting.wakeAll()
  }

  /**
   * Whether `peer` will tell its neighbours it holds this object: it greeted on the have
   * protocol and is interested in a bundle that names the object (have state is exchanged only
   * for bundles both sides are interested in). An honest asker always is: it learnt that we
   * hold the object from the state we sent for its interest. The flood's identities greet with
   * no bundles and random interest; counted as recipients, each one's two chunks made the
   * gateway defer the honest edges for those chunks for the 2 s advertising grace, again with
   * every new identity (edges asked 4-24 chunks again; pulls 1.6-2.2x slower).
   */
  passesOn (peer: PeerKey, object: string): boolean {
    const interest = this.components.haveList.interestOf(peer)
    if (interest.size === 0) return false
    for (const bundle of this.components.local.object(object)?.bundles ?? []) {
      if (interest.has(bundle)) return true
    }
    return false
  }

  /** Gateway seeding (gateway-seeding.ts): whether to tell this asker to fetch the chunk from the edge it just went to. */
  shouldDefer (peer: PeerKey, object: string, index: number): boolean {
    return this.seeding?.shouldDefer(peer, object, index) ?? false
  }
}

/** `at`: when it was asked (a gateway holds a second copy back for a while at most). */
interface QueuedRequest { object: string, index: number, key: string, at: number }
/**
 * A chunk read: as copies in pieces (a libp2p stream), or framed in a pooled buffer for the
 * stream that borrows it (a lane, `BorrowingStream`).
 */
type ReadResult = { pieces: Uint8Array[], framed?: undefined, length: number, error?: undefined }
  | { framed: FramedChunk, to: ChunkStream & BorrowingStream, pieces?: undefined, length: number, error?: undefined }
  | { error: Error, framed?: undefined }
/** A request picked and being read; `cancelled` until its first byte goes to the muxer. */
interface PendingRead { request: QueuedRequest, result: Promise<ReadResult>, cancelled: boolean }

class ServeSession {
  private readonly queue: QueuedRequest[] = []
  private readonly queued = new Set<string>()
  private readonly replies: Uint8Array[] = []
  private readonly controller = new AbortController()
  private serving = false
  /** The asker closed its side: answer what is queued, then close ours. */
  private ending = false
  private firstRequest: NodeJS.Timeout | undefined
  /** The drain holds back this stream's next chunk (ChunkServer.secondCopyWaitMs). */
  private holding = false
  /** What we sent on this stream and what of it the asker has read. */
  private readonly gauge: StreamGauge
  /** When the asker's link has room for its next chunk. */
  private readonly pace: UploadPace
  /** How long this stream has waited on its reader with nothing read, across its waits (reader-clock.ts). */
  private readonly clock: ReaderClock
  /** Picked requests whose chunks are not yet handed to the muxer: a CANCEL still stops them. */
  private readonly picked = new Map<string, PendingRead>()
  /** A reply or a cancel came: a drain waiting for the asker's link looks again. */
  private readonly changed = new Wakers()

  constructor (
    readonly peer: PeerKey,
    private readonly connectionId: string,
    private readonly stream: ChunkStream,
    private readonly server: ChunkServer,
    firstRequestTimeoutMs: number,
    onClosed: () => void,
  ) {
    readFrames(stream, {
      maxFrameBytes: MAX_CHUNK_REQUEST_BYTES,
      messageTimeoutMs: MESSAGE_TIMEOUT_MS,
      onFrame: (frame) => { this.onRequest(frame) },
      onEnd: () => {
        this.ending = true
        this.serve()
      },
    })
    // A stream opened and left silent would hold a slot of its connection forever.
    this.firstRequest = setTimeout(() => { this.abort(new IdleStreamError('a first chunk request', firstRequestTimeoutMs)) }, firstRequestTimeoutMs)
    this.firstRequest.unref()
    // The clock is made just below; the budget asks it only once the session runs.
    const tracked = server.budget.track(peer, stream, () => this.clock.running)
    this.gauge = tracked.gauge
    this.clock = new ReaderClock(() => this.gauge.read(), CHUNK_SEND_TIMEOUT_MS)
    this.pace = new UploadPace(this.gauge, {
      floorBytes: UPLOAD_PACE_FLOOR_BYTES,
      capBytes: server.init.gateway ? () => server.gatewayPaceCapBytes(this) : UPLOAD_PACE_CAP_BYTES,
      targetMs: UPLOAD_PACE_TARGET_MS,
      minWaitMs: UPLOAD_PACE_MIN_WAIT_MS,
      maxWaitMs: UPLOAD_PACE_MAX_WAIT_MS,
    })
    stream.addEventListener('close', (evt) => {
      tracked.close()
      clearTimeout(this.firstRequest)
      const error = evt.error
      if (error instanceof SlowReaderError) server.init.onOffence?.(peer, 'slow-reader', error.message)
      else if (error !== undefined && isRemoteFault(error)) server.init.onOffence?.(peer, 'violation', `chunk requests: ${error.message}`)
      this.controller.abort(new Error('the chunk stream closed'))
      onClosed()
    }, { once: true })
  }

  abort (err: Error): void {
    this.stream.abort(err)
  }

  get queuedRequests (): number {
    return this.queue.length
  }

  /** The requests queued here, not yet picked. */
  queuedList (): readonly QueuedRequest[] {
    return this.queue
  }

  private onRequest (frame: Uint8Array): void {
    clearTimeout(this.firstRequest)
    const request = ChunkRequest.decode(frame)
    const object = bytesToId(request.object)
    const key = chunkKey(object, request.index)
    if (request.cancel) {
      const pending = this.picked.get(key)
      if (pending !== undefined) {
        // Picked and being read, not on the wire: the drain answers CANCELLED when it comes to it.
        pending.cancelled = true
        this.changed.wakeAll()
        return
      }
      const at = this.queue.findIndex(r => r.key === key)
      // Already being sent (or sent): the asker ignores the bytes when they come.
      if (at < 0) return
      const [cancelled] = this.queue.splice(at, 1)
      this.queued.delete(key)
      this.server.unqueued(this, cancelled as QueuedRequest)
      this.reply(object, request.index, ChunkResponse.Status.CANCELLED)
      return
    }
    const local = this.server.components.local.object(object)
    if (local !== undefined && request.index >= local.chunkCount) {
      throw new ProtocolViolationError(`chunk index ${request.index} of an object of ${local.chunkCount} chunks`)
    }
    if (this.queued.has(key) || this.picked.has(key)) throw new ProtocolViolationError('the same chunk requested twice')
    if (this.queue.length >= MAX_QUEUED_CHUNK_REQUESTS_PER_STREAM) throw new ProtocolViolationError(`more than ${MAX_QUEUED_CHUNK_REQUESTS_PER_STREAM} chunk requests outstanding`)
    if (local === undefined) {
      this.reply(object, request.index, ChunkResponse.Status.NOT_PRESENT)
      return
    }
    if (this.server.sentRecently(`${this.peer}/${this.connectionId}`, key)) {
      // It has these bytes already: a gateway says wait (it serves again after the window),
      // an edge says it is not the one to ask.
      this.reply(object, request.index, this.server.init.gateway ? ChunkResponse.Status.DEFERRED : ChunkResponse.Status.NOT_PRESENT)
      return
    }
    if (this.server.shouldDefer(this.peer, object, request.index)) {
      this.reply(object, request.index, ChunkResponse.Status.DEFERRED)
      return
    }
    const queued: QueuedRequest = { object, index: request.index, key, at: Date.now() }
    this.queue.push(queued)
    this.queued.add(key)
    this.server.queued(this, queued)
    // A second copy held back here looks again: this may be a first copy of our own to send
    // instead (at an edge, a chunk only we hold).
    if (this.server.init.gateway || this.holding) this.changed.wakeAll()
    this.serve()
  }

  private reply (object: string, index: number, status: ChunkResponse.Status): void {
    this.replies.push(ChunkResponse.encode({ object: idToBytes(object), index, status }))
    this.changed.wakeAll()
    this.serve()
  }

  private serve (): void {
    if (this.serving) return
    this.serving = true
    void this.drain()
      .then(async () => {
        this.serving = false
        if (this.ending && this.queue.length === 0 && this.replies.length === 0) await this.stream.close()
      }, (err: unknown) => {
        this.serving = false
        this.abort(err instanceof Error ? err : new Error(String(err)))
      })
      .catch((err: unknown) => { this.abort(err instanceof Error ? err : new Error(String(err))) })
  }

  /**
   * Answers in the order requests were picked, with up to CHUNK_READ_AHEAD reads under way
   * so the disk works while the previous chunk is on the wire. A request is picked only when
   * the asker's link has room (upload-pace.ts): until then it stays queued, and a CANCEL for
   * it costs no chunk bytes.
   */
  private async drain (): Promise<void> {
    const signal = this.controller.signal
    const reading: PendingRead[] = []
    try {
      while (!signal.aborted) {
        const reply = this.replies.shift()
        if (reply !== undefined) {
          await this.sendWithin(reply, signal)
          continue
        }
        while (reading.length < CHUNK_READ_AHEAD && this.queue.length > 0) {
          if (!this.pace.hasRoom()) {
            // What is read goes out first; with nothing read, wait for the link (answering
            // cancels meanwhile: they are what the wait is for).
            if (reading.length > 0) break
            await this.paceWithin(signal)
            if (this.replies.length > 0) break
            continue
          }
          // An asker that does not read what it was sent gets no more than its budget
          // (reader-budget.ts), and nothing is read from disk for it meanwhile. What is read
          // already (reserved in the budget) goes out first.
          if (!this.server.budget.hasRoom(this.peer, MAX_CHUNK_RESPONSE_BYTES)) {
            if (reading.length > 0) break
            await this.roomWithin(MAX_CHUNK_RESPONSE_BYTES, signal)
          }
          // Wait for the upload cap before choosing: a request cancelled meanwhile is never sent.
          if (reading.length === 0) await this.server.components.uploadLimiter?.ready({ signal, key: this.peer })
          if (reading.length === 0 && this.server.isTaker(this.peer)) await this.server.yieldToSharers(signal)
          // The peer's other streams may have passed the budget check during these waits (a
          // taker's turn is up to a second) and reserved since: looked at again here, with no
          // wait left before this stream's reservation, or each of them went a chunk past it.
          if (!this.server.budget.hasRoom(this.peer, MAX_CHUNK_RESPONSE_BYTES)) continue
          // A cancel that came during these waits may have emptied the queue: nothing to pick.
          if (this.queue.length === 0) break
          const at = this.nextAt()
          // A copy of a chunk sent before waits while first copies are queued for others (at an
          // edge: a chunk others hold too, while chunks only we hold are queued for others).
          const waitMs = this.server.secondCopyWaitMs(this, this.queue[at] as QueuedRequest)
          if (waitMs > 0) {
            // What is read goes out first, and answers (a cancel's, a deferral's) do not wait.
            if (reading.length > 0 || this.replies.length > 0) break
            this.holding = true
            try {
              await this.server.waitForFirstCopies(waitMs, this.changed.subscribe, signal)
            } finally {
              this.holding = false
            }
            if (this.replies.length > 0) break
            continue
          }
          const next = this.take(at)
          if (next === undefined) break
          // Checked again now: while this request waited in the queue, the gateway may have
          // sent the chunk to another neighbour (two askers queued for one unsent chunk).
          if (this.server.shouldDefer(this.peer, next.object, next.index)) {
            this.reply(next.object, next.index, ChunkResponse.Status.DEFERRED)
            continue
          }
          // Before the read's first wait: another stream picking the same chunk meanwhile is deferred.
          this.server.picked(this.peer, next)
          // Reserved before the read's first wait, so this peer's other streams see it.
          this.gauge.reserve(MAX_CHUNK_RESPONSE_BYTES)
          const pending = await this.startRead(next, signal)
          this.picked.set(next.key, pending)
          reading.push(pending)
        }
        const head = reading.shift()
        if (head === undefined) {
          // A deferral just queued a reply: send it before stopping.
          if (this.replies.length > 0) continue
          // Nothing waits on the reader now: its next wait is timed afresh.
          this.clock.clear()
          return
        }
        await this.send(head, signal)
      }
    } finally {
      // Reads started but never sent (the stream died): wait for them, give back their slots.
      for (const pending of reading) {
        this.picked.delete(pending.request.key)
        this.server.unpicked(this.peer, pending.request)
        void pending.result.then((read) => {
          // Never sent: nothing reads its buffer.
          read.framed?.release()
          this.server.components.uploadSlots.release()
        })
      }
    }
  }

  /**
   * The chunk the fewest of our other neighbours hold first (ties in arrival order); a gateway
   * counts the copies it sent too: the copy it already sent will reach this asker from an edge
   * (whose have-list makes the asker cancel here), so the gateway's uplink carries what the
   * swarm lacks. An edge does the same for the chunks it got first: answered in arrival order,
   * a chunk only it held waited behind the asker's older requests for chunks others could send,
   * once per asker in turn, and new chunks spread from their first holder seconds late
   * (scripts/simulate.ts, docs/architecture.md "Edges send the rarest first").
   */
  private nextAt (): number {
    let at = 0
    if (this.queue.length > 1) {
      const { haveList } = this.server.components
      let best = Infinity
      for (let i = 0; i < this.queue.length; i++) {
        const request = this.queue[i] as QueuedRequest
        const holders = haveList.holderCount(request.object, request.index, this.peer) + this.server.copiesSent(request.object, request.index)
        if (holders < best) {
          best = holders
          at = i
          if (holders === 0) break
        }
      }
    }
    return at
  }

  private take (at: number): QueuedRequest | undefined {
    const [request] = this.queue.splice(at, 1)
    if (request === undefined) return undefined
    this.queued.delete(request.key)
    this.server.unqueued(this, request)
    return request
  }

  private async startRead (request: QueuedRequest, signal: AbortSignal): Promise<PendingRead> {
    const { uploadSlots } = this.server.components
    await uploadSlots.acquire({ signal })
    const failed = (err: unknown): ReadResult => ({ error: err instanceof Error ? err : new Error(String(err)) })
    // Settled either way, so a read nobody awaits (the stream died) is never an unhandled rejection.
    const stream = this.stream
    const result = borrows(stream)
      ? this.server.reads.framed(request.object, request.index, signal).then((framed): ReadResult => ({ framed, to: stream, length: framed.bytes.byteLength }), failed)
      : this.server.reads.pieces(request.object, request.index, signal).then(
        (pieces): ReadResult => ({ pieces, length: pieces.reduce((sum, piece) => sum + piece.byteLength, 0) }),
        failed,
      )
    return { request, result, cancelled: false }
  }

  /**
   * Waits until the asker's link has room for another chunk, a reply is to be sent, or nothing
   * is left to send, on the stream's reader clock: an asker that takes none of our bytes while
   * the clock runs CHUNK_SEND_TIMEOUT_MS is a slow reader (one that reads slowly but steadily is
   * not: every read starts the clock over).
   */
  private async paceWithin (signal: AbortSignal): Promise<void> {
    await onReaderClock(this.clock, signal, async (within) => {
      while (!this.pace.hasRoom() && this.replies.length === 0 && this.queue.length > 0) {
        if (await wakeOrTimeout(this.changed.subscribe, { timeoutMs: this.pace.waitMs(), signal: within }) === 'aborted') within.throwIfAborted()
      }
    })
  }

  /**
   * Waits until the asker has read enough for `bytes` more, on the stream's reader clock. The
   * clock runs only while what the reader holds up leaves no room (ReaderBudget.readerHolds:
   * bytes it has not taken, and chunks reserved behind another stream's wait on it), not while
   * our own reservations do (a chunk of its other streams on its way from disk or waiting at our
   * upload cap: ours to finish); a read on any of the peer's streams starts it over (the budget
   * is the peer's). A sibling stream's close makes room but is no read: the clock goes on.
   */
  private async roomWithin (bytes: number, signal: AbortSignal): Promise<void> {
    const { budget } = this.server
    let peerRead = budget.read(this.peer)
    try {
      while (!budget.hasRoom(this.peer, bytes)) {
        const read = budget.read(this.peer)
        if (read > peerRead) {
          peerRead = read
          this.clock.restart()
        }
        if (budget.readerHolds(this.peer, bytes)) this.clock.run()
        else this.clock.pause()
        const leftMs = this.clock.leftMs()
        if (leftMs <= 0) throw new SlowReaderError(this.clock.limitMs)
        await sleep(Math.min(READER_BUDGET_POLL_MS, leftMs), signal)
      }
    } finally {
      this.clock.pause()
    }
  }

  /**
   * Sends a frame (in pieces of `pieceBytes`, if given) on the stream's reader clock: an asker
   * that leaves our bytes unread while it runs out is a slow reader.
   */
  private async sendWithin (parts: Uint8Array | Uint8Array[], signal: AbortSignal, pieceBytes?: number): Promise<void> {
    const list = Array.isArray(parts) ? parts : [parts]
    let length = 0
    for (const part of list) length += part.byteLength
    this.gauge.sentBytes(encodeVarint(length).byteLength + length)
    try {
      await onReaderClock(this.clock, signal, async (within) => {
        if (pieceBytes === undefined) await sendFrame(this.stream, list, { signal: within })
        else await sendFrameInPieces(this.stream, list, pieceBytes, { signal: within })
      })
    } finally {
      this.gauge.handed()
    }
    this.pace.sent()
  }

  private async send (pending: PendingRead, signal: AbortSignal): Promise<void> {
    const { request, result } = pending
    const { uploadSlots, uploadLimiter } = this.server.components
    const status = (status: ChunkResponse.Status): Uint8Array => ChunkResponse.encode({ object: idToBytes(request.object), index: request.index, status })
    let sent = false
    /** A framed read's buffer, until its send takes it over (then its write gives it back). */
    let unsent: FramedChunk | undefined
    try {
      const read = await result
      unsent = read.framed
      if (pending.cancelled) {
        await this.sendWithin(status(ChunkResponse.Status.CANCELLED), signal)
        return
      }
      if (read.error !== undefined) {
        if ((read.error as { code?: string }).code !== 'CHUNK_NOT_PRESENT') throw read.error
        await this.sendWithin(status(ChunkResponse.Status.NOT_PRESENT), signal)
        return
      }
      const { length } = read
      await uploadLimiter?.take(length, { signal, key: this.peer })
      if (pending.cancelled) {
        // Cancelled while it waited for the upload cap: nothing of it was sent.
        uploadLimiter?.giveBack(length)
        await this.sendWithin(status(ChunkResponse.Status.CANCELLED), signal)
        return
      }
      // From here the chunk is on its way: a CANCEL now finds nothing to stop.
      this.picked.delete(request.key)
      this.server.recordSent(request.key, this.peer, this.connectionId, request.object, request.index)
      sent = true
      // The header fields, then field 4 written by hand, so the chunk's pieces are not copied again.
      const head = [status(ChunkResponse.Status.OK), DATA_FIELD_TAG, encodeVarint(length)]
      if (read.framed === undefined) {
        await this.sendWithin([...head, ...read.pieces], signal, this.pace.pieceBytes(CHUNK_PIECE_BYTES))
      } else {
        unsent = undefined
        await this.sendFramedWithin(read.to, head, read.framed, signal)
      }
      this.server.init.onUploaded(this.peer, length)
    } finally {
      unsent?.release()
      if (!sent) this.server.unpicked(this.peer, request)
      this.picked.delete(request.key)
      this.gauge.release(MAX_CHUNK_RESPONSE_BYTES)
      uploadSlots.release()
    }
  }

  /**
   * A chunk framed in its read's buffer (chunk-reads.ts `framed`), sent as `sendWithin` sends:
   * the frame's head is written into the room before the chunk, and the whole frame goes to the
   * lane as views of that one buffer, which the lane's write gives back to the pool.
   */
  private async sendFramedWithin (stream: ChunkStream & BorrowingStream, head: Uint8Array[], framed: FramedChunk, signal: AbortSignal): Promise<void> {
    let length = framed.bytes.byteLength
    for (const part of head) length += part.byteLength
    const frameLength = encodeVarint(length)
    const headBytes = frameLength.byteLength + length - framed.bytes.byteLength
    // FRAME_HEAD_ROOM_BYTES holds any head of a chunk response (MAX_CHUNK_RESPONSE_BYTES): more is a bug here.
    if (headBytes > FRAME_HEAD_ROOM_BYTES) throw new Error(`a chunk response head of ${headBytes} bytes`)
    let at = FRAME_HEAD_ROOM_BYTES - headBytes
    const frame = framed.buffer.subarray(at, FRAME_HEAD_ROOM_BYTES + framed.bytes.byteLength)
    for (const part of [frameLength, ...head]) {
      framed.buffer.set(part, at)
      at += part.byteLength
    }
    this.gauge.sentBytes(frame.byteLength)
    try {
      await onReaderClock(this.clock, signal, async (within) => { await sendBorrowedFrame(stream, frame, this.pace.pieceBytes(CHUNK_PIECE_BYTES), framed.release, { signal: within }) })
    } finally {
      this.gauge.handed()
    }
    this.pace.sent()
  }
}

// ---- asking -------------------------------------------------------------------------------

export interface ChunkClientInit {
  open: (options: { signal: AbortSignal }) => Promise<ChunkStream>
  onResponse: (object: string, index: number, status: ChunkStatus, data: Uint8Array) => void
  /** The first bytes of the chunk asked as (object, index) arrived; the rest is on its way (chunk-response-head.ts). */
  onResponseStarted?: (object: string, index: number) => void
  /** The stream is gone; these requests were never answered. */
  onClosed: (unanswered: Array<{ object: string, index: number }>, err?: Error) => void
  openTimeoutMs: number
  /**
   * Memory for chunk-sized responses (see FrameReaderInit.allocate); `dataAt`, where the chunk's
   * bytes start in the frame when its head said (chunk-response-head.ts), so the memory can put
   * them on a page boundary: the store writes them O_DIRECT from there, without a copy.
   */
  allocate?: (bytes: number, dataAt?: number) => Uint8Array
}

/** The asking side of one peer's chunk stream; opened on the first request. */
export class ChunkClient {
  private stream: ChunkStream | undefined
  private opening: Promise<void> | undefined
  private readonly outstanding = new Map<string, { object: string, index: number }>()
  /** Outstanding requests we cancelled: only these may be answered CANCELLED. */
  private readonly cancelled = new Set<string>()
  /**
   * Cancelled requests asked for again before their answer came. The holder answers each
   * request once: OK (the bytes were already on their way), or CANCELLED, after which the
   * request goes out again. Sent at once instead, a holder still sending the first would see
   * the chunk asked twice, or answer the second DEFERRED for the copy it just sent.
   */
  private readonly reasked = new Set<string>()
  /** Requests (and cancels) made before the stream opened, in order. */
  private readonly backlog: Uint8Array[] = []
  /** Requests waiting for this tick's single write. */
  private readonly outgoing: Uint8Array[] = []
  private closed = false
  /** No new requests come here (a lane replaced this stream): it closes once every answer is in. */
  private retired = false
  private writing: Promise<void> = Promise.resolve()
  /** Where the chunk bytes of the response now arriving start in its frame, from its head (allocate). */
  private dataAt: number | undefined

  constructor (private readonly init: ChunkClientInit) {}

  get isClosed (): boolean {
    return this.closed
  }

  /** Whether a request for this chunk is out and unanswered here. */
  awaits (object: string, index: number): boolean {
    return this.outstanding.has(chunkKey(object, index))
  }

  /**
   * New requests go elsewhere now (the fetcher opened a stream on a lane): this stream closes,
   * gracefully, once its last answer is in, so no chunk on it is lost or asked twice.
   */
  retire (): void {
    this.retired = true
    if (this.outstanding.size === 0) this.close()
  }

  request (object: string, index: number): void {
    if (this.closed) return
    const key = chunkKey(object, index)
    if (this.outstanding.has(key)) {
      // Asked again after a cancel whose answer is still on its way: it is wanted after all.
      if (this.cancelled.has(key)) this.reasked.add(key)
      return
    }
    this.outstanding.set(key, { object, index })
    this.write(ChunkRequest.encode({ object: idToBytes(object), index, cancel: false }))
  }

  cancel (object: string, index: number): void {
    const key = chunkKey(object, index)
    // Cancelled on the wire already: only the wish to ask again goes.
    if (this.reasked.delete(key)) return
    if (this.closed || !this.outstanding.has(key) || this.cancelled.has(key)) return
    this.cancelled.add(key)
    this.write(ChunkRequest.encode({ object: idToBytes(object), index, cancel: true }))
  }

  close (err?: Error): void {
    if (this.stream !== undefined) {
      if (err !== undefined) this.stream.abort(err)
      else void this.stream.close().catch(() => {})
    }
    this.finish(err)
  }

  private write (message: Uint8Array): void {
    if (this.stream === undefined) {
      this.backlog.push(message)
      this.opening ??= this.openStream()
      return
    }
    // Requests made in one scheduler pass leave in one write: each write is a yamux frame,
    // a noise message and a syscall, which cost more than the 40-byte request itself.
    this.outgoing.push(message)
    if (this.outgoing.length === 1) queueMicrotask(() => { this.flush() })
  }

  private flush (): void {
    const stream = this.stream
    const messages = this.outgoing.splice(0)
    if (stream === undefined || messages.length === 0 || this.closed) return
    const list = new Uint8ArrayList()
    for (const message of messages) list.append(encodeVarint(message.byteLength), message)
    this.writing = this.writing.then(async () => { await sendFrames(stream, list) })
      .catch((err: unknown) => { this.close(err instanceof Error ? err : new Error(String(err))) })
  }

  private async openStream (): Promise<void> {
    try {
      const stream = await this.init.open({ signal: abortAfter(this.init.openTimeoutMs) })
      if (this.closed) {
        stream.abort(new Error('the chunk client closed while its stream opened'))
        return
      }
      this.stream = stream
      const allocate = this.init.allocate
      readFrames(stream, {
        maxFrameBytes: MAX_CHUNK_RESPONSE_BYTES,
        messageTimeoutMs: CHUNK_MESSAGE_TIMEOUT_MS,
        onFrame: (frame) => { this.onResponse(frame) },
        onFrameStart: (head) => { this.onResponseStart(head) },
        onEnd: () => { this.close() },
        // Asked right after the frame's head was read (onFrameStart), so `dataAt` is this frame's.
        allocate: allocate === undefined ? undefined : bytes => allocate(bytes, this.dataAt),
      })
      stream.addEventListener('close', (evt) => { this.finish(evt.error) }, { once: true })
      for (const message of this.backlog.splice(0)) this.write(message)
    } catch (err) {
      this.finish(err instanceof Error ? err : new Error(String(err)))
    }
  }

  private onResponseStart (head: Uint8Array): void {
    const started = chunkResponseHead(head)
    this.dataAt = started?.dataAt
    // Only for a request still standing: a cancelled one's bytes are not awaited.
    if (started === undefined) return
    const key = chunkKey(started.object, started.index)
    if (!this.outstanding.has(key) || this.cancelled.has(key)) return
    this.init.onResponseStarted?.(started.object, started.index)
  }

  private onResponse (frame: Uint8Array): void {
    const response = ChunkResponse.decode(frame)
    const object = bytesToId(response.object)
    const key = chunkKey(object, response.index)
    if (!this.outstanding.has(key)) throw new ProtocolViolationError('a chunk response nobody asked for')
    const wasCancelled = this.cancelled.delete(key)
    const wasReasked = this.reasked.delete(key)
    if (wasReasked && response.status === ChunkResponse.Status.CANCELLED && response.data.byteLength === 0) {
      // The cancel took: ask again, as the scheduler did meanwhile (it counts it in flight here).
      this.write(ChunkRequest.encode({ object: idToBytes(object), index: response.index, cancel: false }))
      return
    }
    this.outstanding.delete(key)
    let status: ChunkStatus
    switch (response.status) {
      case ChunkResponse.Status.OK: status = 'ok'; break
      case ChunkResponse.Status.NOT_PRESENT: status = 'not-present'; break
      case ChunkResponse.Status.CANCELLED: status = wasCancelled ? 'cancelled' : 'refused'; break
      case ChunkResponse.Status.DEFERRED: status = 'deferred'; break
      default: throw new ProtocolViolationError(`chunk response status ${String(response.status)}`)
    }
    if (status !== 'ok' && response.data.byteLength > 0) throw new ProtocolViolationError('a chunk response carries bytes with a non-OK status')
    this.init.onResponse(object, response.index, status, response.data)
    if (this.retired && this.outstanding.size === 0) this.close()
  }

  private finish (err?: Error): void {
    if (this.closed) return
    this.closed = true
    this.backlog.length = 0
    this.cancelled.clear()
    this.reasked.clear()
    const unanswered = [...this.outstanding.values()]
    this.outstanding.clear()
    this.init.onClosed(unanswered, err)
  }
}

