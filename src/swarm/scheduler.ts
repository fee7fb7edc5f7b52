import {
  CHUNK_REQUEST_TIMEOUT_MS, CHUNK_STALL_TIMEOUT_MS, END_GAME_CANDIDATE_FLOOR, END_GAME_MAX_REQUESTS_PER_CHUNK, END_GAME_MIN_AGE_MS, GATEWAY_DEFER_MAX_MS, GATEWAY_DEFER_MS, SLOW_EDGE_QUEUE_CHUNK_TIMES, SLOW_EDGE_QUEUE_MS, INITIAL_REQUESTS_PER_PEER, SLOW_REQUEST_MS,
  BUSY_HOLDER_CHUNK_TIMES, BUSY_HOLDER_MIN_MS, BUSY_HOLDER_UNMEASURED_MS,
  MAX_BUFFERED_CHUNKS, MAX_OUTSTANDING_REQUESTS, MAX_REQUESTS_PER_PEER, MIGRATE_SPEEDUP, MIN_REQUESTS_PER_PEER, OVERDUE_FACTOR, OVERDUE_MIN_MS, RATE_SMOOTHING,
  WINDOW_TARGET_MS, MAX_ACTIVE_HOLDERS, ACTIVE_HOLDERS_ROTATE_MS,
} from './constants.js'
import type { ChunkBitmap } from '../manifest/index.js'
import { RecentMap } from '../recent/index.js'

/**
 * Decides which chunk to ask of which peer. Pure logic with an injected clock and random
 * source, no libp2p and no I/O, so scripts/simulate can drive it over simulated links.
 *
 * Policy (DESIGN.md "The swarm"):
 * - chunks of objects a client waits on first, each in index order, the waited objects taking
 *   turns a chunk at a time (`clientWaits`): a 25 KB layer asked a few ms before or after a
 *   512 MiB one is served within a round, and no waiting response sits silent behind another;
 * - then chunks of a prioritized object (a pull's manifest order, small documents), in index order;
 * - chunks of background objects (a preheat's) only while no other object has a chunk some
 *   peer could send or one in flight: a containerd pull takes the link from a preheat;
 * - otherwise rarest first across what neighbours hold, ties in a random order per node so
 *   nodes pulling together start on different chunks;
 * - each chunk asked of one peer at a time; a request queued behind others at a holder moves
 *   to an idle holder that would deliver it MIGRATE_SPEEDUP times sooner (not the head of the
 *   holder's queue, which may be on the wire), and a request waiting at a busy holder (several
 *   chunk times at the fastest rate seen, nothing from that holder since: it serves other
 *   askers first) moves to a holder with nothing of ours in flight, the head too;
 * - the end game only once every remaining chunk is in flight: a request that is late by
 *   its holder's own rate is also asked of an idle holder, and the loser is cancelled;
 * - memory held (chunks awaiting storage) and requests outstanding have separate limits;
 * - a gateway is asked only for chunks no other (non-gateway) neighbour holds, so it sends
 *   what the swarm lacks rather than one copy per edge;
 * - each peer's window of outstanding requests holds ~WINDOW_TARGET_MS of its measured rate;
 * - a stalled peer's requests, a timed-out request and a dropped peer's requests go back to
 *   the pool and are asked elsewhere;
 * - an edge that delivers nothing for several times the other holders' chunk time is judged
 *   against them: its late requests are also asked of another holder, and its advertisements
 *   no longer keep the gateway away (OVERDUE_MIN_MS).
 */

export type PeerKey = string

export interface ChunkAssignment {
  peer: PeerKey
  object: string
  index: number
}

export interface SchedulerInit {
  chunkSizeBytes: number
  initialRequestsPerPeer?: number
  minRequestsPerPeer?: number
  maxRequestsPerPeer?: number
  windowTargetMs?: number
  stallTimeoutMs?: number
  requestTimeoutMs?: number
  endGameMaxRequestsPerChunk?: number
  /** The end game starts when every remaining chunk is in flight and at most this many are… */
  endGameThresholdChunks?: number
  /** …and duplicates only requests that have waited at least this long, and longer than twice their holder's expected time. */
  endGameMinAgeMs?: number
  /** A request moves to an idle holder that would deliver it this many times sooner. */
  migrateSpeedup?: number
  /**
   * A request waiting this many times one chunk's time at the fastest measured rate, at a
   * holder that sent us nothing since, waits at a holder busy with other askers…
   */
  busyHolderChunkTimes?: number
  /** …and never sooner than this… */
  busyHolderMinMs?: number
  /** …or after this long while no peer's rate is measured yet. */
  busyHolderUnmeasuredMs?: number
  /** After a gateway defers a chunk, how long before that gateway is asked for it again… */
  gatewayDeferMs?: number
  /** …or one chunk time at that gateway's measured rate to us, when longer, up to this. */
  gatewayDeferMaxMs?: number
  /** A full edge queue this slow no longer keeps a gateway away (SLOW_EDGE_QUEUE_MS). */
  slowEdgeQueueMs?: number
  /**
   * A request this old, at a peer that delivered nothing since it was sent and nothing at all
   * for twice this, moves to another holder when one can serve (another holder delivered
   * lately, or a gateway holds it); the peer is charged for it (a drip, or a holder that
   * advertises and never sends).
   */
  slowRequestMs?: number
  /** An edge's request is overdue after at least this long… (OVERDUE_MIN_MS) */
  overdueMinMs?: number
  /** …and this many times the other measured holders' median chunk time. */
  overdueFactor?: number
  rateSmoothing?: number
  /**
   * Chunks received but not yet stored, all peers together: the bytes pulls hold in memory.
   * While this many wait, no new request goes out (a store slower than the network).
   */
  maxBufferedChunks?: number
  /** Requests outstanding at all peers together (they hold no memory until they arrive). */
  maxOutstandingRequests?: number
  /**
   * Edge holders asked at once while the daemon is short of CPU (`cpuShort`), like BitTorrent's
   * unchoked peers; gateways are not counted.
   */
  maxActiveHolders?: number
  /** How often the set's slowest measured member gives its place to another holder (the optimistic try). */
  activeRotateMs?: number
  /**
   * Whether the daemon is short of CPU now (daemon/cpu-shortness.ts): only then are requests
   * kept to a set of maxActiveHolders edge holders. Never, unless given (the simulator's
   * nodes have no CPU to be short of).
   */
  cpuShort?: (now: number) => boolean
  /** A source of [0, 1) numbers; inject a seeded one for reproducible simulations. */
  random?: () => number
}

/**
 * Chunk requests sent, by why: where duplicate bytes can come from. `again` counts a chunk
 * asked anew after its request was dropped (timed out, refused, its peer left, or `moved`
 * to a faster holder: those bytes may already be on the wire); `extra` a chunk asked of a
 * second holder while the first request stands (`overdue` holder, or the `endGame`).
 */
export interface RequestCounts {
  first: number
  again: number
  moved: number
  extra: number
  overdue: number
  endGame: number
  /** Chunks that arrived a second time, by why they had been asked again. */
  duplicatesAfter: Partial<Record<AskAgainReason | 'unexplained', number>>
}

/** Why a chunk was asked again: its request was dropped for this, or an extra one went out. */
export type AskAgainReason = 'peer-left' | 'not-present' | 'deferred' | 'refused' | 'cancelled' | 'stalled' | 'slow' | 'timed-out' | 'moved' | 'withdrawn' | 'overdue' | 'end-game'

export interface DeliveryVerdict {
  /** False for a duplicate: the chunk is already verified or being verified. */
  accepted: boolean
  /** Requests for the same chunk at other peers, to cancel on the wire. */
  cancel: ChunkAssignment[]
}

type SlotState = 'pending' | 'requested' | 'receiving' | 'done'

