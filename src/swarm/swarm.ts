import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { bundleObjects, CHUNK_SIZE_BYTES, type BundleManifest } from '../manifest/index.js'
import { ConnectionAdmission } from './admission.js'
import { BanList, type Ban } from './ban-list.js'
import { BufferPool } from './buffer-pool.js'
import { fetchBundle, serveBundleRequest } from './bundle-protocol.js'
import { FLEET_PROTOCOL, FleetAsker, MAX_FLEET_STREAMS_PER_CONNECTION, serveFleetRequest, type FleetQuery, type FleetResponder, type FleetResult } from './fleet-protocol.js'
import { ChunkClient, ChunkServer, type ChunkStatus } from './chunk-protocol.js'
import {
  BAN_DURATION_MS, BUNDLE_PROTOCOL, MAX_CONCURRENT_MANIFEST_FETCHES, MAX_CONNECTIONS_PER_IP, MAX_PENDING_UPGRADES_PER_IP, MAX_CONCURRENT_MANIFEST_SERVES, CHUNK_PROTOCOL, DIAL_TIMEOUT_MS, HAVE_PROTOCOL, MAX_BUFFERED_CHUNKS, MAX_BUNDLE_STREAMS_PER_CONNECTION, MAX_CHUNK_RESPONSE_BYTES,
  MAX_CHUNK_STREAMS_PER_CONNECTION, MAX_CONCURRENT_UPLOADS, MAX_HAVE_STREAMS_PER_CONNECTION, MAX_NEIGHBOURS,
  SCHEDULER_TICK_MS, STREAM_OPEN_TIMEOUT_MS,
} from './constants.js'
import { BadDataError, BundleNotInSwarmError, SwarmNotStartedError, isRemoteFault } from './errors.js'
import { HaveList, type ObjectHolding } from './have-list.js'
import { HaveProtocol } from './have-protocol.js'
import { createNode, type ShoalNode } from './libp2p-node.js'
import { LocalBundles } from './local-bundles.js'
import { peerIdOfKey } from './peer-identity.js'
import { PeerScores, type OffenceKind } from './peer-score.js'
import { ProviderRecords } from './providers.js'
import { PullJob } from './pull-job.js'
import { RateLimiter } from './rate-limiter.js'
import { MAX_REF_STREAMS_PER_CONNECTION, REF_PROTOCOL, RefSync, type RefSyncStats } from './ref-protocol.js'
import { parseTrustedPublisher } from './ref-record.js'
import { Scheduler, type SchedulerInit } from './scheduler.js'
import { Semaphore } from './semaphore.js'
import { SwarmEventEmitter, type PullProgress } from './swarm-events.js'
import { TransferStats, type SwarmStats } from './swarm-stats.js'
import type { Store } from '../store/index.js'
import type { Connection, PeerInfo, PrivateKey } from '@libp2p/interface'

/** The part of the store the swarm uses (src/store/index.ts). */
export type SwarmStore = Pick<Store, 'getBundle' | 'getEncodedBundle' | 'addBundle' | 'bundleIds' | 'objectState' | 'readChunk' | 'writeChunk' | 'on' | 'off' | 'acceptRefRecord' | 'refRecords'>

/** Structured logging, as the daemon's logger provides it; the swarm is silent without one. */
export interface SwarmLogger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
}

export interface SwarmComponents {
  store: SwarmStore
  logger?: SwarmLogger
}

const silent: SwarmLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }

export interface SwarmInit {
  /** The node's persistent identity (createPeerKey / parsePeerKey). */
  privateKey: PrivateKey
  /**
   * Publishers (peer IDs) whose signed ref records this node accepts, besides itself. Only
   * these: a bootstrap peer is not trusted for being one (pass the gateway's ID here).
   */
  trust?: string[]
  /** The key this node signs ref records with; its own identity when absent. */
  publisherKey?: PrivateKey
  /** Multiaddrs to listen on; default every IPv4 interface, a random port. */
  listen?: string[]
  /** Multiaddrs to advertise instead of the listening ones. */
  announce?: string[]
  /** Full multiaddrs (with /p2p/<id>) dialed at start, usually the gateway's. */
  bootstrap?: string[]
  /** LAN discovery; on unless false. */
  mdns?: boolean
  mdnsServiceTag?: string
  mdnsIntervalMs?: number
  /** A pre-shared key (generateSwarmKey); without the same key nobody can connect. */
  swarmKey?: Uint8Array
  /** The cipher the swarm key drives: AES-256-CTR (default) or @libp2p/pnet's XSalsa20, for go-libp2p peers. */
  pnetCipher?: 'aes-256-ctr' | 'xsalsa20'
  /** A gateway seeds the fleet: edges fetch from it only what no other neighbour holds. */
  gateway?: boolean
  maxUploadBytesPerSecond?: number
  maxDownloadBytesPerSecond?: number
  banDurationMs?: number
  /** How long pull() looks for a peer with an unknown manifest before giving up. */
  manifestSearchTimeoutMs?: number
  maxNeighbours?: number
  yamuxWindowBytes?: number
  scheduler?: Partial<Omit<SchedulerInit, 'chunkSizeBytes'>>
}

export interface PullOptions {
  signal?: AbortSignal
  onProgress?: (progress: PullProgress) => void
  /** An object a client is waiting on: its chunks are fetched first, in order. */
  priorityObject?: string
  /**
   * How long to look for a peer holding an unknown manifest (default the swarm's
   * `manifestSearchTimeoutMs`). A registry client waiting on a tag wants a fast no, so it
   * can try its next host, not a 30 s search.
   */
  manifestSearchTimeoutMs?: number
  /**
   * Give up on an unknown manifest after one search: every connected peer answered once and one
   * DHT provider lookup (a person at `shoal pull` wants a fast "not found", not a 30 s wait).
   */
  searchOnce?: boolean
  /** Told what the manifest search is asking, so a person sees why a pull has not started. */
  onSearch?: (search: ManifestSearch) => void
}

