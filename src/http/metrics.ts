import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { FleetResponse } from './fleet-view.js'

/**
 * Every metric shoal exports, in this one file (STYLE.md), named
 * `shoal_<module>_<thing>_<unit>`, in a registry of our own (never prom-client's global one,
 * so two daemons in one process, as in tests, do not share counters).
 */

/** Inbound signed records of one kind, as the swarm counts them (record-sync.ts RecordSyncStats). */
interface RecordCounts {
  untrusted: number
  invalid: number
  overAllowance: number
  overAllowanceCharges: number
}

/** What /metrics reads from the swarm when it is scraped (counters kept by the swarm itself). */
export interface MetricsSwarm {
  stats: () => { bytesUploaded: number }
  peers: () => Array<{ connected?: boolean, banned: boolean }>
  /** What the fleet view turned away (status-options.ts FleetGossipStats). */
  fleetStats: () => { droppedNeighbour: number, droppedGroup: number, charges: number }
  refStats: () => RecordCounts
  preheatStats: () => RecordCounts | undefined
}

/** The store events the metrics count. */
export interface MetricsStoreEmitter {
  on: (event: 'ref:evicted', listener: (detail: { why: string }) => void) => void
}

/** The swarm events the metrics count (a subset of the swarm's typed event map). */
export interface MetricsSwarmEvents {
  'chunk:received': { bytes: number }
  'fleet-blob:received': { bytes: number }
  'chunk:rejected': { peer: string }
  'peer:banned': { peer: string }
  'peer:penalized': { peer: string, kind: string }
  'pull:progress': { bundleId: string }
  'pull:completed': { bundleId: string }
}

export interface MetricsSwarmEmitter extends MetricsSwarm {
  on: <E extends keyof MetricsSwarmEvents>(event: E, listener: (detail: MetricsSwarmEvents[E]) => void) => void
}

export type ReceivedFrom = 'peer' | 'upstream' | 'local'
export type SentTo = 'peer' | 'local'

// Seconds; a registry request is a fast 404 or a multi-minute layer, a pull is seconds to hours.
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300]
const PULL_BUCKETS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 3600]

export class Metrics {
  readonly registry = new Registry()
  private readonly swarmSources: MetricsSwarm[] = []
  private fleetSource: (() => Promise<FleetResponse>) | undefined
  private uploadedSeen = 0
  /** What each counter the swarm keeps itself read at the last scrape, by metric, then labels. */
  private readonly polledSeen = new Map<Counter<string>, Map<string, number>>()

  readonly receivedBytes = new Counter({
    name: 'shoal_transfer_received_bytes_total',
    help: 'Bytes this node received, by source: peer (verified swarm chunks, and fleet blob streams as they arrive), upstream (pull-through, as it arrives), local (pushed to its registry API).',
    labelNames: ['source'] as const,
    registers: [this.registry],
  })

  readonly sentBytes = new Counter({
    name: 'shoal_transfer_sent_bytes_total',
    help: 'Bytes this node sent, by destination: peer (swarm chunks and fleet blob streams), local (registry API responses, headers included).',
    labelNames: ['destination'] as const,
    registers: [this.registry],
  })

  readonly chunksVerified = new Counter({
    name: 'shoal_swarm_chunks_verified_total',
    help: 'Chunks received from peers that matched their hash and were stored.',
    registers: [this.registry],
  })

  readonly chunksRejected = new Counter({
    name: 'shoal_swarm_chunks_rejected_total',
    help: 'Chunks received from peers that failed verification (the sender is banned).',
    registers: [this.registry],
  })

  readonly bans = new Counter({
    name: 'shoal_swarm_bans_total',
    help: 'Peers banned for bad data or too many offences (peer score below the threshold).',
    registers: [this.registry],
  })