interface Slot {
  object: string
  index: number
  bytes: number
  state: SlotState
  holders: Set<PeerKey>
  /** Holders that are not gateways: a gateway is asked only when this is zero. */
  edgeHolders: number
  /** peer → time the request was sent. */
  requesters: Map<PeerKey, number>
  /** The holder-count bucket the slot sits in while pending, -1 otherwise. */
  bucket: number
  /** A gateway deferred this chunk (another edge is getting it): do not ask that gateway before this time. */
  gatewayDeferredUntil: number
  deferredBy: PeerKey | undefined
  /**
   * An edge holder refused, lost or sat on a request for this chunk: from now on a gateway
   * may send it whatever other edges advertise, so advertisements alone never lock the
   * gateway out (a peer can claim every chunk and serve none).
   */
  gatewayAllowed: boolean
  /** Requests sent for this chunk so far (a chunk asked more than once may arrive more than once). */
  asks: number
  /** Why it was last asked again (a request dropped, or an extra one): a second copy is charged to it. */
  why: AskAgainReason | undefined
}

/** Something a peer did that the swarm should charge it for (see peer-score.ts). */
export interface SchedulerOffence {
  peer: PeerKey
  kind: 'stall' | 'slow'
  detail: string
}

interface WantedObject {
  slots: Slot[]
  /** The missing indexes in this node's random order; holders are added in it. */
  order: number[]
  remaining: number
  /** Lowest index that may still be needed, for in-order priority scans. */
  cursor: number
}

interface PeerState {
  gateway: boolean
  inFlight: Map<Slot, number>
  held: Set<Slot>
  /** Bytes per millisecond, smoothed; undefined until measured. */
  rate: number | undefined
  sampleBytes: number
  busyMs: number
  lastEventAt: number
  lastDeliveryAt: number
  /** Set after a stall or a slow request: the window is one request until the peer delivers again. */
  penalized: boolean
  /** When the peer was judged overdue, slow or stalled, until it delivers again: requests sent since are probes. */
  judgedAt: number
  /** The request whose answer has started to arrive (responseStarted), and since when: its bytes are on the wire. */
  arriving: Slot | undefined
  arrivingSince: number
}

interface MigrationCandidate { slot: Slot, from: PeerKey, eta: number }

/** The slow rule's age is at least this many of the other holders' median chunk time (fleetSlowMs). */
const SLOW_CHUNK_TIMES = 2
/** The stall limit is at least this many of the slow rule's age (CHUNK_STALL_TIMEOUT_MS / SLOW_REQUEST_MS). */
const STALL_TO_SLOW = 3

/** Enough busy time to trust a rate sample… */
const RATE_SAMPLE_MIN_MS = 100
/**
 * …and enough bytes, as a share of a chunk: a manifest's few hundred bytes measure the round
 * trip, not the link. Hostile row 2 under load: a gateway measured at 21 B/s from its answer
 * for a small manifest stood at 49,000 s per chunk in every edge's books — never a target for
 * a move, and its median chunk time made a dripping claimer's queue look normal.
 */
const RATE_SAMPLE_MIN_CHUNK_SHARE = 0.5

export class Scheduler {
  private readonly objects = new Map<string, WantedObject>()
  private readonly peers = new Map<PeerKey, PeerState>()
  /** Pending slots that someone holds, by holder count (rarest first). */
  private readonly buckets = new Map<number, Set<Slot>>()
  /** Slots asked of at least one peer, oldest first: end-game candidates. */
  private readonly requested = new Set<Slot>()
  private readonly priority: string[] = []
  /** Objects a client waits on, in the order they were asked; served in turns ahead of `priority`. */
  private readonly waited: string[] = []
  /** The index in `waited` whose turn is next. */
  private waitedTurn = 0
  /** Objects only background pulls want (a preheat): asked for when nothing else can be. */
  private readonly background = new Set<string>()
  /** Requests released for a reason the swarm must act on (cancel on the wire). */
  private readonly released: ChunkAssignment[] = []
  private readonly chunkSize: number
  private readonly minWindow: number
  private readonly maxWindow: number
  private readonly initialWindow: number
  private readonly windowTargetMs: number
  private readonly stallTimeoutMs: number
  private readonly requestTimeoutMs: number
  private readonly endGameMaxRequests: number
  private readonly endGameThreshold: number
  private readonly endGameMinAgeMs: number
  private readonly gatewayDeferMs: number
  private readonly gatewayDeferMaxMs: number
  private readonly slowEdgeQueueMs: number
  private readonly slowRequestMs: number
  private readonly overdueMinMs: number
  private readonly overdueFactor: number
  /** Requests at an overdue edge, each to be asked of one other holder as well. */
  private readonly overdue = new Set<Slot>()
  private readonly offences: SchedulerOffence[] = []
  private readonly smoothing: number
  private readonly maxBuffered: number
  private readonly maxOutstanding: number
  /** Requests that might move to a faster holder, found once per `next` call when first needed. */
  private migrationCandidates: MigrationCandidate[] | undefined
  /** The holder counts of the buckets, ascending, found once per `next` call when first needed. */
  private bucketCounts: number[] | undefined
  private readonly migrateSpeedup: number
  private readonly busyHolderChunkTimes: number
  private readonly busyHolderMinMs: number
  private readonly busyHolderUnmeasuredMs: number
  /** Slots whose bytes arrived and are being verified and stored. */
  private receiving = 0
  private readonly counts: RequestCounts = { first: 0, again: 0, moved: 0, extra: 0, overdue: 0, endGame: 0, duplicatesAfter: {} }
  /** Why chunks of completed objects had been asked again, the latest COMPLETED_WHY_KEPT: their late copies are charged to it. */
  private readonly completedWhy = new RecentMap<string, AskAgainReason>(COMPLETED_WHY_KEPT)
  private readonly random: () => number
  private readonly maxActive: number
  private readonly rotateMs: number
  private readonly cpuShort: (now: number) => boolean
  /** The edge holders asked now (maxActiveHolders), each with when it joined. */
  private readonly members = new Map<PeerKey, number>()
  private rotatedAt = 0

  constructor (init: SchedulerInit) {
    this.chunkSize = init.chunkSizeBytes
    this.minWindow = init.minRequestsPerPeer ?? MIN_REQUESTS_PER_PEER
    this.maxWindow = init.maxRequestsPerPeer ?? MAX_REQUESTS_PER_PEER
    this.initialWindow = init.initialRequestsPerPeer ?? INITIAL_REQUESTS_PER_PEER
    this.windowTargetMs = init.windowTargetMs ?? WINDOW_TARGET_MS
    this.stallTimeoutMs = init.stallTimeoutMs ?? CHUNK_STALL_TIMEOUT_MS
    this.requestTimeoutMs = init.requestTimeoutMs ?? CHUNK_REQUEST_TIMEOUT_MS
    this.endGameMaxRequests = init.endGameMaxRequestsPerChunk ?? END_GAME_MAX_REQUESTS_PER_CHUNK
    this.endGameThreshold = init.endGameThresholdChunks ?? this.maxWindow
    this.endGameMinAgeMs = init.endGameMinAgeMs ?? END_GAME_MIN_AGE_MS
    this.gatewayDeferMs = init.gatewayDeferMs ?? GATEWAY_DEFER_MS
    this.gatewayDeferMaxMs = init.gatewayDeferMaxMs ?? GATEWAY_DEFER_MAX_MS
    this.slowEdgeQueueMs = init.slowEdgeQueueMs ?? SLOW_EDGE_QUEUE_MS
    this.slowRequestMs = init.slowRequestMs ?? SLOW_REQUEST_MS
    this.overdueMinMs = init.overdueMinMs ?? OVERDUE_MIN_MS
    this.overdueFactor = init.overdueFactor ?? OVERDUE_FACTOR
    this.smoothing = init.rateSmoothing ?? RATE_SMOOTHING
    this.maxBuffered = init.maxBufferedChunks ?? MAX_BUFFERED_CHUNKS
    this.maxOutstanding = init.maxOutstandingRequests ?? MAX_OUTSTANDING_REQUESTS
    this.migrateSpeedup = init.migrateSpeedup ?? MIGRATE_SPEEDUP
    this.busyHolderChunkTimes = init.busyHolderChunkTimes ?? BUSY_HOLDER_CHUNK_TIMES
    this.busyHolderMinMs = init.busyHolderMinMs ?? BUSY_HOLDER_MIN_MS
    this.busyHolderUnmeasuredMs = init.busyHolderUnmeasuredMs ?? BUSY_HOLDER_UNMEASURED_MS
    this.random = init.random ?? Math.random
    this.maxActive = init.maxActiveHolders ?? MAX_ACTIVE_HOLDERS
    this.rotateMs = init.activeRotateMs ?? ACTIVE_HOLDERS_ROTATE_MS
    this.cpuShort = init.cpuShort ?? (() => false)
  }

