// A discrete-event simulation of one bundle spreading from a gateway to N-1 edges. Every
// edge runs the daemon's own Scheduler (imported through src/swarm/index.ts, not a copy),
// driven the way src/swarm/swarm.ts drives it; the links, the have protocol and the chunk
// servers around it are modelled here.
//
// The model (what is simulated, and what is left out):
// - Links. Every node has an uplink and a downlink of the same fixed rate and a fixed
//   one-way latency. A chunk transfer occupies the sender's uplink and the receiver's
//   downlink together for chunkBytes / rate and may start only when both are free (a slot
//   model, not a fluid fair share: one chunk at a time per link, at full rate). The bytes
//   arrive one latency after the transfer ends. Control messages (requests, cancels,
//   statuses, have-lists) take the latency only: they never queue behind chunk bytes.
// - Chunk servers (src/swarm/chunk-protocol.ts, re-implemented: ChunkServer is bound to
//   libp2p streams; the gateway's seeding policy is the daemon's own GatewaySeeding,
//   src/swarm/gateway-seeding.ts, on the simulated clock). Each asker has its own stream (ServeSession) and queue;
//   the streams with queued requests take turns on the sender's uplink, one chunk per turn
//   (round robin: the slot-model stand-in for several TCP connections sharing an uplink),
//   skipping askers whose downlink is busy. Within a stream a node takes the request whose
//   chunk the fewest of its other neighbours hold, a gateway counting the copies it sent too
//   (ServeSession.nextAt; ties in arrival order). A gateway defers a request for a chunk it sent another
//   neighbour within the policy's window (GatewaySeeding.shouldDefer, decided when the
//   request arrives and again when it comes up to be sent), and passes over a stream whose next
//   chunk it sent before while another stream has a never-sent one, until that request has
//   waited the policy's secondCopyWaitMs; an edge passes over a stream whose next chunk
//   another edge neighbour holds while another stream has one only it holds, until that
//   request has waited SOLE_COPY_HOLD_MS (soleCopyWaitMs, src/swarm/sole-copies.ts). Where
//   the daemon's held stream waits, the simulator sends another stream's chunk or, when no
//   stream qualifies, the held one: it never leaves an uplink idle. A cancel removes a request still queued (CANCELLED
//   reply); a chunk already on the wire arrives anyway and counts as a duplicate. The
//   receiver learns a transfer started one latency after it did (Scheduler.responseStarted,
//   as the daemon's chunk client reports a response's first bytes).
// - Have protocol (src/swarm/have-protocol.ts). A stored chunk is announced to every
//   neighbour in a batch sent HAVE_BATCH_INTERVAL_MS after the first unannounced chunk; it
//   arrives one latency later and feeds the receiver's scheduler (addHolder). The gateway's
//   "whole" state reaches its neighbours one latency after the start.
// - The swarm loop (src/swarm/swarm.ts). Every event that could free or fill a window
//   queues one pump per node at the current time (as setImmediate coalesces them):
//   takeReleased → cancels, next(now) → requests. A tick every SCHEDULER_TICK_MS per node
//   (random phase) runs expire(now) and a pump. A chunk is verified and stored `storeMs`
//   after it arrives (default 0), then stored() and the have batch.
// - Left out: manifest fetch, connection set-up and hello round trips (every edge knows the
//   bundle and its neighbours at time 0), DHT lookups, disk and CPU limits, loss, churn,
//   byzantine peers, download/upload caps, priority objects.
import { GATEWAY_SEEDING_POLICY, GatewaySeeding, Scheduler, soleCopyWaitMs, type ExtraCopyReason, type SchedulerInit } from '../../src/swarm/index.js'
import { EventQueue } from './event-queue.js'
import { deriveSeed, seededRandom } from './random.js'
import { buildTopology } from './topology.js'

/**
 * Copies of the daemon's constants (src/swarm/constants.ts; scripts import nothing but
 * src/swarm/index.ts); test/simulate checks they still match the sources.
 */
export const DAEMON_CONSTANTS = {
  HAVE_BATCH_INTERVAL_MS: 50,
  SCHEDULER_TICK_MS: 1_000,
  /** src/manifest CHUNK_SIZE_BYTES */
  CHUNK_SIZE_BYTES: 1024 * 1024,
  /** MAX_NEIGHBOURS: a daemon dials discovered peers until it has this many. */
  MAX_NEIGHBOURS: 64,
} as const

export type ServeOrder = 'daemon' | 'edge-fifo' | 'node-rarest' | 'gateway-node-rarest'