  readonly offences = new Counter({
    name: 'shoal_swarm_peer_offences_total',
    help: 'Offences peers were charged for, by kind: bad-data, violation, invalid-record, stall, slow, refusal, slow-reader.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })

  readonly fleetStatusesDropped = new Counter({
    name: 'shoal_fleet_statuses_dropped_total',
    help: 'Statuses of nodes this node never heard of, dropped unread past an allowance of introductions, by allowance: neighbour (the sender\'s own; it was charged) or group (the shared one of the sender\'s address group, a /24 or /64; not charged).',
    labelNames: ['allowance'] as const,
    registers: [this.registry],
  })

  readonly fleetCharges = new Counter({
    name: 'shoal_fleet_charges_total',
    help: 'Neighbours charged by the fleet view\'s gossip for what they sent: forged or malformed statuses, more than their allowance, or more new nodes than their allowance of introductions (each also counted in shoal_swarm_peer_offences_total).',
    registers: [this.registry],
  })

  readonly recordsDropped = new Counter({
    name: 'shoal_swarm_records_dropped_total',
    help: 'Signed records from neighbours dropped, by kind (ref, preheat) and reason: over-allowance (unread, past the sender\'s allowance), untrusted (a publisher outside --trust, unverified), invalid (did not decode or verify, or came after one that did not).',
    labelNames: ['kind', 'reason'] as const,
    registers: [this.registry],
  })

  readonly recordAllowanceCharges = new Counter({
    name: 'shoal_swarm_record_allowance_charges_total',
    help: 'Batches of signed records that went past their sender\'s allowance, by kind (ref, preheat): the sender was charged once for each.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  })

  readonly refsEvicted = new Counter({
    name: 'shoal_store_refs_evicted_total',
    help: 'Refs set by other publishers\' records that were dropped with their record and history, by the bound that was passed: publisher (one publisher\'s) or total (all of theirs).',
    labelNames: ['bound'] as const,
    registers: [this.registry],
  })

  readonly peersConnected = new Gauge({
    name: 'shoal_swarm_peers_connected',
    help: 'Peers with an open connection now.',
    registers: [this.registry],
  })

  readonly fleetNodes = new Gauge({
    name: 'shoal_fleet_nodes',
    help: 'Nodes this node knows from their signed statuses, by state: live, or stale (silent for 4 of their heartbeat periods).',
    labelNames: ['state'] as const,
    registers: [this.registry],
  })

  readonly fleetBundleNodes = new Gauge({
    name: 'shoal_fleet_bundle_nodes',
    help: 'Nodes holding a bundle, by state (complete, partial), for this node\'s pinned bundles and the most held (at most 20 bundles: bounded label cardinality).',
    labelNames: ['bundle', 'state'] as const,
    registers: [this.registry],
  })

  readonly fleetBundleTargetNodes = new Gauge({
    name: 'shoal_fleet_bundle_target_nodes',
    help: 'Nodes a bundle should reach (M of "N of M complete"): every known node until preheats name a selector.',
    labelNames: ['bundle'] as const,
    registers: [this.registry],
  })

  readonly httpRequests = new Counter({
    name: 'shoal_http_requests_total',
    help: 'HTTP requests answered, by route, method and status ("aborted" when the client left first).',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  })

  readonly httpDuration = new Histogram({
    name: 'shoal_http_request_duration_seconds',
    help: 'Time from a request to the end of its response, by route and method.',
    labelNames: ['route', 'method'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  })

  readonly pullDuration = new Histogram({
    name: 'shoal_swarm_pull_duration_seconds',
    help: 'Swarm pulls, from the first verified chunk to the bundle being complete.',
    buckets: PULL_BUCKETS,
    registers: [this.registry],
  })

  readonly pullThroughDuration = new Histogram({
    name: 'shoal_upstream_pull_duration_seconds',
    help: 'Images pulled through from the upstream, from the manifest request to the bundle being committed.',
    buckets: PULL_BUCKETS,
    registers: [this.registry],
  })

  readonly preheatsWanted = new Gauge({
    name: 'shoal_preheat_bundles_wanted',
    help: 'Preheats this node matches and holds to (not cancelled, not unpinned here): complete or still pulling.',
    registers: [this.registry],
  })

  readonly preheatsComplete = new Gauge({
    name: 'shoal_preheat_bundles_complete',
    help: 'Preheats this node matches whose bundle (its platform\'s objects) is here, verified and pinned.',
    registers: [this.registry],
  })

  /** A preheat keeper's counts changed. */
  preheats (counts: { wanted: number, complete: number }): void {
    this.preheatsWanted.set(counts.wanted)
    this.preheatsComplete.set(counts.complete)
  }

  /**
   * Counts the swarm's events as they happen, and reads its own counters and peer list at
   * each scrape. A pull is timed from its first verified chunk (the swarm has no start event).
   */
  watchSwarm (swarm: MetricsSwarmEmitter): void {
    this.swarmSources.push(swarm)
    this.uploadedSeen = swarm.stats().bytesUploaded
    const pullStarts = new Map<string, number>()
    swarm.on('chunk:received', ({ bytes }) => {
      this.receivedBytes.inc({ source: 'peer' }, bytes)
      this.chunksVerified.inc()
    })
    // A blob streamed from the pull-through node or a relay moves no chunks: without this the
    // edge's received bytes left out every layer that came through the fleet's pull-through.
    swarm.on('fleet-blob:received', ({ bytes }) => { this.receivedBytes.inc({ source: 'peer' }, bytes) })
    swarm.on('chunk:rejected', () => { this.chunksRejected.inc() })
    swarm.on('peer:banned', () => { this.bans.inc() })
    swarm.on('peer:penalized', ({ kind }) => { this.offences.inc({ kind }) })
    swarm.on('pull:progress', ({ bundleId }) => { if (!pullStarts.has(bundleId)) pullStarts.set(bundleId, performance.now()) })
    swarm.on('pull:completed', ({ bundleId }) => {
      const started = pullStarts.get(bundleId)
      pullStarts.delete(bundleId)
      if (started !== undefined) this.pullDuration.observe((performance.now() - started) / 1000)
    })
  }

  /** Counts the store's events: refs evicted past their bound. */
  watchStore (store: MetricsStoreEmitter): void {
    store.on('ref:evicted', ({ why }) => { this.refsEvicted.inc({ bound: why }) })
  }

  /** Where the fleet gauges read the view at each scrape. */
  watchFleet (fleet: () => Promise<FleetResponse>): void {
    this.fleetSource = fleet
  }

  /** Bytes of a verified blob from the upstream, as they arrive. */
  upstreamBytes (bytes: number): void {
    this.receivedBytes.inc({ source: 'upstream' }, bytes)
  }

  /**
   * One scrape: what the swarm and the fleet view keep themselves is read once, then every
   * metric is written (a prom-client `collect` runs once per metric, and one read here feeds
   * several: four counters, three gauges).
   */
  async text (): Promise<string> {
    this.collectUploads()
    this.collectRecordCounters()
    this.collectPeers()
    await this.readFleet()
    return await this.registry.metrics()
  }

  get contentType (): string {
    return this.registry.contentType
  }

  /** Chunk uploads have no event: the swarm counts them, and a scrape takes the difference. */
  private collectUploads (): void {
    const swarm = this.swarmSources[0]
    if (swarm === undefined) return
    const uploaded = swarm.stats().bytesUploaded
    if (uploaded > this.uploadedSeen) this.sentBytes.inc({ destination: 'peer' }, uploaded - this.uploadedSeen)
    this.uploadedSeen = Math.max(this.uploadedSeen, uploaded)
  }

  /** The swarm's own counters of what it turned away: each Prometheus counter takes what grew since the last scrape. */
  private collectRecordCounters (): void {
    const swarm = this.swarmSources[0]
    if (swarm === undefined) return
    const fleet = swarm.fleetStats()
    this.catchUp(this.fleetStatusesDropped, { allowance: 'neighbour' }, fleet.droppedNeighbour)
    this.catchUp(this.fleetStatusesDropped, { allowance: 'group' }, fleet.droppedGroup)
    this.catchUp(this.fleetCharges, {}, fleet.charges)
    for (const [kind, counts] of [['ref', swarm.refStats()], ['preheat', swarm.preheatStats()]] as const) {
      if (counts === undefined) continue
      this.catchUp(this.recordsDropped, { kind, reason: 'over-allowance' }, counts.overAllowance)
      this.catchUp(this.recordsDropped, { kind, reason: 'untrusted' }, counts.untrusted)
      this.catchUp(this.recordsDropped, { kind, reason: 'invalid' }, counts.invalid)
      this.catchUp(this.recordAllowanceCharges, { kind }, counts.overAllowanceCharges)
    }
  }

  private catchUp<L extends string> (counter: Counter<L>, labels: Partial<Record<L, string>>, value: number): void {
    let seenBy = this.polledSeen.get(counter)
    if (seenBy === undefined) {
      seenBy = new Map()
      this.polledSeen.set(counter, seenBy)
    }
    const key = JSON.stringify(labels)
    const seen = seenBy.get(key) ?? 0
    if (value > seen) counter.inc(labels, value - seen)
    seenBy.set(key, Math.max(seen, value))
  }

  private async readFleet (): Promise<void> {
    if (this.fleetSource === undefined) return
    let view: FleetResponse
    try {
      view = await this.fleetSource()
    } catch {
      // A stopping daemon: the gauges keep their last values.
      return
    }
    this.fleetNodes.set({ state: 'live' }, view.known - view.stale)
    this.fleetNodes.set({ state: 'stale' }, view.stale)
    // Bundles that left the top list must leave the output too.
    this.fleetBundleNodes.reset()
    this.fleetBundleTargetNodes.reset()
    for (const b of view.bundles) {
      this.fleetBundleNodes.set({ bundle: b.id, state: 'complete' }, b.complete)
      this.fleetBundleNodes.set({ bundle: b.id, state: 'partial' }, b.partial)
      this.fleetBundleTargetNodes.set({ bundle: b.id }, b.total)
    }
  }

  private collectPeers (): void {
    const swarm = this.swarmSources[0]
    if (swarm === undefined) return
    let connected = 0
    try {
      for (const peer of swarm.peers()) if (peer.connected !== false && !peer.banned) connected++
    } catch {
      // A swarm that is stopping has no node to ask; the gauge keeps its last value.
      return
    }
    this.peersConnected.set(connected)
  }
}

export function createMetrics (): Metrics {
  return new Metrics()
}