  // ---- what we want ---------------------------------------------------------------------

  /**
   * Starts fetching the `missing` chunks of an object of `size` bytes. Idempotent, except that
   * a foreground want makes a background object foreground.
   */
  want (object: string, size: number, missing: Iterable<number>, options: { background?: boolean } = {}): void {
    if (this.objects.has(object)) {
      if (options.background !== true) this.background.delete(object)
      return
    }
    if (options.background === true) this.background.add(object)
    const count = Math.ceil(size / this.chunkSize)
    const slots: Slot[] = []
    for (let index = 0; index < count; index++) {
      slots.push({
        object, index, bytes: Math.min(this.chunkSize, size - index * this.chunkSize), state: 'done',
        holders: new Set(), edgeHolders: 0, requesters: new Map(), bucket: -1, gatewayDeferredUntil: 0, deferredBy: undefined, gatewayAllowed: false, asks: 0, why: undefined,
      })
    }
    const needed = [...new Set(missing)].filter(i => i >= 0 && i < count)
    // A random order inside each rarity bucket: nodes that start together pick different chunks.
    shuffle(needed, this.random)
    const entry: WantedObject = { slots, order: needed, remaining: 0, cursor: 0 }
    for (const index of needed) {
      const slot = slots[index]
      if (slot === undefined || slot.state !== 'done') continue
      slot.state = 'pending'
      entry.remaining++
    }
    this.objects.set(object, entry)
    if (entry.remaining === 0) {
      this.objects.delete(object)
      this.background.delete(object)
      return
    }
    for (const index of needed) {
      const slot = slots[index]
      if (slot !== undefined) this.rebucket(slot)
    }
  }

  /** Stops fetching an object; returns requests to cancel on the wire. */
  unwant (object: string): ChunkAssignment[] {
    const entry = this.objects.get(object)
    if (entry === undefined) return []
    const cancel: ChunkAssignment[] = []
    for (const slot of entry.slots) {
      // Requests cancelled here may still deliver: their copies are charged to the cancel.
      if (slot.requesters.size > 0) slot.why ??= 'cancelled'
      if (slot.why !== undefined) this.rememberWhy(slot)
      for (const peer of slot.requesters.keys()) {
        this.peers.get(peer)?.inFlight.delete(slot)
        cancel.push({ peer, object, index: slot.index })
      }
      for (const peer of slot.holders) this.peers.get(peer)?.held.delete(slot)
      this.unbucket(slot)
      this.requested.delete(slot)
      if (slot.state === 'receiving') this.receiving--
      slot.state = 'done'
    }
    this.objects.delete(object)
    this.background.delete(object)
    this.dropPriority(object)
    this.clientLeft(object)
    return cancel
  }

  isWanted (object: string): boolean {
    return this.objects.has(object)
  }

  /** A wanted object's first chunk not yet done and how many are left, or undefined when it is not wanted. */
  neededFrom (object: string): { first: number, remaining: number } | undefined {
    const entry = this.objects.get(object)
    if (entry === undefined) return undefined
    let first = entry.cursor
    while (first < entry.slots.length && entry.slots[first]?.state === 'done') first++
    return { first, remaining: entry.remaining }
  }

  wantedObjects (): string[] {
    return [...this.objects.keys()]
  }

  /** Chunks not yet verified, across all wanted objects. */
  remainingChunks (): number {
    let total = 0
    for (const entry of this.objects.values()) total += entry.remaining
    return total
  }

  /** Puts an object's chunks ahead of everything else, in index order (latest call first). */
  prioritize (object: string): void {
    this.dropPriority(object)
    if (this.objects.has(object)) this.priority.unshift(object)
    // A client waits on it: whoever wanted it first, it is no longer background work.
    this.background.delete(object)
  }

  deprioritize (object: string): void {
    this.dropPriority(object)
  }

  /**
   * A client waits on this object: it goes ahead of every prioritized one, taking turns with
   * the other waited objects a chunk at a time, until `clientLeft` or it completes. Turns rather
   * than first-asked-first: containerd asks for an image's layers a few ms apart in no fixed
   * order, and a small layer must not wait for a big one asked just before it; turns rather
   * than smallest-first: a second big layer's response would sit silent for the whole first.
   * The bytes on the link are the same either way.
   */
  clientWaits (object: string): void {
    if (!this.objects.has(object) || this.waited.includes(object)) return
    this.waited.push(object)
    this.background.delete(object)
  }

  /** No client waits on this object any more: it keeps its place among the prioritized ones. */
  clientLeft (object: string): void {
    const at = this.waited.indexOf(object)
    if (at < 0) return
    this.waited.splice(at, 1)
    if (at < this.waitedTurn) this.waitedTurn--
  }

  // ---- who has what -----------------------------------------------------------------------

  addPeer (peer: PeerKey, init: { gateway: boolean }, now: number): void {
    const existing = this.peers.get(peer)
    if (existing !== undefined) {
      if (existing.gateway !== init.gateway) {
        for (const slot of existing.held) slot.edgeHolders += init.gateway ? -1 : 1
        existing.gateway = init.gateway
      }
      return
    }
    this.peers.set(peer, {
      gateway: init.gateway, inFlight: new Map(), held: new Set(), rate: undefined,
      sampleBytes: 0, busyMs: 0, lastEventAt: now, lastDeliveryAt: now, penalized: false, judgedAt: Infinity,
      arriving: undefined, arrivingSince: 0,
    })
  }

  /** Forgets a peer; its requests go back to the pool. Returns them (nothing to cancel: it is gone). */
  removePeer (peer: PeerKey): ChunkAssignment[] {
    const state = this.peers.get(peer)
    if (state === undefined) return []
    const released: ChunkAssignment[] = []
    for (const slot of state.inFlight.keys()) {
      released.push({ peer, object: slot.object, index: slot.index })
      this.dropRequest(slot, peer, 'peer-left')
    }
    state.inFlight.clear()
    for (const slot of state.held) {
      slot.holders.delete(peer)
      if (!state.gateway) slot.edgeHolders--
      this.rebucket(slot)
    }
    this.peers.delete(peer)
    this.members.delete(peer)
    return released
  }

  hasPeer (peer: PeerKey): boolean {
    return this.peers.has(peer)
  }

  /** The peer holds these chunks of a wanted object (ignored for objects not wanted). */
  addHolder (peer: PeerKey, object: string, indexes: Iterable<number>): void {
    const entry = this.objects.get(object)
    const state = this.peers.get(peer)
    if (entry === undefined || state === undefined) return
    for (const index of indexes) {
      const slot = entry.slots[index]
      if (slot !== undefined) this.hold(slot, peer, state)
    }
  }

  addWholeHolder (peer: PeerKey, object: string): void {
    const entry = this.objects.get(object)
    const state = this.peers.get(peer)
    if (entry === undefined || state === undefined) return
    for (const index of entry.order) this.hold(entry.slots[index] as Slot, peer, state)
  }

  addBitmapHolder (peer: PeerKey, object: string, bitmap: ChunkBitmap): void {
    const entry = this.objects.get(object)
    const state = this.peers.get(peer)
    if (entry === undefined || state === undefined) return
    for (const index of entry.order) {
      if (index < bitmap.chunkCount && bitmap.has(index)) this.hold(entry.slots[index] as Slot, peer, state)
    }
  }

  // ---- requests ---------------------------------------------------------------------------

