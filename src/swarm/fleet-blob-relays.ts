import { RecentMap } from '../recent/index.js'
import { DIAL_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'

/**
 * Askers the pull-through node streams one blob to itself at once. Later askers are pointed at
 * an edge already receiving it (a RELAY frame), so a burst of N cold edges costs the gateway's
 * uplink this many copies, not N (the mission: each byte leaves the gateway about once).
 * Two rather than one: a single first receiver that turns out slow or dies would hold up, or
 * send back to the gateway, every edge below it.
 */
export const FLEET_BLOB_DIRECT_ASKERS = 2
/** Askers pointed at one receiving edge: a binary tree, each edge's uplink carrying at most two more copies. */
export const FLEET_BLOB_RELAY_FANOUT = 2

/**
 * How long the pull-through node keeps a RELAY's stream open for the asker's report that the
 * relay answered (FleetBlobAck.relay_answered): the asker may dial the relay (DIAL_TIMEOUT_MS),
 * open a stream to it (STREAM_OPEN_TIMEOUT_MS) and wait for its answer for the judging window
 * (FLEET_BLOB_RELAY_JUDGE_MS, 10 s), then a margin. A report that comes later is not heard
 * (the asker is then not named a relay for that blob).
 */
export const FLEET_BLOB_RELAY_REPORT_MS = DIAL_TIMEOUT_MS + STREAM_OPEN_TIMEOUT_MS + 10_000 + 5_000
/**
 * How long an asker pointed at a receiver whose answer is not known yet waits here before it is
 * pointed elsewhere (or served here), and the receiver is not named until it reports: the
 * judging window (FLEET_BLOB_RELAY_JUDGE_MS). A compromised receiver that never reports costs an
 * asker this, as a relay that never answers did before receivers had to report; waiting the
 * whole FLEET_BLOB_RELAY_REPORT_MS would have cost it more than before.
 */
export const FLEET_BLOB_RELAY_READY_WAIT_MS = 10_000
/**
 * A stream's rate is its bytes over at least this long: one that ended a few milliseconds after
 * its HEADER (a small blob over loopback) would otherwise claim a rate no link has, and every
 * relay judged against it would be left for this node.
 */
const RATE_MIN_SPAN_MS = 1000
/**
 * Blobs whose streams all ended (each sent whole) whose size is kept for the askers still
 * receiving them from a relay. A fast registry leaves a blob's direct streams done in seconds
 * while a relay may still be sending it to its askers.
 */
const FINISHED_PLANS_KEPT = 256
/** Peers whose last direct stream's rate (any blob) is kept for the reference rate once it ended. */
const PEER_RATES_KEPT = 256

/** What the pull-through node tells an asker it pointed at a relay (a PROGRESS frame). */
export interface FleetBlobProgress {
  /** Bytes of the blob (from its first) this node could send at once. */
  held?: number
  /**
   * What a direct stream from this node typically runs at: the lower median, one rate per peer,
   * of its direct streams (of any blob, live or lately ended), each averaged over its life
   * (`referenceRate`).
   */
  bytesPerSecond?: number
}

/** What the answering stream does for one asker. */
export type FleetBlobRoute =
  | {
    kind: 'direct'
    /**
     * The stream has its bytes (HEADER sent): askers pointed at relays meanwhile may be told the
     * size. `taken` is what the asker has acknowledged taking in from here, from its first byte
     * (the blob's size once the stream ended with END).
     */
    answered: (size: number | undefined, taken: () => number, source?: StreamSource) => void
    /** The stream ended, however (idempotent). */
    release: () => void
    /** The relay this asker had been pointed at and came back from (it failed the asker: not offered again for this blob). */
    failedRelay?: string
    /**
     * What the asker should judge that relay's lag against, given what this node holds now
     * (FleetBlobFrame.relay_held): `held` when the relay has been a direct receiver since before
     * the asker was pointed at it; what the relay acknowledged from here when it became one only
     * later (it left its own relay meanwhile: the lag before was that relay's); 0 when it still
     * receives from another relay (which it judges itself).
     */
    relayHeld?: (held: number | undefined) => number | undefined
  }
  | {
    kind: 'relay'
    /** The edge to ask instead. */
    peer: string
    /**
     * Whether it can answer its askers at once: true once it was sent the blob's HEADER from
     * here (a direct receiver) or reported its own relay's (a relayed one); false when it will
     * not (its stream ended without, or its report came without). Only a ready relay is named:
     * an asker left without an answer by it then charges it.
     */
    ready: Promise<boolean>
    /** It has not become ready within FLEET_BLOB_RELAY_READY_WAIT_MS: not named until it reports. */
    passOver: () => void
    /** The asker's own report, on the RELAY's stream: its relay answered it (it may be named in turn), or not. */
    report: (answered: boolean) => void
    /**
     * The blob's size once a direct stream has its bytes; undefined when every direct stream
     * ended without them (then nobody is receiving it: serve the asker directly after all).
     */
    header: Promise<{ size: number | undefined } | undefined>
  }

interface Receiver {
  peer: string
  /** Askers pointed at this one. */
  children: number
  /** Hops from here: 1 for a direct receiver. */
  depth: number
  /** The relay it was pointed at, while it receives from there. */
  from?: string
  /** It counts among `from`'s children (until it is pointed anew). */
  holdsPlace?: boolean
  /** It came back from a relay (`direct`): served by the pull-through node for the rest of the blob. */
  cameBack?: boolean
  /**
   * Can answer askers at once (sent its HEADER from here, or reported its relay's); false: it
   * will not, or did not in time; undefined: not known yet.
   */
  answering?: boolean
  /** Waiting for `answering` to be known. */
  waiters: Array<(answering: boolean) => void>
  /** When (the plan's clock) it last became a direct receiver. */
  directSince?: number
  /** When it was last pointed at a relay. */
  pointedAt?: number
  /** What it acknowledged from here on its direct stream (from the blob's first byte). */
  taken?: () => number
}

/** What a direct stream tells the plan of its source: the bytes held here, and how long it waited for bytes not held yet. */
export interface StreamSource {
  held: () => number | undefined
  starvedMs: () => number
}

/** One direct stream of a blob from here: its rate is one sample of what this node sends an asker. */
interface DirectStream {
  peer: string
  /** Its peer may be named a relay (`usable` when it asked): a stranger's rate says nothing of the fleet's links. */
  counts: boolean
  /** When (the node's clock, ms) its HEADER went, and what it had acknowledged then (its offset). */
  since: number
  from: number
  taken: () => number
  source?: StreamSource
  /** Its last count, time starved and when it ended. */
  ended?: { taken: number, starvedMs: number, at: number }
}

/**
 * The rate askers judge their relays against (FLEET_BLOB_RELAY_BEHIND_RATIO): the lower median of
 * one rate per peer. The fastest stream was used before, and one fast reader (a compromised
 * member, or an honest edge on the gateway's LAN) made every relay look slow: every asker left
 * its relay and the blob went out as a star. The median of three or more peers lies between
 * honest peers' rates whatever one identity does: reading fast lifts it by one place at most,
 * reading slowly (to keep its own slow relaying judged against itself) lowers it by one at most.
 * With two peers it is the slower, so a fast reader never raises it; then a relay that also reads
 * slowly is judged against itself (docs/architecture.md, "one fast reader").
 */
export function referenceRate (rates: Iterable<number>): number | undefined {
  const sorted = [...rates].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

/** Bytes the asker took over the time the stream had bytes to send (a registry's pauses left out). */
function rateOf (stream: DirectStream, now: number): number {
  const taken = stream.ended?.taken ?? stream.taken()
  const at = stream.ended?.at ?? now
  const starved = stream.ended?.starvedMs ?? stream.source?.starvedMs() ?? 0
  return Math.max(0, taken - stream.from) / (Math.max(RATE_MIN_SPAN_MS, at - stream.since - starved) / 1000)
}

function settleAnswering (receiver: Receiver, answering: boolean): void {
  receiver.answering = answering
  for (const resolve of receiver.waiters.splice(0)) resolve(answering)
}

function whenAnswering (receiver: Receiver): Promise<boolean> {
  if (receiver.answering !== undefined) return Promise.resolve(receiver.answering)
  return new Promise((resolve) => { receiver.waiters.push(resolve) })
}

/** One blob being streamed from here. */
class Plan {
  direct = 0
  /** Orders the receivers' changes (who became direct before whom was pointed where). */
  clock = 0
  /** Relays an asker came back from (too slow, broken off, refused): not offered again for this blob. */
  readonly failed = new Set<string>()
  /** Everyone receiving it from here or through a relay, in the order they asked (earlier ones are further along). */
  readonly receivers: Receiver[] = []
  /** Every direct stream of it, live or ended. */
  readonly streams: DirectStream[] = []
  /** Its size once a stream sent it whole (END). */
  whole: number | undefined
  private answeredSize: { size: number | undefined } | undefined
  private readonly waiting: Array<(header: { size: number | undefined } | undefined) => void> = []

  /** The blob's size once a stream had its bytes (undefined also when the upstream gave none). */
  get size (): number | undefined {
    return this.answeredSize?.size
  }

  get header (): Promise<{ size: number | undefined } | undefined> {
    if (this.answeredSize !== undefined) return Promise.resolve(this.answeredSize)
    return new Promise((resolve) => { this.waiting.push(resolve) })
  }

  answer (size: number | undefined): void {
    this.answeredSize ??= { size }
    this.settle(this.answeredSize)
  }

  /** No direct stream is left: whoever still waits for a header is served directly. */
  settle (header: { size: number | undefined } | undefined): void {
    for (const resolve of this.waiting.splice(0)) resolve(header)
  }

  /** What this node holds of it (its live streams' reader; its size once sent whole). */
  held (): number | undefined {
    if (this.whole !== undefined) return this.whole
    let held: number | undefined
    for (const stream of this.streams) {
      const h = stream.ended === undefined ? stream.source?.held() : undefined
      if (h !== undefined && (held === undefined || h > held)) held = h
    }
    return held
  }
}

/** A stream's rate is a sample once its asker acknowledged bytes (before, 0 says nothing of its link) and its peer counts. */
function sampled (stream: DirectStream): boolean {
  return stream.counts && (stream.ended?.taken ?? stream.taken()) > stream.from
}

/**
 * The pull-through node's view of who is receiving which blob from it (issue 8: edges relay).
 * Pure: no I/O; the protocol asks it where each asker should get a blob from. The first
 * FLEET_BLOB_DIRECT_ASKERS askers of a blob are served from here; each later one is pointed at
 * the shallowest receiver (direct or relayed) that has fewer than FLEET_BLOB_RELAY_FANOUT
 * askers pointed at it, and becomes a receiver others may be pointed at: a balanced tree,
 * pipelined, since every edge serves what it has received so far. A plan lives while a direct stream
 * does; once none does the blob is whole somewhere and later askers find it by lookup.
 */
export class FleetBlobRelays {
  private readonly plans = new Map<string, Plan>()
  /** Blobs sent whole whose streams all ended: their size, and the askers then receiving them from a relay. */
  private readonly finished = new Map<string, { size: number, askers: Set<string> }>()
  /** Each peer's last ended direct stream's rate (any blob), a sample of the reference rate. */
  private readonly endedRates = new RecentMap<string, number>(PEER_RATES_KEPT)
  private readonly now: () => number

  /** `now`: the node's clock in ms (tests set it). */
  constructor (private readonly init: { directAskers?: number, fanout?: number, now?: () => number } = {}) {
    this.now = init.now ?? (() => performance.now())
  }

  /**
   * For an asker this node pointed at a relay (and no one else: the figures are of no use to
   * anyone else, and say what this node is fetching): what it holds of the blob and the rate its
   * direct streams typically run at (`referenceRate`), so the asker can leave a relay far slower
   * than this node. Kept a while after the blob's streams ended, for askers still receiving it
   * from their relay.
   */
  progress (digest: string, asker: string): FleetBlobProgress {
    const plan = this.plans.get(digest)
    let held: number | undefined
    if (plan !== undefined) {
      if (!plan.receivers.some(r => r.peer === asker && r.from !== undefined)) return {}
      held = plan.held()
    } else {
      const finished = this.finished.get(digest)
      if (finished?.askers.has(asker) !== true) return {}
      held = finished.size
    }
    const rate = this.referenceRate()
    return { ...(held === undefined ? {} : { held }), ...(rate === undefined ? {} : { bytesPerSecond: Math.round(rate) }) }
  }

  /** The reference rate now: each counted peer's live direct stream (any blob), else its last ended one. */
  private referenceRate (): number | undefined {
    const now = this.now()
    const rates = new Map(this.endedRates)
    for (const plan of this.plans.values()) {
      for (const stream of plan.streams) {
        if (stream.ended === undefined && sampled(stream)) rates.set(stream.peer, rateOf(stream, now))
      }
    }
    return referenceRate(rates.values())
  }

  /**
   * Where `asker` gets `digest`. `mayRelay` is false for an asker that must be served here (its
   * relay failed it, it resumes from an offset); `usable` says whether a receiver may be named
   * (connected, not banned, one this node would have serve others). `cameBack`: the asker asked
   * to be served here (`direct`), which an asker does only once the relay it was pointed at
   * failed it; that relay is then not named again for this blob.
   */
  route (digest: string, asker: string, options: { mayRelay: boolean, usable: (peer: string) => boolean, cameBack?: boolean }): FleetBlobRoute {
    let plan = this.plans.get(digest)
    if (plan === undefined) {
      plan = new Plan()
      this.plans.set(digest, plan)
    }
    const known = plan.receivers.find(r => r.peer === asker)
    const pointedAt = known?.pointedAt
    const failedRelay = options.cameBack === true && known !== undefined ? this.cameBack(plan, known) : undefined
    // An asker that came back from a relay (now or before) is served here for the rest of the
    // blob: pointed at relay after relay, coming back from each, one identity made every relay
    // of the blob failed (its word alone marks one), and every later asker was served here.
    if (options.mayRelay && known?.cameBack !== true && plan.direct >= (this.init.directAskers ?? FLEET_BLOB_DIRECT_ASKERS)) {
      // One asker holds one place under a relay: asked again while pointed at one, it gives
      // that place back before it is pointed anew (each ask took one more, and one identity
      // asking over and over filled every relay's places: the rest were served here, a star).
      if (known?.from !== undefined) this.leave(plan, known)
      const relay = this.pickRelay(plan, asker, options.usable)
      if (relay !== undefined) {
        relay.children++
        let receiver = known
        if (receiver === undefined) {
          receiver = { peer: asker, children: 0, depth: relay.depth + 1, waiters: [] }
          plan.receivers.push(receiver)
        }
        receiver.from = relay.peer
        receiver.holdsPlace = true
        receiver.pointedAt = ++plan.clock
        // Not known to answer until it reports that its relay answered it.
        if (receiver.answering !== true) receiver.answering = undefined
        const pointed = receiver
        return {
          kind: 'relay',
          peer: relay.peer,
          ready: whenAnswering(relay),
          passOver: () => { if (relay.answering === undefined) settleAnswering(relay, false) },
          report: (answered) => { if (pointed.from === relay.peer) settleAnswering(pointed, answered) },
          header: plan.header,
        }
      }
    }
    const relayHeld = failedRelay === undefined ? undefined : this.relayHeld(plan, failedRelay, pointedAt)
    return { ...this.direct(digest, plan, asker, options.usable(asker)), failedRelay, relayHeld }
  }

  /** `receiver` gives back its place under the relay it was pointed at (once). */
  private leave (plan: Plan, receiver: Receiver): void {
    if (receiver.holdsPlace !== true) return
    receiver.holdsPlace = false
    const relay = plan.receivers.find(r => r.peer === receiver.from)
    if (relay !== undefined) relay.children = Math.max(0, relay.children - 1)
  }

  /** The relay `receiver` was pointed at, marked failed for this blob; undefined when it was pointed at none. */
  private cameBack (plan: Plan, receiver: Receiver): string | undefined {
    const relay = receiver.from
    if (relay === undefined) return undefined
    receiver.from = undefined
    receiver.cameBack = true
    plan.failed.add(relay)
    return relay
  }

  /** See the direct route's `relayHeld`. */
  private relayHeld (plan: Plan, relay: string, pointedAt: number | undefined): (held: number | undefined) => number | undefined {
    return (held) => {
      const receiver = plan.receivers.find(r => r.peer === relay)
      if (receiver === undefined || receiver.from !== undefined || receiver.directSince === undefined) return 0
      if (pointedAt !== undefined && receiver.directSince < pointedAt) return held
      return receiver.taken?.() ?? 0
    }
  }

  /** Blobs being streamed from here now (for tests and the log). */
  get streaming (): number {
    return this.plans.size
  }

  /**
   * The shallowest receiver with room (fewest hops from here, so the tree stays balanced and
   * each byte's path short), then the one with fewest askers on it, then the earliest.
   */
  private pickRelay (plan: Plan, asker: string, usable: (peer: string) => boolean): Receiver | undefined {
    const fanout = this.init.fanout ?? FLEET_BLOB_RELAY_FANOUT
    let best: Receiver | undefined
    for (const receiver of plan.receivers) {
      if (receiver.peer === asker || receiver.children >= fanout || receiver.answering === false || plan.failed.has(receiver.peer) || !usable(receiver.peer)) continue
      if (best === undefined || receiver.depth < best.depth || (receiver.depth === best.depth && receiver.children < best.children)) best = receiver
    }
    return best
  }

  private direct (digest: string, plan: Plan, asker: string, counts: boolean): Extract<FleetBlobRoute, { kind: 'direct' }> {
    plan.direct++
    let receiver = plan.receivers.find(r => r.peer === asker)
    // Served from here now (it may have been relayed before and come back): one hop.
    if (receiver === undefined) {
      receiver = { peer: asker, children: 0, depth: 1, waiters: [] }
      plan.receivers.push(receiver)
    } else {
      receiver.depth = 1
      receiver.from = undefined
      // One that reported its relay's HEADER has bytes to answer with; anyone else once it has ours.
      if (receiver.answering !== true) receiver.answering = undefined
    }
    receiver.directSince = ++plan.clock
    receiver.taken = undefined
    const served = receiver
    let released = false
    let stream: DirectStream | undefined
    return {
      kind: 'direct',
      answered: (size, taken, source) => {
        served.taken = taken
        stream = { peer: asker, counts, since: this.now(), from: taken(), taken, source }
        plan.streams.push(stream)
        settleAnswering(served, true)
        plan.answer(size)
      },
      release: () => {
        if (released) return
        released = true
        if (stream !== undefined) {
          stream.ended = { taken: stream.taken(), starvedMs: stream.source?.starvedMs() ?? 0, at: this.now() }
          // taken() is the blob's size once END went: it was sent whole.
          const size = plan.size
          if (size !== undefined && stream.ended.taken === size) plan.whole = size
          if (sampled(stream)) this.endedRates.set(asker, rateOf(stream, this.now()))
        }
        // Ended before it had our HEADER: it has nothing to answer with.
        if (served.answering === undefined) settleAnswering(served, false)
        if (--plan.direct > 0) return
        // Nobody receives it from here any more: askers still waiting are served directly.
        plan.settle(undefined)
        if (this.plans.get(digest) === plan) {
          this.plans.delete(digest)
          this.keepFinished(digest, plan)
        }
      },
    }
  }

  private keepFinished (digest: string, plan: Plan): void {
    const askers = new Set(plan.receivers.filter(r => r.from !== undefined).map(r => r.peer))
    if (plan.whole === undefined || askers.size === 0) return
    this.finished.delete(digest)
    this.finished.set(digest, { size: plan.whole, askers })
    for (const oldest of this.finished.keys()) {
      if (this.finished.size <= FINISHED_PLANS_KEPT) break
      this.finished.delete(oldest)
    }
  }
}