export interface SimConfig {
  nodes: number
  bundleBytes: number
  /** The bundle is split into this many objects of about equal size. */
  objects: number
  rateBitsPerSecond: number
  delayMs: number
  /** Neighbours per edge (capped at N-1). */
  neighbours: number
  /** Neighbours of the gateway; defaults to `neighbours`. */
  gatewayNeighbours?: number
  seed: number
  /** Verification and storage time of one chunk. */
  storeMs?: number
  /** Give up at this simulated time (ms); nodes not done by then are reported incomplete. */
  maxSimMs?: number
  /** Gateway deferral as GatewaySeeding.shouldDefer does it (true by default; false to measure without it). */
  gatewayDefers?: boolean
  /**
   * Also apply the gateway's deferral when a queued request comes up to be sent, not only when
   * it arrives (the daemon does: true by default; false for the chunk server before 2026-11-25).
   */
  gatewayDefersAtSend?: boolean
  /** How many times the gateway defers one asker for one chunk (GATEWAY_SEEDING_POLICY.maxDeferralsPerAsker). */
  gatewayDeferralsPerAsker?: number
  /** GATEWAY_SEEDING_POLICY.servesAdvertised: serve a deferred asker once another neighbour advertises the chunk. */
  gatewayServesAdvertised?: boolean
  /** GATEWAY_SEEDING_POLICY.deferralBudgetPerAsker: DEFERRED answers per asker, all chunks, decayed (Infinity: none). */
  gatewayDeferralBudget?: number
  /** GATEWAY_SEEDING_POLICY.secondCopyWaitMs: a second copy waits while first copies are queued for others, at most this long. */
  gatewaySecondCopyWaitMs?: number
  /**
   * How a node's chunk server picks the next chunk to send:
   * - 'daemon' (default), as src/swarm/chunk-protocol.ts does today: the askers' streams take
   *   turns; within a stream each answers rarest first (ties in arrival order);
   * - 'edge-fifo': the same turns, but edges answer in arrival order within a stream (the
   *   daemon before 2026-12-05);
   * - 'node-rarest': one queue across all streams, rarest first (edges and gateway);
   * - 'gateway-node-rarest': edges as the daemon, the gateway with one queue across streams.
   * "Rarest" is the fewest neighbours holding the chunk (HaveList.holderCount), plus for a
   * gateway the copies it already sent.
   */
  serveOrder?: ServeOrder
  /** An edge's hold for sole copies (the daemon's soleCopyWaitMs: its default when absent; 0 turns it off). */
  soleCopyHoldMs?: number
  /** Options handed to every edge's Scheduler, as SwarmInit.scheduler does. */
  scheduler?: Partial<Omit<SchedulerInit, 'chunkSizeBytes' | 'random'>>
  /** Sample the swarm's state this often (simulated ms) into SimResult.timeline; off when absent. */
  timelineMs?: number
}

/** The swarm at one moment (SimConfig.timelineMs): where a pull's time goes. */
export interface TimelineSample {
  s: number
  /** Distinct chunks the gateway has sent. */
  seeded: number
  /** Chunks held by the edges: the fewest, the 10th percentile, the median. */
  heldMin: number
  heldP10: number
  heldMedian: number
  /** Edges still pulling, and how many of their downlinks and uplinks are receiving or sending. */
  pulling: number
  downBusy: number
  upBusy: number
  /** Edges that hold a chunk one of their neighbours still needs, with their uplink idle. */
  idleUseful: number
  /**
   * Pulling edges whose downlink is idle, by why: no edge neighbour holds a chunk they lack
   * (starved: the spread has not reached them), every neighbour that does is sending to
   * someone else (contended), or one with an idle uplink does (unmatched: asked elsewhere
   * or not at all).
   */
  idleStarved: number
  idleContended: number
  idleUnmatched: number
  /** Requests queued at edges' chunk servers, and at the gateway's. */
  queuedAtEdges: number
  queuedAtGateway: number
}

export interface SimResult {
  nodes: number
  bundleBytes: number
  chunks: number
  objects: number
  rateBitsPerSecond: number
  delayMs: number
  neighbours: number
  gatewayNeighbours: number
  seed: number
  topology: { minDegree: number, maxDegree: number, meanDegree: number, bridges: number }
  /** bundle bits / link rate, seconds: no node can finish sooner. */
  lowerBoundS: number
  /** Completion time of the last edge, seconds (Infinity if some never finished). */
  lastS: number
  medianS: number
  lastOverLowerBound: number
  medianOverLowerBound: number
  incompleteNodes: number
  gatewayUploadBytes: number
  gatewayUploadOverBundle: number
  /** Chunk transfers whose bytes the receiver already had or was storing (end game, late cancels). */
  duplicateChunks: number
  /** …as a share of the (N-1) × chunks transfers a perfect swarm needs. */
  duplicateShare: number
  chunkTransfers: number
  cancelsSent: number
  cancelledInQueue: number
  gatewayDeferrals: number
  /** The most DEFERRED answers one asker got (peer-score.ts charges 32 and more, past 8x what was served). */
  gatewayDeferralsMaxPerAsker: number
  /** Median over edges of the share of its pull its downlink was receiving. */
  edgeDownlinkBusyMedian: number
  /** Median over edges of the edge neighbours each asked for a chunk at some time (the daemon opens a lane to each). */
  edgeHoldersAskedMedian: number
  /** Edge neighbours an edge has requests outstanding with at once, averaged over its scheduler ticks while pulling. */
  edgeHoldersBusyMean: number
  /** When the last chunk's first copy had left the gateway, seconds: no edge can finish sooner. */
  gatewaySeededS: number
  /** Share of that time the gateway's uplink was sending. */
  gatewayBusyWhileSeeding: number
  /** Why the gateway sent a chunk more than once (counts of extra copies). */
  gatewayExtraCopies: {
    total: number
    /** The asker had been deferred for this chunk already: its second request is served. */
    afterDeferral: number
    /** The previous copy left the gateway more than DEFER_RECENT_UPLOAD_MS earlier. */
    previousCopyOld: number
    /** Sent to the same neighbour as the last copy (end game duplicates). */
    sameAsker: number
    /** At the request, none of the asker's edge neighbours held the chunk. */
    noEdgeNeighbourHeldIt: number
    /** The same copies by the reason the daemon's GatewaySeeding gives (extraCopies: what the bed reports). */
    reasons: Partial<Record<ExtraCopyReason, number>>
  }
  events: number
  simulatedS: number
  wallMs: number
  /** CPU time of this process during the run (user + system): steadier than wall time on a shared machine. */
  cpuMs: number
  timeline?: TimelineSample[]
}