  /**
   * Fills every peer's window and returns the requests to send now. `limit` caps how many
   * (a download rate cap hands out request tokens).
   */
  next (now: number, limit: number = Infinity): ChunkAssignment[] {
    const out: ChunkAssignment[] = []
    if (!this.canRequest()) return out
    this.migrationCandidates = undefined
    this.bucketCounts = undefined
    limit = Math.min(limit, this.maxOutstanding - this.totalInFlight())
    const backgroundAllowed = !this.foregroundBusy()
    // CPU to spare: every holder is asked, and the downlink never waits for a set. With nothing
    // wanted the signal is not asked (its timer stops: an idle daemon pays nothing for it).
    if (this.objects.size === 0 || !this.cpuShort(now)) {
      this.fill([...this.peers], out, limit, now, backgroundAllowed, false)
      return out
    }
    this.refreshMembers(now)
    const inside: Array<[PeerKey, PeerState]> = []
    const outside: Array<[PeerKey, PeerState]> = []
    for (const entry of this.peers) (entry[1].gateway || this.members.has(entry[0]) ? inside : outside).push(entry)
    this.fill(inside, out, limit, now, backgroundAllowed, false)
    // A chunk no member holds is asked outside the set, so nothing waits on a holder we do not
    // ask, but only while fewer than maxActiveHolders edge holders have our requests.
    let busy = 0
    for (const state of this.peers.values()) if (!state.gateway && state.inFlight.size > 0) busy++
    if (busy < this.maxActive) this.fill(outside, out, limit, now, backgroundAllowed, true, this.maxActive - busy)
    return out
  }

  /**
   * Fills these peers' windows, round robin; `outside` peers only with chunks no member of the
   * set holds, and at most `newPeers` of them that had nothing of ours in flight.
   */
  private fill (peers: Array<[PeerKey, PeerState]>, out: ChunkAssignment[], limit: number, now: number, backgroundAllowed: boolean, outside: boolean, newPeers = Infinity): void {
    const active = peers.filter(([, state]) => state.inFlight.size < this.windowOf(state))
    // Fastest first: priority chunks, taken first, land on the peer most likely to send them soon.
    active.sort((a, b) => (b[1].rate ?? 0) - (a[1].rate ?? 0))
    // Round robin, one request per peer per round, so rare chunks spread across peers.
    while (active.length > 0 && out.length < limit) {
      for (let i = 0; i < active.length && out.length < limit;) {
        const [peer, state] = active[i] as [PeerKey, PeerState]
        const fresh = state.inFlight.size === 0
        const slot = fresh && newPeers <= 0 ? undefined : this.pickFor(peer, state, now, backgroundAllowed, outside)
        if (slot === undefined) {
          active.splice(i, 1)
          continue
        }
        if (fresh) newPeers--
        this.assign(slot, peer, state, now)
        out.push({ peer, object: slot.object, index: slot.index })
        if (state.inFlight.size >= this.windowOf(state)) active.splice(i, 1)
        else i++
      }
    }
  }

  /**
   * The set of edge holders asked (maxActiveHolders), BitTorrent's unchoke on the asking side:
   * a member leaves when it is judged (stall, slow, overdue), gone, or has nothing we lack and
   * nothing of ours in flight; every activeRotateMs the slowest measured member that has been in
   * the set that long gives its place; free places go to holders of something we lack, at random
   * (the optimistic try: the set keeps the fast ones and finds faster).
   */
  private refreshMembers (now: number): void {
    for (const peer of this.members.keys()) {
      const state = this.peers.get(peer)
      if (state === undefined || state.penalized || !this.useful(state)) this.members.delete(peer)
    }
    let rotated: PeerKey | undefined
    let rotatedSince = now
    if (this.members.size >= this.maxActive && now - this.rotatedAt >= this.rotateMs) {
      this.rotatedAt = now
      let slowestRate = Infinity
      for (const [peer, since] of this.members) {
        const rate = this.peers.get(peer)?.rate
        if (rate !== undefined && now - since >= this.rotateMs && rate < slowestRate) {
          slowestRate = rate
          rotated = peer
        }
      }
      if (rotated !== undefined) {
        rotatedSince = this.members.get(rotated) as number
        this.members.delete(rotated)
      }
    }
    if (this.members.size >= this.maxActive) return
    const candidates: PeerKey[] = []
    for (const [peer, state] of this.peers) {
      if (!state.gateway && !state.penalized && peer !== rotated && !this.members.has(peer)) candidates.push(peer)
    }
    shuffle(candidates, this.random)
    for (const peer of candidates) {
      if (this.members.size >= this.maxActive) break
      if (this.useful(this.peers.get(peer) as PeerState)) this.members.set(peer, now)
    }
    // No one else has anything: the rotated member keeps its place.
    if (rotated !== undefined && this.members.size < this.maxActive) this.members.set(rotated, rotatedSince)
  }

  /** The peer has requests of ours in flight or holds a chunk we still lack (asked elsewhere too: a request may move to it). */
  private useful (state: PeerState): boolean {
    if (state.inFlight.size > 0) return true
    for (const slot of state.held) if (slot.state === 'pending' || slot.state === 'requested') return true
    return false
  }

  /** A member of the set holds the chunk. */
  private memberHolds (slot: Slot): boolean {
    for (const peer of this.members.keys()) if (slot.holders.has(peer)) return true
    return false
  }

  /** Requests sent so far, by why (a copy). */
  requestCounts (): RequestCounts {
    return { ...this.counts, duplicatesAfter: { ...this.counts.duplicatesAfter } }
  }

  /** A chunk's bytes arrived from `peer`. Accepted bytes must next be verified and stored. */
  delivered (peer: PeerKey, object: string, index: number, now: number): DeliveryVerdict {
    const state = this.peers.get(peer)
    const slot = this.objects.get(object)?.slots[index]
    if (state !== undefined) {
      const sentAt = state.inFlight.get(slot ?? NO_SLOT)
      this.account(state, now)
      if (slot !== undefined && sentAt !== undefined) {
        state.inFlight.delete(slot)
        this.measure(state, slot.bytes, now)
      }
    }
    if (slot === undefined || slot.state === 'done' || slot.state === 'receiving') {
      // The last chunks' second copies mostly land after their object completed and left.
      const why = (slot !== undefined ? slot.why : this.completedWhy.get(`${object}:${index}`)) ?? 'unexplained'
      this.counts.duplicatesAfter[why] = (this.counts.duplicatesAfter[why] ?? 0) + 1
      return { accepted: false, cancel: [] }
    }
    const cancel: ChunkAssignment[] = []
    for (const other of slot.requesters.keys()) {
      if (other === peer) continue
      this.peers.get(other)?.inFlight.delete(slot)
      cancel.push({ peer: other, object, index })
    }
    slot.requesters.clear()
    this.requested.delete(slot)
    this.unbucket(slot)
    slot.state = 'receiving'
    this.receiving++
    return { accepted: true, cancel }
  }

  /**
   * The first bytes of `peer`'s answer to a request for this chunk arrived; the rest is on its
   * way. Until it completes that request is not moved, withdrawn or duplicated, and the peer's
   * silence is counted from now: a holder sharing a 20 Mbit/s uplink among 15 askers sends each
   * of them a chunk over several seconds, and the 16-host bed fetched 3-16 chunks twice per
   * edge, moved off, judged slow or duplicated while their bytes were arriving.
   */
  responseStarted (peer: PeerKey, object: string, index: number, now: number): void {
    const state = this.peers.get(peer)
    const slot = this.objects.get(object)?.slots[index]
    if (state === undefined || slot === undefined || !state.inFlight.has(slot)) return
    state.arriving = slot
    state.arrivingSince = now
  }

  /** When the answer to the peer's request for `slot` started to arrive, if it has and the request stands. */
  private arrivingAt (state: PeerState, slot: Slot): number | undefined {
    if (state.arriving !== slot) return undefined
    // A request sent after the answer started is a new one (the old one was dropped meanwhile).
    const sentAt = state.inFlight.get(slot)
    return sentAt !== undefined && sentAt <= state.arrivingSince ? state.arrivingSince : undefined
  }

  /** The chunk was verified and is durable. Returns true when its object is now complete. */
  stored (object: string, index: number): boolean {
    const entry = this.objects.get(object)
    const slot = entry?.slots[index]
    if (entry === undefined || slot === undefined || slot.state === 'done') return false
    if (slot.state === 'receiving') this.receiving--
    for (const peer of slot.requesters.keys()) this.peers.get(peer)?.inFlight.delete(slot)
    slot.requesters.clear()
    this.requested.delete(slot)
    this.unbucket(slot)
    slot.state = 'done'
    entry.remaining--
    while (entry.cursor < entry.slots.length && entry.slots[entry.cursor]?.state === 'done') entry.cursor++
    if (entry.remaining > 0) return false
    for (const s of entry.slots) {
      for (const holder of s.holders) this.peers.get(holder)?.held.delete(s)
      if (s.why !== undefined) this.rememberWhy(s)
    }
    this.objects.delete(object)
    this.dropPriority(object)
    this.clientLeft(object)
    return true
  }