/** Where the search for an unknown manifest stands. */
export interface ManifestSearch { peersAsked: number, providerLookups: number, providersFound: number }

export interface PeerSummary {
  id: string
  addresses: string[]
  connected: boolean
  /** The have protocol is up: the peer's have-list reaches us. */
  neighbour: boolean
  gateway: boolean
  banned: boolean
  bytesUploaded: number
  bytesDownloaded: number
  /** Measured download rate from this peer, bytes per second. */
  rate?: number
  requestsInFlight: number
  /** How far this node trusts the peer (peer-score.ts): 0 neutral, -100 banned. */
  score: number
  /** The last thing the peer was charged for. */
  lastOffence?: string
}

const DEFAULT_MANIFEST_SEARCH_TIMEOUT_MS = 30_000
/** Objects asked to go first before their bundle is enlisted, remembered until it is (a bound against a stream of bogus asks). */
const MAX_AWAITING_PRIORITY = 1024
/** Peers asked for a manifest at once (see fetchFromAny). */
const MANIFEST_FETCH_PARALLELISM = 3
/** A pull with no progress this long looks for more holders in the DHT… */
const STALLED_PULL_SEARCH_MS = 5_000
/** …at most this often. */
const PROVIDER_SEARCH_INTERVAL_MS = 15_000
/** The opener of a have stream retries a lost one this often while the connection lasts. */
const HAVE_REOPEN_INTERVAL_MS = 5_000

/**
 * One daemon's place in the fleet: a libp2p node, the three shoal protocols, the
 * scheduler, and the pulls waiting on them. It serves peers from the local store only.
 */
export class Swarm extends SwarmEventEmitter {
  readonly peerId: string
  private node: ShoalNode | undefined
  private readonly store: SwarmStore
  private readonly log: SwarmLogger
  private readonly init: SwarmInit
  private readonly bans: BanList
  private readonly scores: PeerScores
  private readonly manifestServes = new Semaphore(MAX_CONCURRENT_MANIFEST_SERVES)
  private readonly manifestFetches = new Semaphore(MAX_CONCURRENT_MANIFEST_FETCHES)
  /** Peers already warned about in the log: one warning per peer, the rest at debug. */
  private readonly warnedPeers = new Set<string>()
  private readonly haveList = new HaveList()
  private readonly local = new LocalBundles()
  private readonly scheduler: Scheduler
  private readonly transfer = new TransferStats()
  private readonly uploadLimiter: RateLimiter | undefined
  private readonly downloadLimiter: RateLimiter | undefined
  private readonly have: HaveProtocol
  private readonly chunkServer: ChunkServer
  private readonly clients = new Map<string, ChunkClient>()
  /** Chunk responses are assembled here and the memory reused once the store has them. */
  private readonly receiveBuffers: BufferPool
  private readonly jobs = new Set<PullJob>()
  private readonly objectJobs = new Map<string, Set<PullJob>>()
  /** Chunks handed to the store, by `object:index`, so its 'chunk:stored' event names the sender. */
  private readonly arriving = new Map<string, { peer: string, bytes: number }>()
  private readonly gateways = new Set<string>()
  private readonly haveOpenedAt = new Map<string, number>()
  /** Peers known to speak shoal (identify listed the have protocol): lost have streams to them are renewed. */
  private readonly shoalPeers = new Set<string>()
  private readonly providerSearchAt = new Map<string, number>()
  /**
   * Objects a client asked for before any pull wanted them (the manifest of a tag known only
   * from a ref record is asked for while its bundle's manifest is still on the way): they go
   * first as soon as a pull enlists them, instead of being forgotten.
   */
  private readonly awaitingPriority = new Set<string>()
  private providers: ProviderRecords | undefined
  private readonly refs: RefSync
  /** Publishers whose ref records this node applies; also the only peers it asks about image names. */
  private readonly trusted: ReadonlySet<string>
  private readonly fleet: FleetAsker
  private fleetResponder: FleetResponder | undefined
  private tickTimer: NodeJS.Timeout | undefined
  private pumpTimer: NodeJS.Timeout | undefined
  private pumpQueued = false
  private running = false
  private stopController = new AbortController()

  constructor (components: SwarmComponents, init: SwarmInit) {
    super()
    this.store = components.store
    this.log = components.logger ?? silent
    this.init = init
    this.peerId = peerIdOfKey(init.privateKey)
    this.bans = new BanList()
    this.scores = new PeerScores({ baseBanMs: init.banDurationMs ?? BAN_DURATION_MS })
    this.scheduler = new Scheduler({ ...init.scheduler, chunkSizeBytes: CHUNK_SIZE_BYTES })
    this.receiveBuffers = new BufferPool(MAX_CHUNK_RESPONSE_BYTES, (init.scheduler?.maxBufferedChunks ?? MAX_BUFFERED_CHUNKS) + 4)
    this.uploadLimiter = init.maxUploadBytesPerSecond === undefined ? undefined : new RateLimiter(init.maxUploadBytesPerSecond)
    this.downloadLimiter = init.maxDownloadBytesPerSecond === undefined ? undefined : new RateLimiter(init.maxDownloadBytesPerSecond)
    this.have = new HaveProtocol({ store: this.store, local: this.local, haveList: this.haveList }, {
      gateway: init.gateway ?? false,
      onNeighbourJoined: (peer, gateway) => { this.neighbourJoined(peer, gateway) },
      onNeighbourLeft: (peer) => { this.neighbourLeft(peer) },
      onHolding: (peer, object, holding) => { this.peerHolds(peer, object, holding) },
      onChunks: (peer, object, indexes) => {
        this.scheduler.addHolder(peer, object, indexes)
        this.schedulePump()
      },
      onViolation: (peer, err) => { this.penalize(peer, 'violation', `have stream: ${err.message}`) },
    })
    this.trusted = trustedPublishers(init)
    this.refs = new RefSync(this.store, this.trusted, () => this.node?.getConnections() ?? [], this.log, {
      onInvalid: (peer, why) => { this.penalize(peer, 'invalid-record', why) },
    })
    this.fleet = new FleetAsker(() => this.trustedPeers(), (peer, err) => { this.penalize(peer, 'bad-data', err.message) })
    this.chunkServer = new ChunkServer({
      store: this.store,
      local: this.local,
      haveList: this.haveList,
      uploadSlots: new Semaphore(MAX_CONCURRENT_UPLOADS),
      uploadLimiter: this.uploadLimiter,
    }, {
      gateway: init.gateway ?? false,
      onUploaded: (peer, bytes) => { this.transfer.uploaded(peer, bytes) },
      onOffence: (peer, kind, detail) => { this.penalize(peer, kind, detail) },
    })
  }

