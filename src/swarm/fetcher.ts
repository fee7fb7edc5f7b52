import { bundleObjects, CHUNK_SIZE_BYTES, type BundleManifest } from '../manifest/index.js'
import type { ObjectState } from '../store/index.js'
import { BufferPool } from './buffer-pool.js'
import { ChunkClient, type ChunkStatus } from './chunk-protocol.js'
import { waitWhile, Wakers } from '../wait/index.js'
import { RecentSet } from '../recent/index.js'
import { MAX_BUFFERED_CHUNKS, MAX_CHUNK_RESPONSE_BYTES, OBJECT_STREAM_MIN_CHUNKS, RETIRING_STREAM_WAIT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { BadDataError, isRemoteFault } from './errors.js'
import type { LaneStream } from './lane-stream.js'
import { ObjectStreams } from './object-streams.js'
import type { HaveList, ObjectHolding } from './have-list.js'
import type { LocalBundles } from './local-bundles.js'
import type { OffenceKind, PeerScores } from './peer-score.js'
import { PullJob } from './pull-job.js'
import { RateLimiter } from './rate-limiter.js'
import { Scheduler, type RequestCounts, type SchedulerInit } from './scheduler.js'
import type { SwarmEventEmitter, PullProgress } from './swarm-events.js'
import type { SwarmLogger, SwarmStore } from './swarm-options.js'
import type { TransferStats } from './swarm-stats.js'
import type { ChunkStream } from './chunk-stream.js'

/** Objects asked to go first before their bundle is enlisted, remembered until it is (a bound against a stream of bogus asks). */
const MAX_AWAITING_PRIORITY = 1024
/** How long after a chunk failed to store here deferrals are not counted as refusals: three times a gateway's resend window (10 s). */
const LOST_CHUNKS_GRACE_MS = 30_000
/** A pull with no progress this long looks for more holders (FetcherInit.onStalled). */
const STALLED_PULL_SEARCH_MS = 5_000

export interface FetcherComponents {
  store: SwarmStore
  local: LocalBundles
  haveList: HaveList
  scores: PeerScores
  transfer: TransferStats
  events: SwarmEventEmitter
  log: SwarmLogger
  /** The clock every decision reads (Date.now unless a test drives time). */
  now?: () => number
}

/** A timer may fire a little before the clock reads its time: the deferral is over by then. */
const DEFERRAL_WAKE_SLACK_MS = 5

export interface FetcherInit {
  scheduler?: Partial<Omit<SchedulerInit, 'chunkSizeBytes'>>
  maxDownloadBytesPerSecond?: number
  /** Opens a chunk stream to a peer (the node shell owns the connections). */
  openChunkStream: (peer: string, options: { signal: AbortSignal }) => Promise<ChunkStream>
  /** A lane to `peer` for one object whole (lanes.ts objectLane); without it every object comes chunk by chunk. */
  openObjectLane?: (peer: string, signal: AbortSignal) => Promise<LaneStream | undefined>
  /** A peer misbehaved on a chunk stream or failed verification: charge it. */
  onOffence: (peer: string, kind: OffenceKind, detail: string) => void
  /** A peer answered DEFERRED or REFUSED: its pattern of refusals may be an offence. */
  onRefused: (peer: string) => void
  /** A chunk stream failed: the peer is useless to us until its have stream is renewed. */
  onChunkStreamFailed: (peer: string, err: Error) => void
  /** A chunk came from `peer`, now delivering at `rate` bytes per second (the lane is asked for on fast links). */
  onDelivered?: (peer: string, rate: number | undefined) => void
  /** A pull made no progress for `stalledForMs`: look for more holders of its bundle. */
  onStalled: (bundleId: string, stalledForMs: number) => void
  warn: (message: string, error?: Error) => void
}

export interface FetchOptions {
  signal: AbortSignal
  onProgress?: (progress: PullProgress) => void
  priorityObject?: string
  /** Only these objects of the bundle (PullOptions.objects). */
  objects?: ReadonlySet<string>
  /** PullOptions.background: asked for only when no other pull can use the link. */
  background?: boolean
  /** Called once the pull has chunks to fetch (not when the store held everything already). */
  onStarted?: () => void
}

/**
 * Pulls and chunk traffic: the scheduler, one chunk client per peer, the memory responses
 * land in, and the pull jobs waiting on objects. It knows peers by ID only; connections,
 * have streams and penalties belong to the node shell (swarm.ts).
 */
export class Fetcher {
  private readonly store: SwarmStore
  private readonly local: LocalBundles
  private readonly haveList: HaveList
  private readonly scores: PeerScores
  private readonly transfer: TransferStats
  private readonly events: SwarmEventEmitter
  private readonly log: SwarmLogger
  private readonly now: () => number
  private readonly init: FetcherInit
  private readonly scheduler: Scheduler
  /** The node's download cap (--max-download); blob streams from the fleet take from it too (swarm.ts). */
  readonly downloadLimiter: RateLimiter | undefined
  private readonly clients = new Map<string, ChunkClient>()
  /** Chunk streams a lane replaced, finishing the requests they carry (renewChunkStream). */
  private readonly retiring = new Map<string, Set<ChunkClient>>()
  /** Woken whenever a peer's last retiring chunk stream closes (afterRetiring). */
  private readonly retiredWakers = new Wakers()
  /** Chunk responses are assembled here and the memory reused once the store has them. */
  private readonly receiveBuffers: BufferPool
  private readonly jobs = new Set<PullJob>()
  /** Objects clients wait on that come whole from one holder over an object lane (object-streams.ts). */
  private readonly objectStreams: ObjectStreams
  /** Neighbours that are gateways: asked for an object lane only when no edge holds the object whole. */
  private readonly gatewayPeers = new Set<string>()
  private readonly objectJobs = new Map<string, Set<PullJob>>()
  /** Chunks handed to the store, by `object:index`, so its 'chunk:stored' event names the sender. */
  private readonly arriving = new Map<string, { peer: string, bytes: number }>()
  /**
   * When this node last failed to store a chunk it was sent (a full disk): the chunks it had
   * then were sent again by no one for a while, as a gateway defers the re-ask of a chunk it
   * sent on the same connection (chunk-protocol.ts `sentRecently`, the leech rule), and those
   * deferrals are this node's doing, not refusals to charge the gateway for (they banned it).
   */
  private lostChunksAt = -Infinity
  /**
   * Objects a client asked for before any pull wanted them (the manifest of a tag known only
   * from a ref record is asked for while its bundle's manifest is still on the way): they go
   * first as soon as a pull enlists them, instead of being forgotten.
   */
  private readonly awaitingPriority = new RecentSet<string>(MAX_AWAITING_PRIORITY)
  /** How many clients wait on each object, in the order the objects were first asked for (Scheduler.clientWaits). */
  private readonly waiters = new Map<string, number>()
  private pumpTimer: NodeJS.Timeout | undefined
  /** Pumps when a gateway's deferral runs out (deferralWake); `deferralDueAt` is the last one due. */
  private deferralTimer: NodeJS.Timeout | undefined
  private deferralDueAt = 0
  /** Looks for overdue requests when the first would turn so (overdueWake); `overdueDueAt` is when it fires. */
  private overdueTimer: NodeJS.Timeout | undefined
  private overdueDueAt = Infinity
  private pumpQueued = false
  private running = false
  private stopController = new AbortController()

  constructor (components: FetcherComponents, init: FetcherInit) {
    this.store = components.store
    this.local = components.local
    this.haveList = components.haveList
    this.scores = components.scores
    this.transfer = components.transfer
    this.events = components.events
    this.log = components.log
    this.now = components.now ?? Date.now
    this.init = init
    this.scheduler = new Scheduler({ ...init.scheduler, chunkSizeBytes: CHUNK_SIZE_BYTES })
    this.receiveBuffers = new BufferPool(MAX_CHUNK_RESPONSE_BYTES, (init.scheduler?.maxBufferedChunks ?? MAX_BUFFERED_CHUNKS) + 4, { aligned: true })
    this.downloadLimiter = init.maxDownloadBytesPerSecond === undefined ? undefined : new RateLimiter(init.maxDownloadBytesPerSecond)
    const maxBufferedChunks = init.scheduler?.maxBufferedChunks ?? MAX_BUFFERED_CHUNKS
    this.objectStreams = new ObjectStreams({
      haveList: this.haveList,
      local: this.local,
      log: this.log,
      events: this.events,
      openLane: async (peer, signal) => await init.openObjectLane?.(peer, signal),
      usable: (peer) => this.scheduler.hasPeer(peer),
      isGateway: (peer) => this.gatewayPeers.has(peer),
      claim: (object) => this.claimForStream(object),
      release: (object) => { void this.wantAgain(object) },
      take: () => this.receiveBuffers.take(CHUNK_SIZE_BYTES, 0),
      giveBack: (memory) => { this.receiveBuffers.lease(memory)?.release() },
      chunk: async (peer, object, index, bytes, onBad) => { await this.storeStreamed(peer, object, index, bytes, onBad) },
      onViolation: (peer, detail) => { this.init.onOffence(peer, 'violation', detail) },
      onEnded: () => { for (const object of this.waiters.keys()) this.considerStream(object) },
      maxBufferedChunks,
    }, () => this.stopController.signal)
  }

  start (): void {
    this.stopController = new AbortController()
    this.running = true
  }

  /** Fails every pull with `reason` and drops every chunk stream. */
  stop (reason: Error): void {
    this.running = false
    this.stopController.abort(reason)
    this.objectStreams.stopAll(reason)
    if (this.pumpTimer !== undefined) clearTimeout(this.pumpTimer)
    this.pumpTimer = undefined
    if (this.deferralTimer !== undefined) clearTimeout(this.deferralTimer)
    this.deferralTimer = undefined
    if (this.overdueTimer !== undefined) clearTimeout(this.overdueTimer)
    this.overdueTimer = undefined
    this.overdueDueAt = Infinity
    for (const job of this.jobs) job.fail(reason)
    this.jobs.clear()
    for (const client of this.clients.values()) client.close()
    this.clients.clear()
    for (const set of this.retiring.values()) for (const client of set) client.close()
    this.retiring.clear()
  }

  // ---- pulls --------------------------------------------------------------------------

  /** Fetches every missing chunk of a bundle whose manifest the store holds; resolves when all its objects are complete. */
  async fetch (bundleId: string, bundle: BundleManifest, options: FetchOptions): Promise<void> {
    const job = new PullJob(bundleId, () => this.scheduler.busyPeers(), (progress) => {
      options.onProgress?.(progress)
      this.events.emit('pull:progress', progress)
    }, this.now)
    await this.enlist(job, bundle, options)
    if (job.remaining.size === 0) {
      job.finish()
      this.events.emit('pull:completed', { bundleId })
      return
    }
    this.jobs.add(job)
    options.onStarted?.()
    this.schedulePump()
    try {
      await job.wait(options.signal)
      this.log.info('pull completed', { bundleId, bytes: job.progress.totalBytes })
      this.events.emit('pull:completed', { bundleId })
    } finally {
      this.dismiss(job)
    }
  }

  /** Whether a pull of this bundle is under way. */
  pulling (bundleId: string): boolean {
    for (const job of this.jobs) if (job.bundleId === bundleId && !job.isDone) return true
    return false
  }

  /**
   * Fetches this object's chunks before anything else, in order (an HTTP client waits on it).
   * An object no pull wants yet goes first once one does.
   */
  prioritize (object: string): void {
    if (!this.scheduler.isWanted(object)) {
      this.awaitingPriority.add(object)
      return
    }
    this.scheduler.prioritize(object)
    this.schedulePump()
  }

  /**
   * A client waits on this object until it calls the returned release: its chunks go ahead of
   * every pull's own order, taking turns with the other objects clients wait on (see
   * Scheduler.clientWaits). Once no client waits, it stays first among the prioritized ones.
   */
  waitFor (object: string): () => void {
    this.prioritize(object)
    this.waiters.set(object, (this.waiters.get(object) ?? 0) + 1)
    this.scheduler.clientWaits(object)
    this.considerStream(object)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.waiters.get(object) ?? 1) - 1
      if (left > 0) {
        this.waiters.set(object, left)
        return
      }
      this.waiters.delete(object)
      this.scheduler.clientLeft(object)
    }
  }

  /**
   * Registers a job's objects with the scheduler, seeded with what neighbours already hold.
   * Objects of one chunk go first: an image's manifests, index and config are all small, and
   * a registry client needs them before any layer (the layers it asks for next are put ahead
   * of them when it asks). Then whatever a client asked for before this pull began.
   *
   * The store is asked what it holds of every object first, and the scheduler learns the whole
   * job afterwards in one synchronous pass: a pump (a have batch, the tick) that ran between
   * two of the store's answers handed out the objects wanted so far in the scheduler's own
   * random order before the asked-for order was set (a loaded CI run: a layer's first chunks
   * asked after its later ones, and its completion read 4 MiB back).
   */
  private async enlist (job: PullJob, bundle: BundleManifest, options: Pick<FetchOptions, 'objects' | 'background' | 'priorityObject'>): Promise<void> {
    const only = options.objects
    const background = options.background === true
    const held = []
    for (const object of bundleObjects(bundle)) {
      if (only === undefined || only.has(object.hash)) held.push({ object, state: await this.store.objectState(object.hash) })
    }
    const asked = new Set<string>()
    for (const { object, state } of held) {
      const chunks = Math.ceil(object.size / bundle.chunkSize)
      if (object.size === 0 || state.state === 'complete') {
        job.addObject(object.hash, { bytes: object.size, chunks, presentBytes: object.size, presentChunks: chunks, complete: true })
        continue
      }
      const missing = missingChunks(state, chunks)
      const presentChunks = chunks - missing.length
      const lastMissing = missing.includes(chunks - 1)
      const presentBytes = presentChunks * bundle.chunkSize - (lastMissing ? 0 : chunks * bundle.chunkSize - object.size)
      job.addObject(object.hash, { bytes: object.size, chunks, presentBytes: Math.max(0, presentBytes), presentChunks, complete: false })
      let jobs = this.objectJobs.get(object.hash)
      if (jobs === undefined) {
        jobs = new Set()
        this.objectJobs.set(object.hash, jobs)
      }
      jobs.add(job)
      // Coming whole over an object lane: the scheduler has it back if that stream falls short.
      if (this.objectStreams.has(object.hash)) continue
      if (!this.scheduler.isWanted(object.hash)) {
        this.want(object.hash, object.size, missing, background)
        // Small documents first, except in background work: prioritized, they would go ahead of a client's pull.
        if (chunks === 1 && !background) this.scheduler.prioritize(object.hash)
      } else if (!background) {
        // A background pull's object that a foreground pull wants too is foreground now.
        this.scheduler.want(object.hash, object.size, missing)
      }
      if (this.awaitingPriority.has(object.hash)) asked.add(object.hash)
    }
    // In the order they were asked (the latest goes first), not the bundle's.
    for (const object of this.awaitingPriority) {
      if (!asked.has(object)) continue
      this.awaitingPriority.delete(object)
      this.scheduler.prioritize(object)
    }
    // The pull's own priority object ahead of those (set after this pass, a pump during the
    // reads below could hand out other chunks first).
    if (options.priorityObject !== undefined && job.remaining.size > 0) this.prioritize(options.priorityObject)
    // Whatever clients wait on goes ahead of that, in the order they asked.
    for (const object of this.waiters.keys()) {
      this.scheduler.clientWaits(object)
      this.considerStream(object)
    }
    // An object that completed while we looked (another pull, a push) sent its event already.
    for (const object of [...job.remaining]) {
      if ((await this.store.objectState(object)).state === 'complete') this.objectCompleted(object)
    }
  }

  /** The scheduler fetches `missing` of `object` from the neighbours that say they hold it. */
  private want (object: string, size: number, missing: Iterable<number>, background: boolean): void {
    this.scheduler.want(object, size, missing, { background })
    for (const [peer, holding] of this.haveList.holdersOf(object)) {
      if (holding === true) this.scheduler.addWholeHolder(peer, object)
      else this.scheduler.addBitmapHolder(peer, object, holding)
    }
  }

  // ---- objects whole over an object lane (object-streams.ts) --------------------------

  /** The first chunk an object lane would bring of `object`, or undefined when it has too few chunks left (or none wanted) to be worth one. */
  private streamStart (object: string): number | undefined {
    const needed = this.scheduler.neededFrom(object)
    return needed === undefined || needed.remaining < OBJECT_STREAM_MIN_CHUNKS ? undefined : needed.first
  }

  /** A client waits on `object`: it comes over an object lane if it has enough chunks left and a neighbour holds it whole. */
  private considerStream (object: string): void {
    // A download cap paces requests chunk by chunk (pump); a stream would go around it.
    if (this.init.openObjectLane === undefined || this.downloadLimiter !== undefined || !this.running) return
    if (this.streamStart(object) !== undefined) this.objectStreams.consider(object)
  }

  /** The object lane is up: the scheduler lets `object` go (its requests cancelled), and the stream starts at its first chunk not yet here. */
  private claimForStream (object: string): number | undefined {
    const first = this.streamStart(object)
    if (first === undefined || !this.waiters.has(object)) return undefined
    this.cancel(this.scheduler.unwant(object))
    return first
  }

  /** A stream of `object` ended: what it did not bring is fetched chunk by chunk, first, if a pull still wants it. */
  private async wantAgain (object: string): Promise<void> {
    const size = this.local.object(object)?.size
    if (size === undefined || !this.objectJobs.has(object) || !this.running) return
    const state = await this.store.objectState(object)
    if (this.objectStreams.has(object) || this.scheduler.isWanted(object) || !this.objectJobs.has(object)) return
    if (state.state === 'complete') {
      this.objectCompleted(object)
      return
    }
    this.want(object, size, missingChunks(state, Math.ceil(size / CHUNK_SIZE_BYTES)), false)
    this.scheduler.prioritize(object)
    if (this.waiters.has(object)) this.scheduler.clientWaits(object)
    this.schedulePump()
  }

  /**
   * A chunk an object lane brought: checked and stored as a chunk response's is. Resolves once
   * its memory is free (written, and let go by a response that sent it from there); `onBad`
   * hears when it failed its check or could not be stored.
   */
  private async storeStreamed (peer: string, object: string, index: number, bytes: Uint8Array, onBad: (err: Error) => void): Promise<void> {
    const lease = this.receiveBuffers.lease(bytes)
    this.transfer.downloaded(peer, bytes.byteLength, false)
    await new Promise<void>((resolve) => {
      this.storeChunk(peer, object, index, bytes, () => {
        lease?.release()
        resolve()
      }).then((verdict) => {
        if (verdict === 'rejected') onBad(new BadDataError(`chunk ${index} of ${object} from ${peer} failed verification`))
        else if (verdict === 'failed') onBad(new Error(`chunk ${index} of ${object} could not be stored here`))
      }, (err: unknown) => { onBad(err instanceof Error ? err : new Error(String(err))) })
    })
  }

  /** A job ended (done, failed or aborted): objects nobody else waits for are no longer fetched. */
  private dismiss (job: PullJob): void {
    this.jobs.delete(job)
    for (const object of job.remaining) {
      const jobs = this.objectJobs.get(object)
      jobs?.delete(job)
      if (jobs !== undefined && jobs.size > 0) continue
      this.objectJobs.delete(object)
      this.cancel(this.scheduler.unwant(object))
      this.objectStreams.stop(object)
    }
  }

  /** An object is complete in the store (fetched here, pushed, or pulled by another job). */
  objectCompleted (object: string): void {
    this.awaitingPriority.delete(object)
    this.cancel(this.scheduler.unwant(object))
    this.objectStreams.stop(object)
    const jobs = this.objectJobs.get(object)
    this.objectJobs.delete(object)
    for (const job of jobs ?? []) job.objectComplete(object)
  }

  private failObject (object: string, err: Error): void {
    const jobs = this.objectJobs.get(object)
    for (const job of jobs ?? []) job.fail(err)
  }

  /** The store recorded a chunk: tell who sent it and move the pulls waiting on it. */
  chunkStored (object: string, index: number): void {
    // The store emits this before 'object:complete', so progress always precedes completion.
    const key = `${object}:${index}`
    const arrival = this.arriving.get(key)
    this.arriving.delete(key)
    if (arrival !== undefined) this.events.emit('chunk:received', { peer: arrival.peer, object, index, bytes: arrival.bytes })
    const jobs = this.objectJobs.get(object)
    if (jobs === undefined) return
    const bytes = arrival?.bytes ?? Math.min(CHUNK_SIZE_BYTES, (this.local.object(object)?.size ?? 0) - index * CHUNK_SIZE_BYTES)
    for (const job of jobs) job.chunkStored(bytes)
  }

  // ---- holders ------------------------------------------------------------------------

  peerJoined (peer: string, gateway: boolean): void {
    if (gateway) this.gatewayPeers.add(peer)
    else this.gatewayPeers.delete(peer)
    this.scheduler.addPeer(peer, { gateway }, this.now())
    this.schedulePump()
  }

  hasPeer (peer: string): boolean {
    return this.scheduler.hasPeer(peer)
  }

  /** A neighbour left: its requests move to other holders and its chunk stream closes. */
  peerLeft (peer: string): void {
    this.gatewayPeers.delete(peer)
    this.scheduler.removePeer(peer)
    for (const client of this.clientsOf(peer)) client.close()
    this.clients.delete(peer)
    this.schedulePump()
  }

  /** Closes a peer's chunk stream with `err` (a ban). */
  closePeer (peer: string, err: Error): void {
    for (const client of this.clientsOf(peer)) client.close(err)
  }

  /**
   * A lane to `peer` is up: its next requests go on a new chunk stream (openChunkStream picks
   * the lane), while the current stream answers what it was asked and then closes. Nothing
   * is asked twice: a request that stream carries stays there until answered or cancelled.
   */
  renewChunkStream (peer: string): void {
    const client = this.clients.get(peer)
    if (client === undefined || client.isClosed) return
    this.clients.delete(peer)
    let set = this.retiring.get(peer)
    if (set === undefined) {
      set = new Set()
      this.retiring.set(peer, set)
    }
    set.add(client)
    client.retire()
    this.schedulePump()
  }

  /**
   * Resolves once `peer` has no retiring chunk stream, or after RETIRING_STREAM_WAIT_MS: a
   * retiring stream whose holder stopped answering costs the lane's stream that wait (and the
   * object a read back at completion), never the pull.
   */
  private async afterRetiring (peer: string, signal: AbortSignal): Promise<void> {
    if (await waitWhile(() => this.retiring.has(peer), this.retiredWakers.subscribe, { timeoutMs: RETIRING_STREAM_WAIT_MS, signal })) return
    this.log.debug('a retiring chunk stream still carries requests; the new one opens beside it', { peer, waitedMs: RETIRING_STREAM_WAIT_MS })
  }

  /** The peer's current chunk client and those retiring. */
  private clientsOf (peer: string): ChunkClient[] {
    const current = this.clients.get(peer)
    return [...(current === undefined ? [] : [current]), ...this.retiring.get(peer) ?? []]
  }

  holds (peer: string, object: string, holding: ObjectHolding): void {
    if (holding === true) this.scheduler.addWholeHolder(peer, object)
    else this.scheduler.addBitmapHolder(peer, object, holding)
    if (holding === true && this.waiters.has(object)) this.considerStream(object)
    this.schedulePump()
  }

  holdsChunks (peer: string, object: string, indexes: number[]): void {
    this.scheduler.addHolder(peer, object, indexes)
    this.schedulePump()
  }

  /** Measured download rate from a peer, bytes per second. */
  requestCounts (): RequestCounts {
    return this.scheduler.requestCounts()
  }

  objectStreamStats (): ReturnType<ObjectStreams['stats']> {
    return this.objectStreams.stats()
  }

  rate (peer: string): number | undefined {
    return this.scheduler.rate(peer)
  }

  inFlight (peer: string): number {
    return this.scheduler.inFlight(peer)
  }

  // ---- chunk traffic ------------------------------------------------------------------

  private cancel (requests: Iterable<{ peer: string, object: string, index: number }>): void {
    for (const request of requests) {
      for (const client of this.clientsOf(request.peer)) client.cancel(request.object, request.index)
    }
  }

  private schedulePump (): void {
    if (this.pumpQueued || !this.running) return
    this.pumpQueued = true
    // setImmediate, not a microtask: a burst of have messages and responses becomes one pass.
    setImmediate(() => {
      this.pumpQueued = false
      this.pump()
    })
  }

  /** Sends the requests the scheduler hands out, within the download cap. */
  private pump (): void {
    if (!this.running) return
    try {
      this.sendRequests()
    } finally {
      this.overdueWake()
    }
  }

  private sendRequests (): void {
    const now = this.now()
    this.cancel(this.scheduler.takeReleased())
    const limiter = this.downloadLimiter
    if (limiter === undefined) {
      for (const request of this.scheduler.next(now)) this.request(request.peer, request.object, request.index)
      // Requests next() moved to another holder leave their old one now, not at the next pump.
      this.cancel(this.scheduler.takeReleased())
      return
    }
    for (;;) {
      const wait = limiter.waitMs()
      if (wait > 0) {
        if (this.pumpTimer === undefined) {
          this.pumpTimer = setTimeout(() => {
            this.pumpTimer = undefined
            this.pump()
          }, wait)
        }
        return
      }
      const [request] = this.scheduler.next(now, 1)
      if (request === undefined) return
      limiter.tryTake(CHUNK_SIZE_BYTES)
      this.request(request.peer, request.object, request.index)
      this.cancel(this.scheduler.takeReleased())
    }
  }

  /**
   * Pumps once a gateway may be asked again for a chunk it deferred. Nothing else pumps while
   * an edge has nothing but deferred chunks left to ask (no chunk arrives, no have batch): the
   * scheduler's tick did, up to a second late, and an edge sat idle for 2 s after a 1 s
   * deferral (hostile row 10). Deferrals come in bursts, so one timer serves them: it fires at
   * the first one due and comes back for the last.
   */
  private deferralWake (dueAt: number): void {
    this.deferralDueAt = Math.max(this.deferralDueAt, dueAt)
    if (this.deferralTimer !== undefined || !this.running) return
    this.deferralTimer = setTimeout(() => {
      this.deferralTimer = undefined
      this.schedulePump()
      if (this.deferralDueAt > this.now()) this.deferralWake(this.deferralDueAt)
    }, Math.max(0, dueAt - this.now()) + DEFERRAL_WAKE_SLACK_MS)
    this.deferralTimer.unref()
  }

  /**
   * Runs the scheduler's checks (tick) when an edge's request would turn overdue, rather than
   * at the next tick: a pull held by a silent holder waited up to a second past the rule's 5 s
   * (hostile row 2). Looked at again after every pump, as arrivals move the time.
   */
  private overdueWake (): void {
    const dueAt = this.scheduler.nextOverdueAt()
    // One due already and not acted on (the tick found the peer slow or stalled instead) is the
    // tick's to look at again: arming for it would spin.
    if (dueAt === undefined || dueAt <= this.now() || !this.running) return
    if (this.overdueTimer !== undefined && this.overdueDueAt <= dueAt) return
    if (this.overdueTimer !== undefined) clearTimeout(this.overdueTimer)
    this.overdueDueAt = dueAt
    this.overdueTimer = setTimeout(() => {
      this.overdueTimer = undefined
      this.overdueDueAt = Infinity
      this.tick()
    }, Math.max(0, dueAt - this.now()) + DEFERRAL_WAKE_SLACK_MS)
    this.overdueTimer.unref()
  }

  /** Sends a request to `peer`: on a retiring stream that still awaits it (asked again after a cancel), else on the current one. */
  private request (peer: string, object: string, index: number): void {
    for (const old of this.retiring.get(peer) ?? []) {
      if (old.awaits(object, index)) {
        old.request(object, index)
        return
      }
    }
    this.client(peer).request(object, index)
  }

  private client (peer: string): ChunkClient {
    const current = this.clients.get(peer)
    if (current !== undefined && !current.isClosed) return current
    const client: ChunkClient = new ChunkClient({
      openTimeoutMs: STREAM_OPEN_TIMEOUT_MS,
      allocate: (bytes, dataAt) => this.receiveBuffers.take(bytes, dataAt),
      open: async ({ signal }) => {
        // A stream that replaces a retiring one (renewChunkStream) opens once that one has
        // answered what it carries: one holder's chunks keep arriving in order, which the
        // store's prefix hash needs to finish an object without reading it back.
        await this.afterRetiring(peer, signal)
        return await this.init.openChunkStream(peer, { signal })
      },
      onResponse: (object, index, status, data) => { this.onChunkResponse(peer, object, index, status, data) },
      onResponseStarted: (object, index) => { this.scheduler.responseStarted(peer, object, index, this.now()) },
      onClosed: (unanswered, err) => {
        if (this.clients.get(peer) === client) this.clients.delete(peer)
        const retiring = this.retiring.get(peer)
        if (retiring?.delete(client) === true && retiring.size === 0) {
          this.retiring.delete(peer)
          this.retiredWakers.wakeAll()
        }
        const now = this.now()
        for (const request of unanswered) this.scheduler.answered(peer, request.object, request.index, now)
        this.downloadLimiter?.giveBack(unanswered.length * CHUNK_SIZE_BYTES)
        if (isRemoteFault(err)) this.init.onOffence(peer, 'violation', `chunk stream: ${(err as Error).message}`)
        if (err !== undefined && this.running) this.init.onChunkStreamFailed(peer, err)
        this.schedulePump()
      },
    })
    this.clients.set(peer, client)
    return client
  }

  private onChunkResponse (peer: string, object: string, index: number, status: ChunkStatus, data: Uint8Array): void {
    const now = this.now()
    // Each request took a chunk of the download cap when it went out (pump): what did not come
    // goes back. A holder that advertised everything and refused everything spent a capped
    // pull's whole budget on refusals (hostile row 1: twice the pull time at 8 MiB/s).
    this.downloadLimiter?.giveBack(CHUNK_SIZE_BYTES - data.byteLength)
    if (status === 'cancelled') {
      this.scheduler.answered(peer, object, index, now)
    } else if (status === 'not-present') {
      this.scheduler.notPresent(peer, object, index, now)
    } else if (status === 'deferred') {
      const askAgainAt = this.scheduler.deferred(peer, object, index, now)
      if (askAgainAt !== undefined) this.deferralWake(askAgainAt)
      if (now - this.lostChunksAt > LOST_CHUNKS_GRACE_MS) this.init.onRefused(peer)
    } else if (status === 'refused') {
      this.scheduler.refused(peer, object, index, now)
      this.init.onRefused(peer)
    } else {
      const verdict = this.scheduler.delivered(peer, object, index, now)
      this.transfer.downloaded(peer, data.byteLength, !verdict.accepted)
      this.init.onDelivered?.(peer, this.scheduler.rate(peer))
      this.cancel(verdict.cancel)
      // The memory goes back to the pool through its lease, which gives it back once at most.
      const lease = this.receiveBuffers.lease(data)
      const giveBack = (): void => { lease?.release() }
      if (verdict.accepted) {
        void this.storeChunk(peer, object, index, data, giveBack)
          .catch((err: Error) => { this.init.warn(`storing chunk ${index} of ${object} failed`, err) })
      } else {
        giveBack()
      }
    }
    this.schedulePump()
  }

  /**
   * Verifies (the store hashes it against the bundle's table) and stores one chunk; says whether
   * it was stored, failed its check, or could not be stored. `free` runs once, when nothing reads
   * `data` any more: the store wrote it (not after its commit) and every reader that kept it past
   * 'chunk:verified' (a response sending it from this memory) let go.
   */
  private async storeChunk (peer: string, object: string, index: number, data: Uint8Array, free: () => void): Promise<'stored' | 'rejected' | 'failed'> {
    let readers = 0
    const letGo = (): void => { if (--readers === 0) free() }
    const keep = (): (() => void) => {
      readers++
      let kept = true
      return () => {
        if (!kept) return
        kept = false
        letGo()
      }
    }
    const written = keep()
    const bundleId = this.local.bundleOf(object)
    if (bundleId === undefined) {
      this.scheduler.storeFailed(object, index)
      written()
      return 'failed'
    }
    const key = `${object}:${index}`
    this.arriving.set(key, { peer, bytes: data.byteLength })
    try {
      const result = await this.store.writeChunk(bundleId, object, index, data, { signal: this.stopController.signal, onWritten: written, keep })
      const objectDone = this.scheduler.stored(object, index)
      this.scores.served(peer)
      if (result.objectComplete || objectDone) this.objectCompleted(object)
      return 'stored'
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'CHUNK_HASH_MISMATCH') {
        this.transfer.rejected(peer)
        this.scheduler.rejected(peer, object, index)
        this.events.emit('chunk:rejected', { peer, object, index, reason: (err as Error).message })
        this.init.onOffence(peer, 'bad-data', `sent chunk ${index} of ${object}, which failed verification`)
        return 'rejected'
      }
      if (this.running) {
        // A disk or corruption error: the pulls waiting on this object cannot finish.
        this.lostChunksAt = this.now()
        this.scheduler.storeFailed(object, index)
        this.failObject(object, err as Error)
      }
      return 'failed'
    } finally {
      // The store's hold, if it threw before the bytes were written.
      written()
      this.arriving.delete(key)
      this.schedulePump()
    }
  }

  /** Releases stalled requests, charges what the scheduler saw, and reports pulls that stalled. */
  tick (): void {
    if (!this.running) return
    const now = this.now()
    this.cancel(this.scheduler.expire(now))
    for (const offence of this.scheduler.takeOffences()) this.init.onOffence(offence.peer, offence.kind, offence.detail)
    for (const job of this.jobs) {
      if (now - job.lastProgressAt >= STALLED_PULL_SEARCH_MS) this.init.onStalled(job.bundleId, now - job.lastProgressAt)
    }
    this.schedulePump()
  }
}

/** The chunks the store lacks of an object of `chunks` chunks that is not complete. */
function missingChunks (state: ObjectState, chunks: number): number[] {
  return state.state === 'partial' ? state.bitmap.missing() : [...Array(chunks).keys()]
}