  /** The bytes `peer` sent failed verification: it no longer counts as a holder of that chunk. */
  rejected (peer: PeerKey, object: string, index: number): void {
    const slot = this.objects.get(object)?.slots[index]
    if (slot === undefined || slot.state === 'done') return
    this.unhold(slot, peer)
    if (slot.state === 'receiving') {
      slot.state = 'pending'
      this.receiving--
    }
    this.settle(slot)
  }

  /** Storing an accepted chunk failed for a local reason: ask for it again. */
  storeFailed (object: string, index: number): void {
    const slot = this.objects.get(object)?.slots[index]
    if (slot?.state !== 'receiving') return
    slot.state = 'pending'
    this.receiving--
    this.settle(slot)
  }

  /** The peer answered that it does not hold the chunk (its have-list was ahead of its store, or it evicted it). */
  notPresent (peer: PeerKey, object: string, index: number, now: number): void {
    const answer = this.answerWithoutChunk(peer, object, index, now, 'not-present')
    if (answer === undefined) return
    if (!answer.state.gateway) answer.slot.gatewayAllowed = true
    this.unhold(answer.slot, peer)
  }

  /**
   * A gateway left this chunk to the neighbour it just sent it to: ask that gateway again only
   * once that neighbour has had time to receive and advertise it and we have heard (or the
   * gateway sends it): GATEWAY_DEFER_MS, or one chunk time at the rate this gateway sends to us
   * when that is longer (up to GATEWAY_DEFER_MAX_MS): its copy to the other neighbour shares
   * the same uplink. On the 16-host bed a gateway serving 15 edges at 20 Mbit/s delivers a
   * chunk to each in ~6 s; edges asking again every second were served a second copy once the
   * recipient advertised it to the gateway but before they had heard it themselves, or once
   * their four deferrals ran out (22 of 52 second copies in one run).
   * Only gateways defer; an edge that does is refusing, and is treated as `refused`.
   * Returns when that gateway may be asked for the chunk again, if it is to be.
   */
  deferred (peer: PeerKey, object: string, index: number, now: number): number | undefined {
    if (this.peers.get(peer)?.gateway !== true) {
      this.refused(peer, object, index, now)
      return undefined
    }
    const answer = this.answerWithoutChunk(peer, object, index, now, 'deferred')
    if (answer === undefined) return undefined
    const rate = answer.state.rate
    const copyMs = rate === undefined || rate <= 0 ? 0 : Math.min(this.gatewayDeferMaxMs, this.chunkSize / rate)
    answer.slot.gatewayDeferredUntil = now + Math.max(this.gatewayDeferMs, copyMs)
    answer.slot.deferredBy = peer
    return answer.slot.gatewayDeferredUntil
  }

  /**
   * The peer refused a request it had no reason to refuse (an edge deferring, a cancel we
   * never sent): it stops counting as a holder of that chunk, so it is not asked again (the
   * attack was one peer advertising everything and refusing everything, thousands of re-asks
   * a second), and a gateway may now send the chunk.
   */
  refused (peer: PeerKey, object: string, index: number, now: number): void {
    const answer = this.answerWithoutChunk(peer, object, index, now, 'refused')
    if (answer === undefined) return
    answer.slot.gatewayAllowed = true
    this.unhold(answer.slot, peer)
  }

  /** The peer answered a request we had cancelled (or released): only its window changes. */
  answered (peer: PeerKey, object: string, index: number, now: number): void {
    this.answerWithoutChunk(peer, object, index, now, 'cancelled')
  }

  /**
   * What every answer without the chunk starts with: the peer's busy time runs to now, and the
   * request, if still outstanding, is dropped so the chunk can be asked again. Undefined when
   * the peer or the chunk is no longer tracked (it left, or the object completed).
   */
  private answerWithoutChunk (peer: PeerKey, object: string, index: number, now: number, why: AskAgainReason): { state: PeerState, slot: Slot } | undefined {
    const state = this.peers.get(peer)
    const slot = this.objects.get(object)?.slots[index]
    if (state === undefined || slot === undefined) return undefined
    this.account(state, now)
    if (state.inFlight.delete(slot)) this.dropRequest(slot, peer, why)
    return { state, slot }
  }

  /**
   * Releases requests of stalled peers, requests older than the request timeout, and slow
   * requests that another holder can serve, so the next call to `next` asks other peers.
   * Returns them, to cancel on the wire; what the peers did wrong waits in `takeOffences`.
   */
  expire (now: number): ChunkAssignment[] {
    const released: ChunkAssignment[] = []
    let lastDelivery = 0
    for (const state of this.peers.values()) lastDelivery = Math.max(lastDelivery, state.lastDeliveryAt)
    for (const [peer, state] of this.peers) {
      if (state.inFlight.size === 0) continue
      this.account(state, now)
      let oldest = Infinity
      for (const sentAt of state.inFlight.values()) oldest = Math.min(oldest, sentAt)
      // An answer that started arriving is progress: its holder is sending to us, slowly
      // because others share its uplink. A drip gets this once per chunk, not per byte.
      const arrivingSince = state.arriving !== undefined ? this.arrivingAt(state, state.arriving) ?? 0 : 0
      const progressAt = Math.max(state.lastDeliveryAt, oldest, arrivingSince)
      const fleetMs = this.fleetSlowMs(peer)
      const slowMs = Math.max(this.slowRequestMs, fleetMs)
      // The stall limit keeps its ratio to the slow rule's (15 s to 5 s) as the others' chunk time grows.
      const stalled = now - progressAt > Math.max(this.stallTimeoutMs, STALL_TO_SLOW * fleetMs)
      let slow = 0
      for (const [slot, sentAt] of [...state.inFlight]) {
        // Slow: the request is older than a healthy link needs and the peer delivered nothing
        // for twice that since it was first asked, while someone else can serve it (other
        // holders deliver, or a gateway holds it). A busy but honest holder (an uplink shared by
        // many askers) keeps delivering something, and keeps its requests: the simulator showed
        // moving those cost gateway copies for nothing. Counted from our oldest request, not
        // from the connection: a holder connected for a minute and asked 5 s ago has not been
        // silent for a minute (on the 16-host bed that charged and banned honest busy holders).
        const isSlow = now - sentAt > slowMs && state.lastDeliveryAt <= sentAt &&
          now - progressAt > 2 * slowMs && (lastDelivery > sentAt || this.gatewayHolds(slot, peer))
        if (!stalled && !isSlow && now - sentAt <= this.requestTimeoutMs) continue
        state.inFlight.delete(slot)
        this.dropRequest(slot, peer, stalled ? 'stalled' : isSlow ? 'slow' : 'timed-out')
        if (!state.gateway) slot.gatewayAllowed = true
        if (isSlow) slow++
        released.push({ peer, object: slot.object, index: slot.index })
      }
      if (stalled) {
        state.penalized = true
        state.judgedAt = now
        state.rate = undefined
        this.offences.push({ peer, kind: 'stall', detail: `delivered nothing for ${now - progressAt} ms with requests outstanding` })
      } else if (slow > 0) {
        state.penalized = true
        state.judgedAt = now
        state.rate = undefined
        const started = arrivingSince > 0 ? `its answer started ${now - arrivingSince} ms ago` : 'no answer started'
        this.offences.push({ peer, kind: 'slow', detail: `${slow} request(s) waited over ${Math.round(slowMs)} ms, nothing delivered for ${now - progressAt} ms since it was asked (${started}), while other holders delivered` })
      } else {
        this.markOverdue(peer, state, now)
      }
    }
    return released
  }