const enum Kind { Request, Cancel, Reply, TransferStart, TransferEnd, Deliver, Stored, HaveFlush, HaveArrive, Pump, Tick, GatewayHello, Sample }
const enum Status { Cancelled, Deferred, NotPresent }

interface SimEvent {
  kind: Kind
  /** The node the event happens at. */
  node: number
  /** The other end (sender, asker…), or -1. */
  peer: number
  /** A global chunk number, or -1. */
  chunk: number
  status: Status
  batch: number[] | undefined
}

interface QueuedRequest {
  from: number
  chunk: number
  /** When it was queued (a second copy waits behind first copies for at most the policy's time). */
  queuedAt: number
  /** Edge neighbours of the asker holding the chunk when the request arrived (diagnostics). */
  edgeHolders: number
}

interface SimNode {
  id: number
  key: string
  gateway: boolean
  neighbours: number[]
  scheduler: Scheduler | undefined
  holds: Uint8Array
  missing: number
  completedAt: number
  upBusy: boolean
  /** Requests queued per asker (one chunk stream each), in arrival order. */
  sessions: Map<number, QueuedRequest[]>
  /** Askers with queued requests, in the order their streams take turns on the uplink. */
  askers: number[]
  nextAsker: number
  queued: number
  downBusy: boolean
  /** Senders with a queued request for this node that found its downlink busy. */
  waiters: number[]
  waiting: Set<number>
  unannounced: number[]
  flushQueued: boolean
  pumpQueued: boolean
  /** Chunks accepted and not yet stored (the scheduler's `receiving`). */
  storing: number
  uploadedBytes: number
  downloadedBytes: number
  /** Edge neighbours this node has asked for a chunk, ever. */
  askedEdges: Set<number>
  /** Over its ticks while pulling: edge neighbours with its requests outstanding, summed, and the ticks. */
  busyEdgesSum: number
  busyEdgesTicks: number
}

const NO_CHUNK = -1