  get isRunning (): boolean {
    return this.running
  }

  // ---- lifecycle ----------------------------------------------------------------------

  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.running) return
    this.stopController = new AbortController()
    const node = await createNode({
      privateKey: this.init.privateKey,
      listen: this.init.listen ?? ['/ip4/0.0.0.0/tcp/0'],
      announce: this.init.announce,
      bootstrap: this.init.bootstrap ?? [],
      mdns: this.init.mdns ?? true,
      mdnsServiceTag: this.init.mdnsServiceTag,
      mdnsIntervalMs: this.init.mdnsIntervalMs,
      swarmKey: this.init.swarmKey,
      pnetCipher: this.init.pnetCipher,
      gater: new ConnectionAdmission(this.bans, () => this.node?.getConnections() ?? [], {
        maxPendingPerIp: MAX_PENDING_UPGRADES_PER_IP, maxConnectionsPerIp: MAX_CONNECTIONS_PER_IP,
      }).gater(),
      yamuxWindowBytes: this.init.yamuxWindowBytes,
    })
    this.node = node
    try {
      await this.startNode(node, options)
    } catch (err) {
      // Leave nothing half-started: no store listeners, no open sockets.
      this.detachStore()
      this.providers?.stop()
      try {
        await node.stop()
      } catch {
        // Stopping a node that failed to start may fail too; the start error is the one to report.
      }
      this.node = undefined
      throw err
    }
    this.running = true
    this.tickTimer = setInterval(() => { this.tick() }, SCHEDULER_TICK_MS)
    this.tickTimer.unref()
  }

  private async startNode (node: ShoalNode, options: { signal?: AbortSignal }): Promise<void> {
    this.providers = new ProviderRecords(node, {
      bundles: () => this.local.ids(),
      onWarning: (message, error) => { this.warn(message, error) },
    })
    // Local bundles first, so the first hello to any neighbour already lists them.
    for (const id of await this.store.bundleIds()) {
      options.signal?.throwIfAborted()
      const bundle = await this.store.getBundle(id)
      if (bundle !== undefined) this.local.add(id, bundle)
    }
    this.store.on('bundle:added', this.onBundleAdded)
    this.store.on('chunk:stored', this.onChunkStored)
    this.store.on('object:complete', this.onObjectComplete)
    this.store.on('bundle:removed', this.onBundleRemoved)

    await node.handle(BUNDLE_PROTOCOL, (stream, connection) => {
      const peer = connection.remotePeer.toString()
      void serveBundleRequest({
        store: this.store,
        slots: this.manifestServes,
        onViolation: (err) => { this.penalize(peer, 'violation', `bundle request: ${err.message}`) },
      }, stream)
    }, {
      maxInboundStreams: MAX_BUNDLE_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_BUNDLE_STREAMS_PER_CONNECTION,
    })
    await node.handle(HAVE_PROTOCOL, (stream, connection) => { this.have.handleStream(stream, connection) }, {
      maxInboundStreams: MAX_HAVE_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_HAVE_STREAMS_PER_CONNECTION,
    })
    await node.handle(CHUNK_PROTOCOL, (stream, connection) => { this.chunkServer.handleStream(stream, connection) }, {
      maxInboundStreams: MAX_CHUNK_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_CHUNK_STREAMS_PER_CONNECTION,
    })
    await node.handle(REF_PROTOCOL, (stream, connection) => { void this.refs.handle(stream, connection) }, {
      maxInboundStreams: MAX_REF_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_REF_STREAMS_PER_CONNECTION,
    })
    await node.handle(FLEET_PROTOCOL, (stream, connection) => { void serveFleetRequest(this.fleetResponder, stream, connection, this.stopController.signal) }, {
      maxInboundStreams: MAX_FLEET_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_FLEET_STREAMS_PER_CONNECTION,
    })
    await node.register(REF_PROTOCOL, {
      onConnect: (_peerId, connection) => { void this.refs.sendAll(connection) },
    })
    await node.register(HAVE_PROTOCOL, {
      onConnect: (peerId, connection) => { this.maybeOpenHave(peerId.toString(), connection) },
    })
    node.addEventListener('peer:discovery', (evt) => { this.discovered(evt.detail) })
    node.addEventListener('peer:connect', (evt) => { this.emit('peer:connected', { peer: evt.detail.toString() }) })
    node.addEventListener('peer:disconnect', (evt) => {
      const peer = evt.detail.toString()
      this.haveOpenedAt.delete(peer)
      this.shoalPeers.delete(peer)
      this.emit('peer:disconnected', { peer })
    })

    await node.start()
  }

  private detachStore (): void {
    this.store.off('bundle:added', this.onBundleAdded)
    this.store.off('chunk:stored', this.onChunkStored)
    this.store.off('object:complete', this.onObjectComplete)
    this.store.off('bundle:removed', this.onBundleRemoved)
  }

  /** Stops serving and fetching; pulls in progress fail with an abort error. */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    const reason = new DOMException('the swarm stopped', 'AbortError')
    this.stopController.abort(reason)
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer)
    if (this.pumpTimer !== undefined) clearTimeout(this.pumpTimer)
    this.providers?.stop()
    this.detachStore()
    for (const job of this.jobs) job.fail(reason)
    this.jobs.clear()
    this.have.closeAll()
    this.chunkServer.closeAll()
    for (const client of this.clients.values()) client.close()
    this.clients.clear()
    await this.node?.stop()
    this.node = undefined
  }

  // ---- public API ---------------------------------------------------------------------

  /** Multiaddrs peers can dial, each ending in /p2p/<peer id>. */
  addresses (): string[] {
    return this.requireNode().getMultiaddrs().map(ma => ma.toString())
  }

  /** Connects to a peer by a full multiaddr (with /p2p/<id>); resolves with its peer ID. */
  async dial (address: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    const connection = await this.requireNode().dial(multiaddr(address), { signal: withTimeout(options.signal, DIAL_TIMEOUT_MS) })
    return connection.remotePeer.toString()
  }

  /**
   * Fetches a bundle: its manifest from a peer when the store lacks it, then every missing
   * chunk, verified, from whichever neighbours hold it. Resolves when every object is
   * complete in the store.
   */
  async pull (bundleId: string, options: PullOptions = {}): Promise<void> {
    this.requireNode()
    const signal = anySignal(options.signal, this.stopController.signal)
    signal.throwIfAborted()
    let bundle = await this.store.getBundle(bundleId)
    // A manifest new to the store is announced by the 'bundle:added' handler.
    const announceHere = bundle !== undefined
    if (bundle === undefined) {
      const encoded = await this.findManifest(bundleId, signal, options.manifestSearchTimeoutMs, options)
      bundle = (await this.store.addBundle(encoded, { expectedId: bundleId, signal })).bundle
    }
    this.addLocalBundle(bundleId, bundle)
    const job = new PullJob(bundleId, () => this.scheduler.busyPeers(), (progress) => {
      options.onProgress?.(progress)
      this.emit('pull:progress', progress)
    })
    await this.enlist(job, bundle)
    if (job.remaining.size === 0) {
      job.finish()
      this.emit('pull:completed', { bundleId })
      return
    }
    if (options.priorityObject !== undefined) this.prioritize(options.priorityObject)
    this.jobs.add(job)
    if (announceHere) void this.announceQuietly(bundleId)
    void this.searchProviders(bundleId)
    this.schedulePump()
    try {
      await job.wait(signal)
      this.log.info('pull completed', { bundleId, bytes: job.progress.totalBytes })
      this.emit('pull:completed', { bundleId })
    } finally {
      this.dismiss(job)
    }
  }

  /**
   * Fetches this object's chunks before anything else, in order (an HTTP client waits on it).
   * An object no pull wants yet goes first once one does.
   */
  prioritize (object: string): void {
    if (!this.scheduler.isWanted(object)) {
      this.awaitingPriority.delete(object)
      this.awaitingPriority.add(object)
      if (this.awaitingPriority.size > MAX_AWAITING_PRIORITY) this.awaitingPriority.delete(this.awaitingPriority.values().next().value as string)
      return
    }
    this.scheduler.prioritize(object)
    this.schedulePump()
  }

  /**
   * Signs ref records (`name:tag` → bundle) with this node's publisher key, keeps them, and
   * sends them to every neighbour, who pass them on if they trust this publisher.
   */
  async publishRefs (refs: Array<{ ref: string, bundleId: string, manifestDigest?: string }>): Promise<void> {
    await this.refs.publish(this.init.publisherKey ?? this.init.privateKey, refs)
  }

  /**
   * Answers other nodes' fleet requests (/shoal/fleet/1.0.0) with `responder`: what this node
   * holds, and pull-through when it has an upstream. Without one, every request is NOT_FOUND.
   */
  serveFleet (responder: FleetResponder | undefined): void {
    this.fleetResponder = responder
  }

  /**
   * Asks the connected peers this node trusts (its ref publishers) which bundle holds a digest,
   * or what a tag names, and, when `pullThrough` is set and none holds it, has one of them fetch
   * it from its upstream. See FleetAsker for the order.
   */
  async askFleet (query: FleetQuery, options: { signal: AbortSignal }): Promise<FleetResult> {
    this.requireNode()
    return await this.fleet.ask(query, { signal: anySignal(options.signal, this.stopController.signal) })
  }

  private trustedPeers (): Array<{ peer: string, connection: Connection, gateway: boolean }> {
    const node = this.node
    if (node === undefined) return []
    const out = new Map<string, { peer: string, connection: Connection, gateway: boolean }>()
    for (const connection of node.getConnections()) {
      const peer = connection.remotePeer.toString()
      if (connection.status !== 'open' || out.has(peer) || peer === this.peerId || !this.trusted.has(peer) || this.bans.isBanned(peer)) continue
      out.set(peer, { peer, connection, gateway: this.gateways.has(peer) })
    }
    return [...out.values()]
  }

  /** Announces in the DHT that this node holds (or is pulling) a bundle. */
  async announce (bundleId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.requireNode()
    await this.providers?.announce(bundleId, { signal: anySignal(options.signal, this.stopController.signal) })
  }

  /** Looks up holders of a bundle in the DHT and connects to them; resolves with their IDs. */
  async findProviders (bundleId: string, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    this.requireNode()
    const found = await this.providers?.find(bundleId, { signal: anySignal(options.signal, this.stopController.signal) }) ?? []
    await Promise.all(found.map(async (peer) => { await this.connectTo(peer) }))
    return found.map(peer => peer.id.toString())
  }

  /** Whose ref records move tags here (the daemon logs them once at start). */
  get trustedPublishers (): string[] {
    return [...this.trusted]
  }

  peers (): PeerSummary[] {
    const node = this.requireNode()
    const ids = new Set<string>([
      ...node.getPeers().map(p => p.toString()), ...Object.keys(this.transfer.snapshot().perPeer), ...this.bans.list().map(b => b.peer),
    ])
    return [...ids].map((id) => {
      const connections = node.getConnections(peerIdFromString(id))
      const stats = this.transfer.peer(id)
      return {
        id,
        addresses: connections.map(c => c.remoteAddr.toString()),
        connected: connections.length > 0,
        neighbour: this.have.has(id),
        gateway: this.gateways.has(id),
        banned: this.bans.isBanned(id),
        bytesUploaded: stats.bytesUploaded,
        bytesDownloaded: stats.bytesDownloaded,
        rate: this.scheduler.rate(id),
        requestsInFlight: this.scheduler.inFlight(id),
        score: Math.round(this.scores.score(id)),
        lastOffence: this.scores.lastOffence(id),
      }
    })
  }

  stats (): SwarmStats {
    return this.transfer.snapshot()
  }

  /** Inbound ref records: verified, dropped as untrusted before any verify, invalid, over allowance. */
  refStats (): RefSyncStats {
    return this.refs.stats()
  }

  banned (): Ban[] {
    return this.bans.list()
  }

  /** Disconnects a peer and refuses it for `durationMs` (default BAN_DURATION_MS). */
  ban (peer: string, reason: string, durationMs: number = this.init.banDurationMs ?? BAN_DURATION_MS): void {
    const ban = this.bans.ban(peer, durationMs, reason)
    this.transfer.banned()
    this.have.close(peer, new BadDataError(`banned: ${reason}`))
    this.clients.get(peer)?.close(new BadDataError(`banned: ${reason}`))
    this.neighbourLeft(peer)
    this.log.warn('peer banned', { peer, reason, until: new Date(ban.until).toISOString() })
    this.emit('peer:banned', { peer, reason, until: ban.until })
    void this.node?.hangUp(peerIdFromString(peer)).catch(() => {})
  }

  /**
   * Charges a peer for something it did (peer-score.ts). Below the threshold it is banned:
   * dropped from every holder set (its requests move elsewhere), hung up on, refused for a
   * time that doubles with each ban, and its network too once several of its identities were.
   */
  penalize (peer: string, kind: OffenceKind, detail: string): void {
    if (!this.running || this.bans.isBanned(peer)) return
    const address = this.node?.getConnections(peerIdFromString(peer))[0]?.remoteAddr.toString()
    const verdict = this.scores.offend(peer, kind, detail, address)
    this.reportPenalty(peer, kind, detail)
    if (verdict === undefined) return
    if (verdict.prefix !== undefined) {
      this.bans.banPrefix(verdict.prefix, verdict.durationMs, `repeat offenders: ${verdict.reason}`)
      this.log.warn('address prefix banned', { prefix: verdict.prefix, reason: verdict.reason })
    }
    this.ban(peer, verdict.reason, verdict.durationMs)
  }

  private refusedBy (peer: string): void {
    const pattern = this.scores.refused(peer)
    if (pattern !== undefined) this.penalize(peer, 'refusal', pattern)
  }

  private reportPenalty (peer: string, kind: OffenceKind, detail: string): void {
    const score = Math.round(this.scores.score(peer))
    // Once per peer at warn, so a flood of offences is not a flood of log lines.
    if (!this.warnedPeers.has(peer)) {
      if (this.warnedPeers.size >= 4096) this.warnedPeers.clear()
      this.warnedPeers.add(peer)
      this.log.warn('peer misbehaved', { peer, kind, detail, score })
    } else {
      this.log.debug('peer misbehaved', { peer, kind, detail, score })
    }
    this.emit('peer:penalized', { peer, kind, detail, score })
  }

  // ---- neighbours ---------------------------------------------------------------------

  private maybeOpenHave (peer: string, connection: Connection): void {
    this.shoalPeers.add(peer)
    if (!HaveProtocol.opensTo(this.peerId, peer) || this.have.has(peer) || this.bans.isBanned(peer)) return
    this.haveOpenedAt.set(peer, Date.now())
    void this.have.open(connection).catch((err: Error) => {
      this.warn(`could not open a have stream to ${peer}`, err)
    })
  }

  private neighbourJoined (peer: string, gateway: boolean): void {
    if (gateway) this.gateways.add(peer)
    else this.gateways.delete(peer)
    this.scheduler.addPeer(peer, { gateway }, Date.now())
    this.providers?.scheduleReprovide()
    this.log.debug('neighbour joined', { peer, gateway })
    this.emit('neighbour:joined', { peer, gateway })
    this.schedulePump()
  }

  private neighbourLeft (peer: string): void {
    if (!this.scheduler.hasPeer(peer)) return
    this.scheduler.removePeer(peer)
    this.gateways.delete(peer)
    this.clients.get(peer)?.close()
    this.clients.delete(peer)
    this.log.debug('neighbour left', { peer })
    this.emit('neighbour:left', { peer })
    this.schedulePump()
  }

  private peerHolds (peer: string, object: string, holding: ObjectHolding): void {
    if (holding === true) this.scheduler.addWholeHolder(peer, object)
    else this.scheduler.addBitmapHolder(peer, object, holding)
    this.schedulePump()
  }

  private discovered (info: PeerInfo): void {
    const peer = info.id.toString()
    if (!this.running || this.bans.isBanned(peer)) return
    const node = this.requireNode()
    if (node.getConnections(info.id).length > 0) return
    if (node.getPeers().length >= (this.init.maxNeighbours ?? MAX_NEIGHBOURS)) return
    void this.connectTo(info)
  }

  private async connectTo (info: PeerInfo): Promise<void> {
    const node = this.node
    if (node === undefined || this.bans.isBanned(info.id.toString())) return
    try {
      if (info.multiaddrs.length > 0) await node.peerStore.merge(info.id, { multiaddrs: info.multiaddrs })
      await node.dial(info.id, { signal: withTimeout(this.stopController.signal, DIAL_TIMEOUT_MS) })
    } catch (err) {
      if (this.running) this.warn(`could not dial ${info.id.toString()}`, err as Error)
    }
  }

  // ---- local store events -------------------------------------------------------------

  private readonly onBundleAdded = ({ id }: { id: string }): void => {
    void this.store.getBundle(id).then((bundle) => {
      if (bundle !== undefined && this.running) {
        this.addLocalBundle(id, bundle)
        void this.announceQuietly(id)
      }
    }, (err: Error) => { this.warn(`could not read new bundle ${id}`, err) })
  }

  private readonly onBundleRemoved = ({ id }: { id: string }): void => {
    if (!this.local.has(id)) return
    this.local.remove(id)
    this.have.localBundleRemoved(id)
  }

  private readonly onChunkStored = ({ object, index }: { object: string, index: number }): void => {
    this.have.localChunkStored(object, index)
    // The store emits this before 'object:complete', so progress always precedes completion.
    const key = `${object}:${index}`
    const arrival = this.arriving.get(key)
    this.arriving.delete(key)
    if (arrival !== undefined) this.emit('chunk:received', { peer: arrival.peer, object, index, bytes: arrival.bytes })
    const jobs = this.objectJobs.get(object)
    if (jobs === undefined) return
    const bytes = arrival?.bytes ?? Math.min(CHUNK_SIZE_BYTES, (this.local.object(object)?.size ?? 0) - index * CHUNK_SIZE_BYTES)
    for (const job of jobs) job.chunkStored(bytes)
  }

  private readonly onObjectComplete = ({ object }: { object: string }): void => {
    this.have.localObjectComplete(object)
    this.objectCompleted(object)
  }

  private addLocalBundle (id: string, bundle: BundleManifest): void {
    if (this.local.add(id, bundle)) this.have.localBundleAdded(id)
  }

  // ---- pulls --------------------------------------------------------------------------

  /**
   * Registers a job's objects with the scheduler, seeded with what neighbours already hold.
   * Objects of one chunk go first: an image's manifests, index and config are all small, and
   * a registry client needs them before any layer (the layers it asks for next are put ahead
   * of them when it asks). Then whatever a client asked for before this pull began.
   */
  private async enlist (job: PullJob, bundle: BundleManifest): Promise<void> {
    const asked: string[] = []
    for (const object of bundleObjects(bundle)) {
      const chunks = Math.ceil(object.size / bundle.chunkSize)
      const state = await this.store.objectState(object.hash)
      if (object.size === 0 || state.state === 'complete') {
        job.addObject(object.hash, { bytes: object.size, chunks, presentBytes: object.size, presentChunks: chunks, complete: true })
        continue
      }
      const missing = state.state === 'partial' ? state.bitmap.missing() : [...Array(chunks).keys()]
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
      if (!this.scheduler.isWanted(object.hash)) {
        this.scheduler.want(object.hash, object.size, missing)
        for (const [peer, holding] of this.haveList.holdersOf(object.hash)) {
          if (holding === true) this.scheduler.addWholeHolder(peer, object.hash)
          else this.scheduler.addBitmapHolder(peer, object.hash, holding)
        }
        if (chunks === 1) this.scheduler.prioritize(object.hash)
      }
      if (this.awaitingPriority.delete(object.hash)) asked.push(object.hash)
    }
    for (const object of asked) this.scheduler.prioritize(object)
    // An object that completed while we looked (another pull, a push) sent its event already.
    for (const object of [...job.remaining]) {
      if ((await this.store.objectState(object)).state === 'complete') this.objectCompleted(object)
    }
  }

  /** A job ended (done, failed or aborted): objects nobody else waits for are no longer fetched. */
  private dismiss (job: PullJob): void {
    this.jobs.delete(job)
    for (const object of job.remaining) {
      const jobs = this.objectJobs.get(object)
      jobs?.delete(job)
      if (jobs !== undefined && jobs.size > 0) continue
      this.objectJobs.delete(object)
      for (const request of this.scheduler.unwant(object)) this.clients.get(request.peer)?.cancel(request.object, request.index)
    }
  }

  private objectCompleted (object: string): void {
    this.awaitingPriority.delete(object)
    for (const request of this.scheduler.unwant(object)) this.clients.get(request.peer)?.cancel(request.object, request.index)
    const jobs = this.objectJobs.get(object)
    this.objectJobs.delete(object)
    for (const job of jobs ?? []) job.objectComplete(object)
  }

  private failObject (object: string, err: Error): void {
    const jobs = this.objectJobs.get(object)
    for (const job of jobs ?? []) job.fail(err)
  }

  /**
   * Finds a peer that serves the manifest: neighbours that said they hold it, any neighbour,
   * then the DHT. Every step, the DHT lookup included, is cut off at the deadline, so a
   * caller that asked for a short search gets its answer on time.
   */
  private async findManifest (
    bundleId: string, signal: AbortSignal, timeoutMs = this.init.manifestSearchTimeoutMs ?? DEFAULT_MANIFEST_SEARCH_TIMEOUT_MS,
    options: Pick<PullOptions, 'searchOnce' | 'onSearch'> = {},
  ): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs
    const search = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
    const notFound = new Set<string>()
    // For searchOnce: peers asked at least once (whatever they answered) and lookups done.
    const asked = new Set<string>()
    const progress: ManifestSearch = { peersAsked: 0, providerLookups: 0, providersFound: 0 }
    const giveUp = (): never => {
      signal.throwIfAborted()
      throw new BundleNotInSwarmError(bundleId, notFound.size)
    }
    // A fresh node's DHT routing table fills a moment after its first connections: retry
    // lookups soon, then less often.
    let lookupBackoffMs = 500
    let nextLookupAt = 0
    for (;;) {
      if (search.aborted) giveUp()
      const node = this.requireNode()
      const interested = this.haveList.peersInterestedIn(bundleId)
      const others = node.getPeers().map(p => p.toString()).filter(p => !notFound.has(p))
      const candidates = [...new Set([...interested, ...others])].filter(peer => !this.bans.isBanned(peer) && node.getConnections(peerIdFromString(peer)).length > 0)
      for (const peer of candidates) asked.add(peer)
      progress.peersAsked = asked.size
      if (candidates.length > 0) options.onSearch?.({ ...progress })
      const encoded = await this.fetchFromAny(bundleId, candidates, notFound, search)
      if (encoded !== undefined) return encoded
      if (search.aborted) giveUp()
      if (Date.now() >= deadline) giveUp()
      if (Date.now() >= nextLookupAt) {
        // A node whose first bootstrap dials failed (a busy gateway, a slow start) stays alone
        // for good unless it dials again.
        if (node.getConnections().length === 0) await this.redialBootstrap(search)
        const found = await this.searchProviders(bundleId, search)
        nextLookupAt = Date.now() + lookupBackoffMs
        lookupBackoffMs = Math.min(lookupBackoffMs * 2, PROVIDER_SEARCH_INTERVAL_MS)
        progress.providerLookups++
        progress.providersFound += found.length
        options.onSearch?.({ ...progress })
        for (const peer of found) notFound.delete(peer)
        if (found.length > 0) continue
      }
      if (options.searchOnce === true && progress.providerLookups > 0) {
        // Only a peer that answered "not here" has been asked: one whose answer failed (a
        // reset, a node too busy to answer in time, a connection still upgrading) is asked
        // again until the deadline, or four edges starting at once on a loaded gateway lose
        // their pulls to one dropped stream. Peers that joined during the lookup are asked too.
        const unanswered = node.getPeers().map(p => p.toString()).filter(p => !notFound.has(p) && !this.bans.isBanned(p))
        if (unanswered.length === 0) giveUp()
        if (unanswered.some(p => !asked.has(p))) continue
      }
      await this.nextNeighbour(Math.min(nextLookupAt - Date.now(), deadline - Date.now()), search)
    }
  }

  /**
   * Asks up to MANIFEST_FETCH_PARALLELISM peers at once, the first verified manifest wins and
   * the other fetches are dropped: one peer that drips its answer cannot hold the pull while
   * another could have answered in milliseconds.
   */
  private async fetchFromAny (bundleId: string, peers: string[], notFound: Set<string>, search: AbortSignal): Promise<Uint8Array | undefined> {
    const won = new AbortController()
    // The search's deadline bounds a fetch in progress too, not only the gaps between them.
    const fetchSignal = AbortSignal.any([search, won.signal])
    const node = this.requireNode()
    let next = 0
    let result: Uint8Array | undefined
    const worker = async (): Promise<void> => {
      while (result === undefined && next < peers.length && !fetchSignal.aborted) {
        const peer = peers[next++] as string
        const connection = node.getConnections(peerIdFromString(peer))[0]
        if (connection === undefined) continue
        try {
          await this.manifestFetches.acquire({ signal: fetchSignal })
          try {
            const encoded = await fetchBundle(connection, bundleId, { signal: fetchSignal })
            if (encoded === undefined) {
              notFound.add(peer)
            } else {
              result ??= encoded
              this.scores.served(peer)
              won.abort()
            }
          } finally {
            this.manifestFetches.release()
          }
        } catch (err) {
          if (fetchSignal.aborted) return
          if (err instanceof BadDataError) this.penalize(peer, 'bad-data', err.message)
          else if (isRemoteFault(err)) this.penalize(peer, 'violation', `manifest: ${(err as Error).message}`)
        }
      }
    }
    await Promise.all(Array.from({ length: MANIFEST_FETCH_PARALLELISM }, worker))
    return result
  }

  private async redialBootstrap (signal: AbortSignal): Promise<void> {
    await Promise.allSettled((this.init.bootstrap ?? []).map(async address => { await this.dial(address, { signal }) }))
  }

  /** Resolves when a neighbour joins or after `ms`. */
  private async nextNeighbour (ms: number, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        this.off('neighbour:joined', done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, Math.max(0, ms))
      this.on('neighbour:joined', done)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  private async searchProviders (bundleId: string, signal?: AbortSignal): Promise<string[]> {
    this.providerSearchAt.set(bundleId, Date.now())
    try {
      return await this.findProviders(bundleId, { signal })
    } catch (err) {
      if (this.running && signal?.aborted !== true) this.warn(`provider search for ${bundleId} failed`, err as Error)
      return []
    }
  }

  private async announceQuietly (bundleId: string): Promise<void> {
    try {
      await this.announce(bundleId)
    } catch (err) {
      if (this.running) this.warn(`DHT announce of ${bundleId} failed`, err as Error)
    }
  }

  // ---- chunk traffic ------------------------------------------------------------------

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
    const now = Date.now()
    for (const request of this.scheduler.takeReleased()) this.clients.get(request.peer)?.cancel(request.object, request.index)
    const limiter = this.downloadLimiter
    if (limiter === undefined) {
      for (const request of this.scheduler.next(now)) this.client(request.peer).request(request.object, request.index)
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
      this.client(request.peer).request(request.object, request.index)
    }
  }

  private client (peer: string): ChunkClient {
    let client = this.clients.get(peer)
    if (client !== undefined && !client.isClosed) return client
    client = new ChunkClient({
      openTimeoutMs: STREAM_OPEN_TIMEOUT_MS,
      allocate: bytes => this.receiveBuffers.take(bytes),
      open: async ({ signal }) => await this.requireNode().dialProtocol(peerIdFromString(peer), CHUNK_PROTOCOL, { signal }),
      onResponse: (object, index, status, data) => { this.onChunkResponse(peer, object, index, status, data) },
      onClosed: (unanswered, err) => {
        if (this.clients.get(peer) === client) this.clients.delete(peer)
        const now = Date.now()
        for (const request of unanswered) this.scheduler.answered(peer, request.object, request.index, now)
        if (isRemoteFault(err)) this.penalize(peer, 'violation', `chunk stream: ${(err as Error).message}`)
        // A chunk stream that failed makes the peer useless to us until its have stream is renewed.
        if (err !== undefined && this.running) this.have.close(peer, err)
        this.schedulePump()
      },
    })
    this.clients.set(peer, client)
    return client
  }

  private onChunkResponse (peer: string, object: string, index: number, status: ChunkStatus, data: Uint8Array): void {
    const now = Date.now()
    if (status === 'cancelled') {
      this.scheduler.answered(peer, object, index, now)
    } else if (status === 'not-present') {
      this.scheduler.notPresent(peer, object, index, now)
    } else if (status === 'deferred') {
      this.scheduler.deferred(peer, object, index, now)
      this.refusedBy(peer)
    } else if (status === 'refused') {
      this.scheduler.refused(peer, object, index, now)
      this.refusedBy(peer)
    } else {
      const verdict = this.scheduler.delivered(peer, object, index, now)
      this.transfer.downloaded(peer, data.byteLength, !verdict.accepted)
      for (const other of verdict.cancel) this.clients.get(other.peer)?.cancel(other.object, other.index)
      if (verdict.accepted) {
        // Given back exactly once: once it is taken again, a second give would lend it twice.
        let given = false
        const giveBack = (): void => {
          if (given) return
          given = true
          this.receiveBuffers.give(data)
        }
        void this.storeChunk(peer, object, index, data, giveBack)
          .finally(giveBack)
          .catch((err: Error) => { this.warn(`storing chunk ${index} of ${object} failed`, err) })
      } else {
        this.receiveBuffers.give(data)
      }
    }
    this.schedulePump()
  }

  /** Verifies (the store hashes it against the bundle's table) and stores one chunk. */
  private async storeChunk (peer: string, object: string, index: number, data: Uint8Array, onWritten: () => void): Promise<void> {
    const bundleId = this.local.bundleOf(object)
    if (bundleId === undefined) {
      this.scheduler.storeFailed(object, index)
      return
    }
    const key = `${object}:${index}`
    this.arriving.set(key, { peer, bytes: data.byteLength })
    try {
      // The buffer goes back to the pool once the bytes are in the file, not after their commit.
      const result = await this.store.writeChunk(bundleId, object, index, data, { signal: this.stopController.signal, onWritten })
      const objectDone = this.scheduler.stored(object, index)
      this.scores.served(peer)
      if (result.objectComplete || objectDone) this.objectCompleted(object)
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'CHUNK_HASH_MISMATCH') {
        this.transfer.rejected(peer)
        this.scheduler.rejected(peer, object, index)
        this.emit('chunk:rejected', { peer, object, index, reason: (err as Error).message })
        this.penalize(peer, 'bad-data', `sent chunk ${index} of ${object}, which failed verification`)
      } else if (this.running) {
        // A disk or corruption error: the pulls waiting on this object cannot finish.
        this.scheduler.storeFailed(object, index)
        this.failObject(object, err as Error)
      }
    } finally {
      this.arriving.delete(key)
      this.schedulePump()
    }
  }

  /** Releases stalled requests, renews lost have streams and looks for holders of stalled pulls. */
  private tick (): void {
    if (!this.running) return
    const now = Date.now()
    for (const request of this.scheduler.expire(now)) this.clients.get(request.peer)?.cancel(request.object, request.index)
    for (const offence of this.scheduler.takeOffences()) this.penalize(offence.peer, offence.kind, offence.detail)
    const node = this.requireNode()
    for (const connection of node.getConnections()) {
      const peer = connection.remotePeer.toString()
      if (!this.shoalPeers.has(peer) || this.have.has(peer) || now - (this.haveOpenedAt.get(peer) ?? 0) < HAVE_REOPEN_INTERVAL_MS) continue
      if (connection.status === 'open' && HaveProtocol.opensTo(this.peerId, peer)) this.maybeOpenHave(peer, connection)
    }
    for (const job of this.jobs) {
      if (now - job.lastProgressAt < STALLED_PULL_SEARCH_MS) continue
      if (now - (this.providerSearchAt.get(job.bundleId) ?? 0) < PROVIDER_SEARCH_INTERVAL_MS) continue
      void this.searchProviders(job.bundleId, this.stopController.signal)
    }
    this.schedulePump()
  }

  private warn (message: string, error?: Error): void {
    this.log.warn(message, { err: error })
    this.emit('warning', { message, error })
  }

  private requireNode (): ShoalNode {
    if (this.node === undefined) throw new SwarmNotStartedError()
    return this.node
  }
}

function anySignal (signal: AbortSignal | undefined, other: AbortSignal): AbortSignal {
  return signal === undefined ? other : AbortSignal.any([signal, other])
}

function withTimeout (signal: AbortSignal | undefined, ms: number): AbortSignal {
  return signal === undefined ? AbortSignal.timeout(ms) : AbortSignal.any([signal, AbortSignal.timeout(ms)])
}


/**
 * Who may move a tag here: the publishers named in `trust`, and this node. Never a bootstrap
 * peer by being one: a bootstrap address is where to find the fleet, not whom to believe (a
 * hostile bootstrap peer pinned a tag for good with one record).
 */
function trustedPublishers (init: SwarmInit): Set<string> {
  const trusted = new Set((init.trust ?? []).map(parseTrustedPublisher))
  trusted.add(peerIdOfKey(init.publisherKey ?? init.privateKey))
  return trusted
}