  /**
   * While nothing arrives from anyone, an edge that has delivered nothing for longer than
   * OVERDUE_MIN_MS and OVERDUE_FACTOR times the other holders' median chunk time is overdue:
   * each of its requests is also asked of one other holder (the first answer wins, the other
   * is cancelled), and until it delivers again its window is one probe and its
   * advertisements do not keep the gateway away. Nothing is taken from it and it is not
   * charged (that is the slow rule's). A holder that claimed every chunk and sent none kept
   * the gateway away and a capped pull idle for the slow rule's 10 s (hostile row 2). Only
   * while starving: when other holders deliver, the pull moves, and duplicating a busy
   * honest holder's requests then cost the simulator time (10 nodes, 2 seeds of 8: 1.21-1.27
   * -> 1.38-1.40 x the lower bound) and lifting its hold on the gateway cost copies
   * (50 nodes, 8 MiB, seed 1: 1.75 -> 2.13).
   */
  private markOverdue (peer: PeerKey, state: PeerState, now: number): void {
    // Gateways are the source of last resort: nothing to hand their requests to.
    if (state.gateway) return
    const limit = Math.max(this.overdueMinMs, this.overdueFactor * this.medianChunkMs(peer))
    let othersDelivered = 0
    for (const [other, otherState] of this.peers) if (other !== peer) othersDelivered = Math.max(othersDelivered, otherState.lastDeliveryAt)
    // Idle for the limit, not "nothing since it was sent": one tiny object delivered now and
    // then excused every larger request queued before it (a 1 KB/s drip held two edges for
    // the 15 s stall timer so).
    if (now - othersDelivered <= limit || now - state.lastDeliveryAt <= limit) return
    let overdue = 0
    for (const [slot, sentAt] of state.inFlight) {
      // Asked elsewhere already, or the one probe a judged edge gets: that one waits for the
      // slow rule, which charges it (and the end game, which duplicates it).
      if (slot.requesters.size > 1 || this.overdue.has(slot) || sentAt >= state.judgedAt) continue
      if (now - sentAt <= limit || slot.holders.size < 2) continue
      this.overdue.add(slot)
      overdue++
    }
    if (overdue > 0 && !state.penalized) {
      state.penalized = true
      state.judgedAt = now
    }
  }

  /**
   * When an edge's request would next turn overdue (markOverdue's rule) if nothing arrives
   * meanwhile, so the caller can look then rather than at its next tick, up to a second later
   * (hostile row 2: a silent claimer of every chunk held a starting pull 5.5-5.7 s for a 5 s
   * rule). Undefined when no request would.
   */
  nextOverdueAt (): number | undefined {
    // The latest delivery of all, and the latest but that peer's: "the others" of any peer.
    let latest = 0
    let latestPeer: PeerKey | undefined
    let second = 0
    for (const [peer, state] of this.peers) {
      if (state.lastDeliveryAt > latest) {
        second = latest
        latest = state.lastDeliveryAt
        latestPeer = peer
      } else {
        second = Math.max(second, state.lastDeliveryAt)
      }
    }
    let next = Infinity
    for (const [peer, state] of this.peers) {
      if (state.gateway || state.inFlight.size === 0) continue
      let oldest = Infinity
      for (const [slot, sentAt] of state.inFlight) {
        if (slot.requesters.size > 1 || this.overdue.has(slot) || sentAt >= state.judgedAt || slot.holders.size < 2) continue
        oldest = Math.min(oldest, sentAt)
      }
      if (oldest === Infinity) continue
      const idleSince = Math.max(oldest, peer === latestPeer ? second : latest, state.lastDeliveryAt)
      // The limit is at least overdueMinMs: the median (a sort) only for a peer that may be first.
      if (idleSince + this.overdueMinMs >= next) continue
      next = Math.min(next, idleSince + Math.max(this.overdueMinMs, this.overdueFactor * this.medianChunkMs(peer)))
    }
    return next === Infinity ? undefined : next
  }

  /**
   * The slow rule's age for `peer`'s requests (its silence limit is twice this) is at least
   * this: SLOW_CHUNK_TIMES of the other holders' median chunk time, longer than SLOW_REQUEST_MS
   * when the whole fleet is that slow. Judged against the others, as the overdue rule is: on
   * the 16-host bed, loaded and CPU-bound, holders took 5-10 s per chunk to each of 15 askers,
   * and the fixed 5 s / 10 s charged 50-70 honest holders per run (and the chunks asked
   * elsewhere crossed twice); a drip among fast holders is judged as before (hostile row 2).
   */
  private fleetSlowMs (peer: PeerKey): number {
    return SLOW_CHUNK_TIMES * this.medianChunkMs(peer)
  }

  /** The median time the measured, unpenalized peers other than `except` take per chunk; 0 when none is measured. */
  private medianChunkMs (except: PeerKey): number {
    const times: number[] = []
    for (const [peer, state] of this.peers) {
      if (peer !== except && !state.penalized && state.rate !== undefined && state.rate > 0) times.push(this.chunkSize / state.rate)
    }
    if (times.length === 0) return 0
    times.sort((a, b) => a - b)
    return times[Math.floor(times.length / 2)] as number
  }

  /** What peers did wrong since the last call: the swarm charges them (peer-score.ts). */
  takeOffences (): SchedulerOffence[] {
    return this.offences.splice(0)
  }

  /** Requests the scheduler withdrew on its own since the last call, to cancel on the wire. */
  takeReleased (): ChunkAssignment[] {
    return this.released.splice(0)
  }

  /** Memory for arrivals is free and requests may still go out: `next` may hand out some. */
  canRequest (): boolean {
    return this.receiving < this.maxBuffered && this.totalInFlight() < this.maxOutstanding
  }

  /** Requests in flight at all peers. */
  totalInFlight (): number {
    let total = 0
    for (const state of this.peers.values()) total += state.inFlight.size
    return total
  }

  /** Peers with at least one request in flight. */
  busyPeers (): number {
    let count = 0
    for (const state of this.peers.values()) if (state.inFlight.size > 0) count++
    return count
  }

  /** Requests in flight at one peer. */
  inFlight (peer: PeerKey): number {
    return this.peers.get(peer)?.inFlight.size ?? 0
  }

  /** The number of requests the peer may have outstanding now. */
  window (peer: PeerKey): number {
    const state = this.peers.get(peer)
    return state === undefined ? 0 : this.windowOf(state)
  }

  /** Measured rate in bytes per second, undefined until known. */
  rate (peer: PeerKey): number | undefined {
    const rate = this.peers.get(peer)?.rate
    return rate === undefined ? undefined : rate * 1000
  }

  // ---- internals ----------------------------------------------------------------------------

  private windowOf (state: PeerState): number {
    // One request, a probe, until the peer delivers again: a drip or a silent holder that
    // kept a full window wasted that much of a capped download budget every few seconds.
    if (state.penalized) return 1
    if (state.rate === undefined) return this.initialWindow
    const inFlightBytes = state.rate * this.windowTargetMs
    return Math.max(this.minWindow, Math.min(this.maxWindow, Math.ceil(inFlightBytes / this.chunkSize) + 1))
  }

  /**
   * Whether a foreground object has a chunk in flight, arriving, or pending with a holder: while
   * it does, background chunks are not asked for (those already asked finish).
   */
  private foregroundBusy (): boolean {
    if (this.background.size === 0) return true
    for (const [object, entry] of this.objects) {
      if (this.background.has(object)) continue
      for (let i = entry.cursor; i < entry.slots.length; i++) {
        const slot = entry.slots[i] as Slot
        if (slot.state === 'requested' || (slot.state === 'pending' && slot.holders.size > 0)) return true
      }
    }
    return false
  }

  private pickFor (peer: PeerKey, state: PeerState, now: number, backgroundAllowed = true, outside = false): Slot | undefined {
    for (let turn = 0; turn < this.waited.length; turn++) {
      const at = (this.waitedTurn + turn) % this.waited.length
      const slot = this.firstPendingOf(this.waited[at] as string, peer, outside)
      if (slot === undefined) continue
      this.waitedTurn = at + 1
      return slot
    }
    for (const object of this.priority) {
      const slot = this.firstPendingOf(object, peer, outside)
      if (slot !== undefined) return slot
    }
    // The oldest requests first: an overdue edge's (it may hold what a client waits for).
    const duplicate = this.pickOverdue(peer, state, now, outside)
    if (duplicate !== undefined) return duplicate
    // Sorted once per `next`: a bucket emptied meanwhile is skipped, and one made meanwhile
    // holds only a slot pickMigration hands out at once.
    const counts = this.bucketCounts ??= [...this.buckets.keys()].sort((a, b) => a - b)
    for (const count of counts) {
      for (const slot of this.buckets.get(count) ?? []) {
        if (!slot.holders.has(peer)) continue
        if (!backgroundAllowed && this.background.has(slot.object)) continue
        if (outside && this.memberHolds(slot)) continue
        if (state.gateway && (this.edgeCanSend(slot) || (slot.deferredBy === peer && slot.gatewayDeferredUntil > now))) continue
        return slot
      }
    }
    return this.pickMigration(peer, state, now, outside) ?? this.pickEndGame(peer, state, now, outside)
  }