export function simulate (config: SimConfig): SimResult {
  const started = performance.now()
  const cpuStarted = process.cpuUsage()
  const storeMs = config.storeMs ?? 0
  const maxSimMs = config.maxSimMs ?? 3_600_000
  const gatewayDefers = config.gatewayDefers ?? true
  // The daemon's chunk server checks the deferral again when a queued request is sent.
  const gatewayDefersAtSend = config.gatewayDefersAtSend ?? true
  const seedingPolicy = {
    ...GATEWAY_SEEDING_POLICY,
    maxDeferralsPerAsker: config.gatewayDeferralsPerAsker ?? GATEWAY_SEEDING_POLICY.maxDeferralsPerAsker,
    servesAdvertised: config.gatewayServesAdvertised ?? GATEWAY_SEEDING_POLICY.servesAdvertised,
    deferralBudgetPerAsker: config.gatewayDeferralBudget ?? GATEWAY_SEEDING_POLICY.deferralBudgetPerAsker,
    secondCopyWaitMs: config.gatewaySecondCopyWaitMs ?? GATEWAY_SEEDING_POLICY.secondCopyWaitMs,
  }
  const serveOrder: ServeOrder = config.serveOrder ?? 'daemon'
  const soleCopyHoldMs = config.soleCopyHoldMs
  const edgeRarest = serveOrder !== 'edge-fifo'
  const N = config.nodes
  const degree = Math.min(N - 1, config.neighbours)
  const gatewayDegree = Math.min(N - 1, config.gatewayNeighbours ?? config.neighbours)
  const chunkSize = DAEMON_CONSTANTS.CHUNK_SIZE_BYTES
  const delay = config.delayMs
  const msPerByte = 8000 / config.rateBitsPerSecond

  // ---- the bundle: objects of about equal size, chunks numbered across them -------------
  const objectCount = Math.max(1, Math.min(config.objects, Math.ceil(config.bundleBytes / chunkSize)))
  const objectNames: string[] = []
  const objectSizes: number[] = []
  const chunkObject: number[] = []
  const chunkIndex: number[] = []
  const chunkBytes: number[] = []
  const firstChunk: number[] = []
  {
    let left = config.bundleBytes
    for (let o = 0; o < objectCount; o++) {
      const size = o === objectCount - 1 ? left : Math.floor(config.bundleBytes / objectCount)
      left -= size
      objectNames.push(`object-${o}`)
      objectSizes.push(size)
      firstChunk.push(chunkObject.length)
      const count = Math.ceil(size / chunkSize)
      for (let i = 0; i < count; i++) {
        chunkObject.push(o)
        chunkIndex.push(i)
        chunkBytes.push(Math.min(chunkSize, size - i * chunkSize))
      }
    }
  }
  const totalChunks = chunkObject.length
  const objectOf = new Map(objectNames.map((name, o) => [name, o]))
  const globalChunk = (object: string, index: number): number => (firstChunk[objectOf.get(object) as number] as number) + index

  // ---- nodes and links ------------------------------------------------------------------
  const topology = buildTopology(N, degree, gatewayDegree, seededRandom(deriveSeed(config.seed, 0)))
  const nodes: SimNode[] = []
  for (let id = 0; id < N; id++) {
    const gateway = id === 0
    nodes.push({
      id, key: `n${id}`, gateway, neighbours: topology.neighbours[id] as number[],
      scheduler: gateway
        ? undefined
        : new Scheduler({ ...config.scheduler, chunkSizeBytes: chunkSize, random: seededRandom(deriveSeed(config.seed, id + 1)) }),
      holds: new Uint8Array(totalChunks).fill(gateway ? 1 : 0),
      missing: gateway ? 0 : totalChunks,
      completedAt: gateway ? 0 : -1,
      upBusy: false, sessions: new Map(), askers: [], nextAsker: 0, queued: 0, downBusy: false, waiters: [], waiting: new Set(),
      unannounced: [], flushQueued: false, pumpQueued: false, storing: 0, uploadedBytes: 0, downloadedBytes: 0, askedEdges: new Set(), busyEdgesSum: 0, busyEdgesTicks: 0,
    })
  }
  const nodeOf = (key: string): SimNode => nodes[Number(key.slice(1))] as SimNode
  const gatewayNode = nodes[0] as SimNode

  // holderCount[node * totalChunks + chunk]: how many of the node's neighbours announced the
  // chunk (HaveList.holderCount); the gateway's row orders its queue, edges' rows are kept
  // only when serveOrder makes edges use them.
  const holderCount = new Int32Array(N * totalChunks)
  // advertised[node * objectCount + object]: the gateway heard from the node about the object.
  const advertised = new Uint8Array(N * objectCount)
  // The gateway's seeding policy, the daemon's own code on the simulated clock, over what its
  // have-list knows (the asker is never counted: it asks only for chunks it lacks).
  const seeding = new GatewaySeeding({
    advertises: (peer, object) => advertised[Number(peer.slice(1)) * objectCount + (objectOf.get(object) as number)] === 1,
    holderCount: (object, index) => holderCount[globalChunk(object, index)] as number,
  }, seedingPolicy, () => now)
  const copiesSent = (chunk: number): number => seeding.copiesSent(objectNames[chunkObject[chunk] as number] as string, chunkIndex[chunk] as number)
  let gatewayDistinctSent = 0
  /** DEFERRED answers per asker: an edge's peer score charges a gateway for a pattern of them. */
  const deferralsOf = new Int32Array(N)
  let gatewaySeededAt = Infinity
  let gatewayBusyWhileSeeding = 0

  const stats = {
    duplicateChunks: 0, chunkTransfers: 0, cancelsSent: 0, cancelledInQueue: 0, gatewayDeferrals: 0,
    extra: { total: 0, afterDeferral: 0, previousCopyOld: 0, sameAsker: 0, noEdgeNeighbourHeldIt: 0 },
  }

  const queue = new EventQueue<SimEvent>()
  const at = (time: number, kind: Kind, node: number, peer = -1, chunk = NO_CHUNK, status = Status.Cancelled, batch?: number[]): void => {
    queue.push(time, { kind, node, peer, chunk, status, batch })
  }
  let now = 0
  let edgesLeft = N - 1

  // ---- the asking side (Swarm.pump and friends) ------------------------------------------
  const schedulePump = (node: SimNode): void => {
    if (node.pumpQueued || node.missing === 0) return
    node.pumpQueued = true
    at(now, Kind.Pump, node.id)
  }
  const sendCancel = (from: SimNode, peerKey: string, object: string, index: number): void => {
    stats.cancelsSent++
    at(now + delay, Kind.Cancel, nodeOf(peerKey).id, from.id, globalChunk(object, index))
  }
  const pump = (node: SimNode): void => {
    const scheduler = node.scheduler
    if (scheduler === undefined || node.missing === 0) return
    for (const r of scheduler.takeReleased()) sendCancel(node, r.peer, r.object, r.index)
    // next() hands out nothing, and changes nothing, while its limits are reached: skipping
    // the call then is exact, and saves most of the simulator's time at large N.
    if (!scheduler.canRequest()) return
    for (const r of scheduler.next(now)) at(now + delay, Kind.Request, nodeOf(r.peer).id, node.id, globalChunk(r.object, r.index))
    // Requests next() moved to another holder: cancelled now, not at the next pump.
    for (const r of scheduler.takeReleased()) sendCancel(node, r.peer, r.object, r.index)
  }

  const stored = (node: SimNode, chunk: number): void => {
    const scheduler = node.scheduler as Scheduler
    node.holds[chunk] = 1
    node.missing--
    scheduler.stored(objectNames[chunkObject[chunk] as number] as string, chunkIndex[chunk] as number)
    node.unannounced.push(chunk)
    if (!node.flushQueued) {
      node.flushQueued = true
      at(now + DAEMON_CONSTANTS.HAVE_BATCH_INTERVAL_MS, Kind.HaveFlush, node.id)
    }
    if (node.missing === 0) {
      node.completedAt = now
      edgesLeft--
    }
    schedulePump(node)
  }

  // ---- the serving side (ChunkServer) -----------------------------------------------------
  const edgeNeighboursHolding = (asker: SimNode, chunk: number): number => {
    let count = 0
    for (const n of asker.neighbours) if (n !== 0 && (nodes[n] as SimNode).holds[chunk] === 1) count++
    return count
  }

  const shouldDefer = (asker: number, chunk: number): boolean =>
    gatewayDefers && seeding.shouldDefer(`n${asker}`, objectNames[chunkObject[chunk] as number] as string, chunkIndex[chunk] as number)

  const enqueue = (sender: SimNode, request: QueuedRequest): void => {
    let session = sender.sessions.get(request.from)
    if (session === undefined) {
      session = []
      sender.sessions.set(request.from, session)
    }
    if (session.length === 0) sender.askers.push(request.from)
    session.push(request)
    sender.queued++
  }

  const dequeue = (sender: SimNode, asker: number, at: number): QueuedRequest => {
    const session = sender.sessions.get(asker) as QueuedRequest[]
    const [request] = session.splice(at, 1) as [QueuedRequest]
    sender.queued--
    if (session.length === 0) {
      const turn = sender.askers.indexOf(asker)
      sender.askers.splice(turn, 1)
      if (sender.nextAsker > turn) sender.nextAsker--
    }
    return request
  }

  const wait = (sender: SimNode, receiver: SimNode): void => {
    if (receiver.waiting.has(sender.id)) return
    receiver.waiting.add(sender.id)
    receiver.waiters.push(sender.id)
  }

  /** How many of the sender's neighbours hold the chunk, plus (gateway) the copies it sent. */
  const rarity = (sender: SimNode, chunk: number): number =>
    sender.gateway
      ? (holderCount[chunk] as number) + copiesSent(chunk)
      : holderCount[sender.id * totalChunks + chunk] as number

  /** Within one asker's stream: the rarest chunk first (edges with 'edge-fifo': FIFO). */
  const pickInSession = (sender: SimNode, session: QueuedRequest[]): number => {
    if (!sender.gateway && !edgeRarest) return 0
    let pick = 0
    let best = Infinity
    for (let i = 0; i < session.length; i++) {
      const holders = rarity(sender, (session[i] as QueuedRequest).chunk)
      if (holders < best) {
        best = holders
        pick = i
        if (holders === 0) break
      }
    }
    return pick
  }

  /**
   * Starts the sender's next transfer if its uplink and that receiver's downlink are free.
   * The askers' streams take turns (round robin: TCP connections sharing an uplink), each
   * answered in its own order; with 'node-rarest' one queue spans every stream instead.
   */
  const tryStart = (sender: SimNode): void => {
    if (sender.upBusy || sender.queued === 0) return
    const rr = sender.askers
    let asker = -1
    let pick = -1
    if (serveOrder === 'node-rarest' || (serveOrder === 'gateway-node-rarest' && sender.gateway)) {
      let best = Infinity
      for (const id of rr) {
        if ((nodes[id] as SimNode).downBusy) continue
        const session = sender.sessions.get(id) as QueuedRequest[]
        for (let i = 0; i < session.length; i++) {
          const holders = rarity(sender, (session[i] as QueuedRequest).chunk)
          if (holders < best) {
            best = holders
            asker = id
            pick = i
          }
        }
      }
    } else {
      // A gateway's streams whose next chunk is a second copy wait their turn while another
      // stream has a first copy to send (GatewaySeeding.secondCopyWaitMs), an edge's whose
      // next chunk another edge neighbour holds while another has a chunk only this edge
      // holds (soleCopyWaitMs); when none has, every stream takes its turn.
      const waits = sender.gateway ? seedingPolicy.secondCopyWaitMs > 0 : edgeRarest && soleCopyHoldMs !== 0
      for (let pass = waits ? 0 : 1; pass < 2 && asker < 0; pass++) {
        for (let k = 0; k < rr.length; k++) {
          const turn = (sender.nextAsker + k) % rr.length
          const id = rr[turn] as number
          if ((nodes[id] as SimNode).downBusy) continue
          const session = sender.sessions.get(id) as QueuedRequest[]
          const at = pickInSession(sender, session)
          if (pass === 0 && !sender.gateway) {
            // An edge's streams whose pick another edge neighbour holds too wait their turn
            // while another stream has a chunk only this edge holds (sole-copies.ts).
            const request = session[at] as QueuedRequest
            if (soleCopyWaitMs(rarity(sender, request.chunk), request.queuedAt, now, soleCopyHoldMs) > 0) continue
          } else if (pass === 0) {
            const request = session[at] as QueuedRequest
            const object = objectNames[chunkObject[request.chunk] as number] as string
            if (seeding.secondCopyWaitMs(object, chunkIndex[request.chunk] as number, request.queuedAt) > 0) continue
          }
          asker = id
          pick = at
          sender.nextAsker = turn + 1
          break
        }
      }
    }
    if (asker < 0) {
      for (const id of rr) wait(sender, nodes[id] as SimNode)
      return
    }
    const request = dequeue(sender, asker, pick)
    const receiver = nodes[request.from] as SimNode
    const chunk = request.chunk
    if (sender.gateway && gatewayDefersAtSend && shouldDefer(receiver.id, chunk)) {
      // Another asker was sent this chunk while the request waited here: leave it to them too.
      stats.gatewayDeferrals++
      deferralsOf[receiver.id] = (deferralsOf[receiver.id] as number) + 1
      at(now + delay, Kind.Reply, receiver.id, sender.id, chunk, Status.Deferred)
      tryStart(sender)
      return
    }
    const bytes = chunkBytes[chunk] as number
    if (sender.gateway) {
      const object = objectNames[chunkObject[chunk] as number] as string
      const index = chunkIndex[chunk] as number
      const last = seeding.lastCopy(object, index)
      if (last !== undefined) {
        const extra = stats.extra
        extra.total++
        if (seeding.deferralsOf(receiver.key, object, index) > 0) extra.afterDeferral++
        if (now - last.at > seedingPolicy.deferRecentUploadMs) extra.previousCopyOld++
        if (last.peer === receiver.key) extra.sameAsker++
        if (request.edgeHolders === 0) extra.noEdgeNeighbourHeldIt++
      } else if (++gatewayDistinctSent === totalChunks) {
        gatewaySeededAt = now + bytes * msPerByte
        gatewayBusyWhileSeeding = gatewayNode.uploadedBytes + bytes
      }
      seeding.recordSent(receiver.key, object, index)
    }
    sender.upBusy = true
    receiver.downBusy = true
    sender.uploadedBytes += bytes
    receiver.downloadedBytes += bytes
    stats.chunkTransfers++
    // The receiver sees the first bytes one latency later, as the daemon's chunk client reports them.
    at(now + delay, Kind.TransferStart, receiver.id, sender.id, chunk)
    at(now + bytes * msPerByte, Kind.TransferEnd, sender.id, receiver.id, chunk)
  }

  /** A downlink came free: senders that waited for it try again, in the order they waited. */
  const wake = (receiver: SimNode): void => {
    if (receiver.waiters.length === 0) return
    const waiters = receiver.waiters
    receiver.waiters = []
    receiver.waiting.clear()
    for (const id of waiters) tryStart(nodes[id] as SimNode)
  }

  // ---- start: every edge wants the bundle and knows its neighbours ------------------------
  for (const node of nodes) {
    const scheduler = node.scheduler
    if (scheduler === undefined) continue
    for (let o = 0; o < objectCount; o++) {
      const count = Math.ceil((objectSizes[o] as number) / chunkSize)
      scheduler.want(objectNames[o] as string, objectSizes[o] as number, Array.from({ length: count }, (_, i) => i))
    }
    for (const n of node.neighbours) scheduler.addPeer(`n${n}`, { gateway: n === 0 }, 0)
  }
  const phase = seededRandom(deriveSeed(config.seed, N + 1))
  for (const node of nodes) if (!node.gateway) at(phase() * DAEMON_CONSTANTS.SCHEDULER_TICK_MS, Kind.Tick, node.id)
  at(delay, Kind.GatewayHello, 0)
  const timeline: TimelineSample[] = []
  if (config.timelineMs !== undefined) at(0, Kind.Sample, 0)
  const sample = (): void => {
    const edges = nodes.filter(n => !n.gateway)
    const held = edges.map(n => totalChunks - n.missing).sort((a, b) => a - b)
    let idleUseful = 0
    for (const n of edges) {
      if (n.upBusy) continue
      let useful = false
      for (const m of n.neighbours) {
        const other = nodes[m] as SimNode
        if (other.gateway || other.missing === 0) continue
        for (let c = 0; c < totalChunks && !useful; c++) if (n.holds[c] === 1 && other.holds[c] === 0) useful = true
        if (useful) break
      }
      if (useful) idleUseful++
    }
    let idleStarved = 0
    let idleContended = 0
    let idleUnmatched = 0
    for (const n of edges) {
      if (n.downBusy || n.missing === 0) continue
      let holders = 0
      let idleHolders = 0
      for (const m of n.neighbours) {
        const other = nodes[m] as SimNode
        // The gateway is left out: edges ask it only for what no edge neighbour holds.
        if (other.gateway) continue
        let useful = false
        for (let c = 0; c < totalChunks && !useful; c++) if (other.holds[c] === 1 && n.holds[c] === 0) useful = true
        if (!useful) continue
        holders++
        if (!other.upBusy) idleHolders++
      }
      if (holders === 0) idleStarved++
      else if (idleHolders === 0) idleContended++
      else idleUnmatched++
    }
    timeline.push({
      s: round(now / 1000, 3),
      seeded: gatewayDistinctSent,
      heldMin: held[0] ?? 0,
      heldP10: held[Math.floor(held.length / 10)] ?? 0,
      heldMedian: held[Math.floor(held.length / 2)] ?? 0,
      pulling: edges.filter(n => n.missing > 0).length,
      downBusy: edges.filter(n => n.downBusy).length,
      upBusy: edges.filter(n => n.upBusy).length,
      idleUseful,
      idleStarved,
      idleContended,
      idleUnmatched,
      queuedAtEdges: edges.reduce((q, n) => q + n.queued, 0),
      queuedAtGateway: gatewayNode.queued,
    })
  }

  // ---- the loop -----------------------------------------------------------------------------
  let events = 0
  while (edgesLeft > 0) {
    const time = queue.peekTime()
    if (time > maxSimMs) break
    const event = queue.pop()
    if (event === undefined) break
    now = time
    events++
    const node = nodes[event.node] as SimNode
    switch (event.kind) {
      case Kind.Request: {
        const asker = nodes[event.peer] as SimNode
        if (!node.gateway) asker.askedEdges.add(node.id)
        if (node.holds[event.chunk] !== 1) {
          at(now + delay, Kind.Reply, asker.id, node.id, event.chunk, Status.NotPresent)
        } else if (node.gateway && shouldDefer(asker.id, event.chunk)) {
          stats.gatewayDeferrals++
          deferralsOf[asker.id] = (deferralsOf[asker.id] as number) + 1
          at(now + delay, Kind.Reply, asker.id, node.id, event.chunk, Status.Deferred)
        } else {
          enqueue(node, { from: asker.id, chunk: event.chunk, queuedAt: now, edgeHolders: node.gateway ? edgeNeighboursHolding(asker, event.chunk) : 0 })
          tryStart(node)
        }
        break
      }
      case Kind.Cancel: {
        const i = node.sessions.get(event.peer)?.findIndex(r => r.chunk === event.chunk) ?? -1
        if (i >= 0) {
          dequeue(node, event.peer, i)
          stats.cancelledInQueue++
          at(now + delay, Kind.Reply, event.peer, node.id, event.chunk, Status.Cancelled)
        }
        break
      }
      case Kind.Reply: {
        const scheduler = node.scheduler as Scheduler
        const peerKey = `n${event.peer}`
        const object = objectNames[chunkObject[event.chunk] as number] as string
        const index = chunkIndex[event.chunk] as number
        if (event.status === Status.Cancelled) scheduler.answered(peerKey, object, index, now)
        else if (event.status === Status.Deferred) scheduler.deferred(peerKey, object, index, now)
        else scheduler.notPresent(peerKey, object, index, now)
        schedulePump(node)
        break
      }
      case Kind.TransferStart: {
        const object = objectNames[chunkObject[event.chunk] as number] as string
        node.scheduler?.responseStarted(`n${event.peer}`, object, chunkIndex[event.chunk] as number, now)
        break
      }
      case Kind.TransferEnd: {
        const receiver = nodes[event.peer] as SimNode
        node.upBusy = false
        receiver.downBusy = false
        at(now + delay, Kind.Deliver, receiver.id, node.id, event.chunk)
        wake(receiver)
        tryStart(node)
        break
      }
      case Kind.Deliver: {
        const scheduler = node.scheduler as Scheduler
        const chunk = event.chunk
        const object = objectNames[chunkObject[chunk] as number] as string
        const verdict = scheduler.delivered(`n${event.peer}`, object, chunkIndex[chunk] as number, now)
        for (const other of verdict.cancel) sendCancel(node, other.peer, other.object, other.index)
        if (!verdict.accepted || node.holds[chunk] === 1) {
          stats.duplicateChunks++
        } else if (storeMs > 0) {
          node.storing++
          at(now + storeMs, Kind.Stored, node.id, -1, chunk)
        } else {
          stored(node, chunk)
        }
        schedulePump(node)
        break
      }
      case Kind.Stored:
        node.storing--
        stored(node, event.chunk)
        break
      case Kind.HaveFlush: {
        node.flushQueued = false
        const batch = node.unannounced
        node.unannounced = []
        if (batch.length > 0) at(now + delay, Kind.HaveArrive, node.id, -1, NO_CHUNK, Status.Cancelled, batch)
        break
      }
      case Kind.HaveArrive: {
        const batch = event.batch as number[]
        const key = node.key
        for (const n of node.neighbours) {
          const neighbour = nodes[n] as SimNode
          if (neighbour.gateway || edgeRarest) {
            const row = n * totalChunks
            for (const chunk of batch) holderCount[row + chunk] = (holderCount[row + chunk] as number) + 1
            if (neighbour.gateway) {
              for (const chunk of batch) advertised[node.id * objectCount + (chunkObject[chunk] as number)] = 1
              continue
            }
          }
          if (neighbour.missing === 0) continue
          // addHolder ignores chunks already stored, so they are not passed; the pump runs
          // anyway, as Swarm's onChunks schedules one for any have-list news.
          const scheduler = neighbour.scheduler as Scheduler
          for (const chunk of batch) {
            if (neighbour.holds[chunk] === 1) continue
            scheduler.addHolder(key, objectNames[chunkObject[chunk] as number] as string, [chunkIndex[chunk] as number])
          }
          schedulePump(neighbour)
        }
        break
      }
      case Kind.Pump:
        node.pumpQueued = false
        pump(node)
        break
      case Kind.Tick: {
        if (node.missing === 0) break
        const scheduler = node.scheduler as Scheduler
        let busyEdges = 0
        for (const other of node.neighbours) if (!(nodes[other] as SimNode).gateway && scheduler.inFlight((nodes[other] as SimNode).key) > 0) busyEdges++
        node.busyEdgesSum += busyEdges
        node.busyEdgesTicks++
        for (const r of scheduler.expire(now)) sendCancel(node, r.peer, r.object, r.index)
        schedulePump(node)
        at(now + DAEMON_CONSTANTS.SCHEDULER_TICK_MS, Kind.Tick, node.id)
        break
      }
      case Kind.Sample:
        sample()
        at(now + (config.timelineMs as number), Kind.Sample, 0)
        break
      case Kind.GatewayHello:
        for (const n of gatewayNode.neighbours) {
          const neighbour = nodes[n] as SimNode
          for (const object of objectNames) neighbour.scheduler?.addWholeHolder(gatewayNode.key, object)
          schedulePump(neighbour)
        }
        break
    }
  }

  // ---- results ------------------------------------------------------------------------------
  const lowerBoundS = config.bundleBytes * 8 / config.rateBitsPerSecond
  const times = nodes.filter(n => !n.gateway).map(n => n.completedAt < 0 ? Infinity : n.completedAt / 1000).sort((a, b) => a - b)
  const lastS = times[times.length - 1] as number
  const medianS = median(times)
  const perfectTransfers = (N - 1) * totalChunks
  const edges = nodes.filter(n => !n.gateway && n.completedAt > 0)
  const downlinkBusy = edges.map(n => n.downloadedBytes * msPerByte / n.completedAt).sort((a, b) => a - b)
  return {
    nodes: N,
    bundleBytes: config.bundleBytes,
    chunks: totalChunks,
    objects: objectCount,
    rateBitsPerSecond: config.rateBitsPerSecond,
    delayMs: delay,
    neighbours: degree,
    gatewayNeighbours: gatewayDegree,
    seed: config.seed,
    topology: { minDegree: topology.minDegree, maxDegree: topology.maxDegree, meanDegree: round(topology.meanDegree, 2), bridges: topology.bridges },
    lowerBoundS: round(lowerBoundS, 3),
    lastS: round(lastS, 3),
    medianS: round(medianS, 3),
    lastOverLowerBound: round(lastS / lowerBoundS, 3),
    medianOverLowerBound: round(medianS / lowerBoundS, 3),
    incompleteNodes: times.filter(t => t === Infinity).length,
    gatewayUploadBytes: gatewayNode.uploadedBytes,
    gatewayUploadOverBundle: round(gatewayNode.uploadedBytes / config.bundleBytes, 3),
    duplicateChunks: stats.duplicateChunks,
    duplicateShare: round(stats.duplicateChunks / perfectTransfers, 4),
    chunkTransfers: stats.chunkTransfers,
    cancelsSent: stats.cancelsSent,
    cancelledInQueue: stats.cancelledInQueue,
    gatewayDeferrals: stats.gatewayDeferrals,
    gatewayDeferralsMaxPerAsker: Math.max(...deferralsOf),
    edgeDownlinkBusyMedian: round(median(downlinkBusy), 3),
    edgeHoldersAskedMedian: median(edges.map(n => n.askedEdges.size).sort((a, b) => a - b)),
    edgeHoldersBusyMean: round(edges.reduce((sum, n) => sum + n.busyEdgesSum, 0) / Math.max(1, edges.reduce((sum, n) => sum + n.busyEdgesTicks, 0)), 2),
    gatewaySeededS: round(gatewaySeededAt / 1000, 3),
    gatewayBusyWhileSeeding: round(gatewayBusyWhileSeeding * msPerByte / gatewaySeededAt, 3),
    gatewayExtraCopies: { ...stats.extra, reasons: seeding.extraCopies() },
    events,
    simulatedS: round(now / 1000, 3),
    wallMs: Math.round(performance.now() - started),
    cpuMs: Math.round(cpuMs(process.cpuUsage(cpuStarted))),
    ...(config.timelineMs === undefined ? {} : { timeline }),
  }
}

function median (sorted: number[]): number {
  if (sorted.length === 0) return 0
  const mid = (sorted.length - 1) / 2
  return ((sorted[Math.floor(mid)] as number) + (sorted[Math.ceil(mid)] as number)) / 2
}

function round (value: number, digits: number): number {
  if (!Number.isFinite(value)) return value
  const f = 10 ** digits
  return Math.round(value * f) / f
}

function cpuMs (usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000
}