  /** A request waiting at an overdue edge that this peer holds too: asked here as well (once per marking, END_GAME_MAX_REQUESTS_PER_CHUNK at most). */
  private pickOverdue (peer: PeerKey, state: PeerState, now: number, outside: boolean): Slot | undefined {
    if (state.penalized) return undefined
    for (const slot of this.overdue) {
      if (slot.state !== 'requested') {
        this.overdue.delete(slot)
        continue
      }
      if (slot.requesters.has(peer) || !slot.holders.has(peer) || slot.requesters.size >= this.endGameMaxRequests) continue
      if (state.gateway && (this.edgeCanSend(slot) || (slot.deferredBy === peer && slot.gatewayDeferredUntil > now))) continue
      if (outside && this.memberHolds(slot)) continue
      this.overdue.delete(slot)
      this.counts.overdue++
      slot.why = 'overdue'
      return slot
    }
    return undefined
  }

  /**
   * A request this peer would deliver MIGRATE_SPEEDUP times sooner than where it waits: one
   * queued behind others at a slower measured holder (never the head of that queue: its bytes
   * may be on the wire, and moving it would fetch them twice), or one waiting at a busy holder
   * (head included), to a peer with nothing of ours in flight or a measured faster one. It is
   * withdrawn there (cancelled on the wire) and returned, to be asked here.
   */
  private pickMigration (peer: PeerKey, state: PeerState, now: number, outside: boolean): Slot | undefined {
    if (state.penalized) return undefined
    const candidates = this.migrationCandidates ??= this.findMigrationCandidates(now)
    if (candidates.length === 0) return undefined
    let ours: number
    if (state.rate !== undefined) {
      ours = (state.inFlight.size + 1) * this.chunkSize / state.rate
    } else if (state.inFlight.size === 0) {
      // Not measured and nothing of ours queued there: it may start on it at once.
      ours = 0
    } else {
      return undefined
    }
    for (let i = 0; i < candidates.length; i++) {
      const candidate = candidates[i] as MigrationCandidate
      // Latest first: nothing further down is late enough for this peer.
      if (candidate.eta <= ours * this.migrateSpeedup) return undefined
      const { slot, from } = candidate
      if (from === peer || !slot.holders.has(peer) || slot.requesters.size !== 1 || !slot.requesters.has(from)) continue
      if (state.gateway && this.edgeCanSend(slot)) continue
      if (outside && this.memberHolds(slot)) continue
      candidates.splice(i, 1)
      this.peers.get(from)?.inFlight.delete(slot)
      this.released.push({ peer: from, object: slot.object, index: slot.index })
      this.dropRequest(slot, from, 'moved')
      this.counts.moved++
      return slot
    }
    return undefined
  }

  /**
   * Requests that might move, the latest due first (one pass per `next`): behind the head of
   * a measured holder's queue, due when its rate says; or waiting at a busy holder —
   * BUSY_HOLDER_CHUNK_TIMES chunk times at the fastest rate any peer has shown, with nothing
   * from that holder since, which a holder serving us first would have long delivered (not
   * OVERDUE_MIN_MS's rule: that one is for holders that send nobody anything). The simulator (100 nodes, 20 and 64 neighbours) showed requests
   * piling at a chunk's first holder while its later holders idled: each spread linearly, one
   * asker after another, instead of doubling; the last node finished at 1.53x and 1.80x the
   * lower bound before, 1.38x and 1.51x after. At a holder serving k askers our head is on
   * the wire about 1/k of the time, so moving it costs a duplicate now and then; the queue
   * costs a chunk time per asker ahead of us.
   */
  private findMigrationCandidates (now: number): MigrationCandidate[] {
    const out: MigrationCandidate[] = []
    const best = this.bestRate
    const busyMs = best === undefined ? this.busyHolderUnmeasuredMs : Math.max(this.busyHolderMinMs, this.busyHolderChunkTimes * this.chunkSize / best)
    for (const [from, state] of this.peers) {
      let position = 0
      for (const [slot, sentAt] of state.inFlight) {
        position++
        // Its bytes are arriving: moved now, the chunk would cross twice.
        if (slot.requesters.size !== 1 || this.arrivingAt(state, slot) !== undefined) continue
        const queued = state.rate !== undefined && position > 1 ? position * this.chunkSize / state.rate : 0
        const age = now - sentAt
        // Only while the holder sent us nothing since: one that did is working through our queue.
        const busy = age >= busyMs && state.lastDeliveryAt <= sentAt
        const eta = Math.max(queued, busy ? age : 0)
        if (eta > 0) out.push({ slot, from, eta })
      }
    }
    return out.sort((a, b) => b.eta - a.eta)
  }

  /** The fastest measured rate of any peer (bytes per ms), undefined until one is measured. */
  private get bestRate (): number | undefined {
    let best: number | undefined
    for (const state of this.peers.values()) {
      if (state.rate !== undefined && (best === undefined || state.rate > best)) best = state.rate
    }
    return best
  }

  /**
   * The oldest request this peer could duplicate, once every remaining chunk is in flight
   * (before that, an idle peer has unasked chunks to fetch, and duplicates are waste) and
   * the request is late: older than END_GAME_MIN_AGE_MS and than twice what its holder's
   * rate and queue make it due. A gateway still leaves chunks that an edge holds to the edges.
   */
  private pickEndGame (peer: PeerKey, state: PeerState, now: number, outside: boolean): Slot | undefined {
    if (this.requested.size === 0 || this.requested.size > this.endGameThreshold) return undefined
    if (this.remainingChunks() > this.requested.size + this.receiving) return undefined
    for (const slot of this.requested) {
      if (slot.requesters.size >= this.endGameMaxRequests) continue
      if (slot.requesters.has(peer) || !slot.holders.has(peer)) continue
      if (state.gateway && this.edgeCanSend(slot)) continue
      if (outside && this.memberHolds(slot)) continue
      if (!this.isLate(slot, now, state)) continue
      this.counts.endGame++
      slot.why = 'end-game'
      return slot
    }
    return undefined
  }

  /**
   * Every request for the slot has waited past the minimum age and twice the other holders'
   * median chunk time, and twice its holder's expected time, or twice what the idle `candidate`
   * would need. Judged against the others as the slow rule is: on the 16-host bed every holder
   * shares its 20 Mbit/s uplink among 15 askers and takes 5-9 s to deliver each of them a chunk
   * (most of it queued below the chunk server already, where a cancel cannot reach), and a
   * request duplicated after the candidate floor's 4 s crossed twice: 7-44 chunks per run over
   * 15 edges came twice after the end game (2026-12-05, six runs at load 30-45), more the slower
   * the run. A drip among fast holders is judged as before. The holder's own rate is the holder's
   * to make: a chunk delivered in 9 s made its requests look on time for 18 s, so the end game
   * is also judged by the rate of the peer that would take the duplicate — but not before
   * END_GAME_CANDIDATE_FLOOR minimum ages: an honest holder on a loaded machine takes longer
   * than a fast candidate's chunk time, and each such duplicate is a whole chunk on the wire
   * (the CI fleet bed's edges reached 1.11-1.37x the bundle).
   */
  private isLate (slot: Slot, now: number, candidate: PeerState): boolean {
    const candidateMs = candidate.rate === undefined || candidate.penalized ? Infinity : 2 * (candidate.inFlight.size + 1) * slot.bytes / candidate.rate
    for (const [requester, sentAt] of slot.requesters) {
      const age = now - sentAt
      if (age < this.endGameMinAgeMs || age < this.fleetSlowMs(requester)) return false
      const holder = this.peers.get(requester)
      // Arriving from a holder not judged: its bytes come, and the slow rule takes it back if
      // they stop coming for its silence limit. A judged holder (a drip's probe) gets no such wait.
      const arriving = holder === undefined || holder.penalized ? undefined : this.arrivingAt(holder, slot)
      if (arriving !== undefined && now - arriving <= 2 * Math.max(this.slowRequestMs, this.fleetSlowMs(requester))) return false
      // A judged holder's rate says nothing: a tiny object it sent once made a 1 KB/s drip's
      // rate a few bytes a second, and its requests never late.
      if (holder?.rate === undefined || holder.penalized) continue
      let position = 0
      for (const other of holder.inFlight.keys()) {
        position++
        if (other === slot) break
      }
      if (age < Math.min(2 * position * slot.bytes / holder.rate, Math.max(candidateMs, END_GAME_CANDIDATE_FLOOR * this.endGameMinAgeMs))) return false
    }
    return true
  }

  /**
   * Some non-gateway holder of the chunk is not stalled: a gateway leaves the chunk to it.
   * Not once an edge failed this chunk: then advertisements no longer keep the gateway away.
   */
  private edgeCanSend (slot: Slot): boolean {
    if (slot.edgeHolders === 0 || slot.gatewayAllowed) return false
    for (const holder of slot.holders) {
      const state = this.peers.get(holder)
      if (state !== undefined && this.keepsGatewayAway(holder, state)) return true
    }
    return false
  }

  /**
   * An edge holder that could take a request soon: not judged, and not so slow that its full
   * window plus one more chunk would take SLOW_EDGE_QUEUE_MS at its rate to us (and several of
   * the others' chunk times). A claimer that drips keeps its requests but not the gateway away.
   */
  private keepsGatewayAway (peer: PeerKey, state: PeerState): boolean {
    if (state.gateway || state.penalized) return false
    if (state.rate === undefined || state.inFlight.size < this.windowOf(state)) return true
    const queueMs = (state.inFlight.size + 1) * this.chunkSize / state.rate
    return queueMs <= this.slowEdgeQueueMs || queueMs <= SLOW_EDGE_QUEUE_CHUNK_TIMES * this.medianChunkMs(peer)
  }

  /** A gateway other than `except` holds the chunk (it can serve when an edge will not). */
  private gatewayHolds (slot: Slot, except: PeerKey): boolean {
    for (const holder of slot.holders) {
      if (holder !== except && this.peers.get(holder)?.gateway === true) return true
    }
    return false
  }

  private assign (slot: Slot, peer: PeerKey, state: PeerState, now: number): void {
    this.account(state, now)
    if (slot.state === 'requested') this.counts.extra++
    else if (slot.asks > 0) this.counts.again++
    else this.counts.first++
    slot.asks++
    slot.requesters.set(peer, now)
    state.inFlight.set(slot, now)
    if (slot.state === 'pending') {
      slot.state = 'requested'
      this.unbucket(slot)
      this.requested.add(slot)
    }
  }

  private rememberWhy (slot: Slot): void {
    // The oldest goes first: copies come seconds late, not objects later.
    this.completedWhy.set(`${slot.object}:${slot.index}`, slot.why as AskAgainReason)
  }

  private dropRequest (slot: Slot, peer: PeerKey, why: AskAgainReason): void {
    slot.why = why
    slot.requesters.delete(peer)
    if (slot.state === 'requested' && slot.requesters.size === 0) {
      slot.state = 'pending'
      this.requested.delete(slot)
      this.overdue.delete(slot)
      this.rebucket(slot)
    }
  }

  /** Puts a slot where its state says it belongs. */
  private settle (slot: Slot): void {
    if (slot.state === 'pending' && slot.requesters.size > 0) {
      slot.state = 'requested'
      this.requested.add(slot)
    }
    this.rebucket(slot)
  }

  private hold (slot: Slot, peer: PeerKey, state: PeerState): void {
    if (slot.state === 'done' || slot.holders.has(peer)) return
    slot.holders.add(peer)
    state.held.add(slot)
    if (!state.gateway) {
      slot.edgeHolders++
      if (slot.state === 'requested' && this.keepsGatewayAway(peer, state)) this.leaveGateways(slot)
    }
    this.rebucket(slot)
  }

  /**
   * A chunk asked only of gateways now has an edge holder: withdraw it from the gateways so
   * the edge sends it. With a slow gateway uplink the request is still queued there, and the
   * cancel saves the gateway a copy (DESIGN.md: each chunk leaves the gateway about once).
   */
  private leaveGateways (slot: Slot): void {
    // An edge already failed this chunk: a new advertisement is no reason to drop the gateway.
    if (slot.gatewayAllowed) return
    for (const requester of slot.requesters.keys()) {
      const state = this.peers.get(requester)
      if (state?.gateway !== true) return
      // The gateway's copy is arriving already: withdrawn, it would still come, and the edge's too.
      if (this.arrivingAt(state, slot) !== undefined) return
    }
    for (const requester of [...slot.requesters.keys()]) {
      this.peers.get(requester)?.inFlight.delete(slot)
      this.released.push({ peer: requester, object: slot.object, index: slot.index })
      this.dropRequest(slot, requester, 'withdrawn')
    }
  }

  private unhold (slot: Slot, peer: PeerKey): void {
    if (!slot.holders.delete(peer)) return
    const state = this.peers.get(peer)
    state?.held.delete(slot)
    if (state !== undefined && !state.gateway) slot.edgeHolders--
    this.rebucket(slot)
  }

  private rebucket (slot: Slot): void {
    const target = slot.state === 'pending' && slot.holders.size > 0 ? slot.holders.size : -1
    if (target === slot.bucket) return
    this.unbucket(slot)
    if (target < 0) return
    let bucket = this.buckets.get(target)
    if (bucket === undefined) {
      bucket = new Set()
      this.buckets.set(target, bucket)
    }
    bucket.add(slot)
    slot.bucket = target
  }

  private unbucket (slot: Slot): void {
    if (slot.bucket < 0) return
    const bucket = this.buckets.get(slot.bucket)
    bucket?.delete(slot)
    if (bucket?.size === 0) this.buckets.delete(slot.bucket)
    slot.bucket = -1
  }

  private dropPriority (object: string): void {
    const at = this.priority.indexOf(object)
    if (at >= 0) this.priority.splice(at, 1)
  }

  /** The object's lowest-index chunk that `peer` holds and nobody was asked for yet. */
  private firstPendingOf (object: string, peer: PeerKey, outside: boolean): Slot | undefined {
    const entry = this.objects.get(object)
    if (entry === undefined) return undefined
    for (let i = entry.cursor; i < entry.slots.length; i++) {
      const slot = entry.slots[i] as Slot
      if (slot.state === 'pending' && slot.holders.has(peer) && !(outside && this.memberHolds(slot))) return slot
    }
    return undefined
  }

  /** Adds the time since the last event to the peer's busy time while it had requests out. */
  private account (state: PeerState, now: number): void {
    if (state.inFlight.size > 0) state.busyMs += Math.max(0, now - state.lastEventAt)
    state.lastEventAt = now
  }

  private measure (state: PeerState, bytes: number, now: number): void {
    state.lastDeliveryAt = now
    state.penalized = false
    state.judgedAt = Infinity
    state.sampleBytes += bytes
    if (state.busyMs < RATE_SAMPLE_MIN_MS || state.sampleBytes < RATE_SAMPLE_MIN_CHUNK_SHARE * this.chunkSize) return
    const sample = state.sampleBytes / state.busyMs
    state.rate = state.rate === undefined ? sample : state.rate * (1 - this.smoothing) + sample * this.smoothing
    state.sampleBytes = 0
    state.busyMs = 0
  }
}

/** Chunks of completed objects whose reason for a second ask is kept (a few bytes each). */
const COMPLETED_WHY_KEPT = 1024

/** A key that is never in a peer's in-flight map. */
const NO_SLOT: Slot = {
  object: '', index: -1, bytes: 0, state: 'done', holders: new Set(), edgeHolders: 0, requesters: new Map(), bucket: -1,
  gatewayDeferredUntil: 0, deferredBy: undefined, gatewayAllowed: false, asks: 0, why: undefined,
}

function shuffle<T> (items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const a = items[i] as T
    items[i] = items[j] as T
    items[j] = a
  }
}
