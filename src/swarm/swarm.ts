import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { BundleManifest } from '../manifest/index.js'
import { ConnectionAdmission } from './admission.js'
import { BanList, type Ban } from './ban-list.js'
import { serveBundleRequest } from './bundle-protocol.js'
import { pacedByDownloadCap, streamFromFleet, type FleetBlobSource } from './fleet-blob-asker.js'
import { FLEET_BLOB_PROTOCOL, FLEET_BLOB_SENDS_PER_PEER, MAX_FLEET_BLOB_STREAMS_PER_CONNECTION, serveFleetBlobRequest, type FleetBlobQuery, type FleetBlobResponder, type FleetBlobServeHooks } from './fleet-blob-protocol.js'
import { FleetBlobRelays } from './fleet-blob-relays.js'
import { FLEET_PROTOCOL, FleetAsker, MAX_FLEET_STREAMS_PER_CONNECTION, serveFleetRequest, type FleetAskOptions, type FleetQuery, type FleetResponder, type FleetResult } from './fleet-protocol.js'
import { ChunkServer } from './chunk-protocol.js'
import {
  BAN_DURATION_MS, BUNDLE_PROTOCOL, MAX_CONNECTIONS_PER_IP, MAX_PENDING_UPGRADES_PER_IP, MAX_CONCURRENT_MANIFEST_SERVES, CHUNK_PROTOCOL, DIAL_TIMEOUT_MS, HAVE_PROTOCOL, MAX_BUNDLE_STREAMS_PER_CONNECTION,
  BLOB_LANE_PROTOCOL, OBJECT_LANE_PROTOCOL, LANE_FIRST_REQUEST_TIMEOUT_MS, LANE_PROTOCOL, MAX_CHUNK_STREAMS_PER_CONNECTION, MAX_CONCURRENT_UPLOADS, MAX_HAVE_STREAMS_PER_CONNECTION, MAX_NEIGHBOURS,
  SCHEDULER_TICK_MS,
} from './constants.js'
import { BadDataError, LaneClosedError, SwarmNotStartedError } from './errors.js'
import { Fetcher } from './fetcher.js'
import { HaveList, type ObjectHolding } from './have-list.js'
import { HaveProtocol } from './have-protocol.js'
import { laneListenOf } from './lane-listen.js'
import { Lanes } from './lanes.js'
import { ObjectStreamServer } from './object-stream-server.js'
import { createNode, type ShoalNode } from './libp2p-node.js'
import { LocalBundles } from './local-bundles.js'
import { DEFAULT_MANIFEST_SEARCH_TIMEOUT_MS, ManifestFinder } from './manifest-search.js'
import { peerIdOfKey } from './peer-identity.js'
import { PeerScores, type OffenceKind } from './peer-score.js'
import { ProviderRecords } from './providers.js'
import { HolderWatch, type NoHolder } from './holder-watch.js'
import { RateLimiter } from './rate-limiter.js'
import { BanFile } from './ban-file.js'
import { RefSync } from './ref-protocol.js'
import type { RecordSyncStats } from './record-sync.js'
import { parseTrustedPublisher } from './ref-record.js'
import { KeyedSemaphores, Semaphore } from './semaphore.js'
import { SwarmEventEmitter } from './swarm-events.js'
import { PreheatSync, type PreheatRecordStore } from './preheat-protocol.js'
import { verifyPreheatRecord, type PreheatIntent, type VerifiedPreheatRecord } from './preheat-record.js'
import { StatusGossip } from './status-protocol.js'
import type { FleetNode } from './status-book.js'
import type { FleetGossipStats } from './status-options.js'
import { noStatus, silentLogger, type PeerSummary, type PullOptions, type SwarmComponents, type SwarmInit, type SwarmLogger, type SwarmStore } from './swarm-options.js'
import { TransferStats, type SwarmStats } from './swarm-stats.js'
import type { Connection, PeerId, PeerInfo } from '@libp2p/interface'
import { abortAfter } from '../wait/index.js'

/** The opener of a have stream retries a lost one this often while the connection lasts. */
const HAVE_REOPEN_INTERVAL_MS = 5_000
/** Lane offers asked at once on one connection: one lane, one replacement. */
const LANE_OFFER_STREAMS_PER_CONNECTION = 2

/**
 * One daemon's place in the fleet, the thin shell around its parts: the libp2p node and the
 * shoal protocols it handles, neighbours and what they hold, peer discipline (scores, bans),
 * and the local store's events. Pulls and chunk traffic are the fetcher's (fetcher.ts);
 * finding a manifest nobody here holds is the finder's (manifest-search.ts). It serves peers
 * from the local store only.
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
  /** Peers already warned about in the log: one warning per peer, the rest at debug. */
  private readonly warnedPeers = new Set<string>()
  private readonly haveList = new HaveList()
  private readonly local = new LocalBundles()
  private readonly transfer = new TransferStats()
  private readonly uploadLimiter: RateLimiter | undefined
  private readonly have: HaveProtocol
  private readonly chunkServer: ChunkServer
  private readonly lanes: Lanes
  private readonly objectServer: ObjectStreamServer
  private readonly fetcher: Fetcher
  private readonly finder: ManifestFinder
  /** Says when an object a client waits on has no holder left (issue 8's fast 404). */
  private readonly holderWatch: HolderWatch
  private readonly gateways = new Set<string>()
  private readonly haveOpenedAt = new Map<string, number>()
  /** Peers known to speak shoal (identify listed the have protocol): lost have streams to them are renewed. */
  private readonly shoalPeers = new Set<string>()
  private providers: ProviderRecords | undefined
  private readonly refs: RefSync
  private readonly statusGossip: StatusGossip
  private readonly preheats: PreheatSync | undefined
  private readonly preheatStore: PreheatRecordStore | undefined
  private banFile: BanFile | undefined
  /** Publishers whose ref records this node applies; also the only peers it asks about image names. */
  private readonly trusted: ReadonlySet<string>
  private readonly fleet: FleetAsker
  private fleetResponder: FleetResponder | undefined
  private fleetBlobResponder: FleetBlobResponder | undefined
  /** How blob streams are served (set as the node starts): libp2p's and the blob lanes' alike. */
  private fleetBlobHooks: FleetBlobServeHooks | undefined
  /** Who receives which blob from here: later askers are pointed at them (edges relay). */
  private readonly fleetBlobRelays: FleetBlobRelays
  private tickTimer: NodeJS.Timeout | undefined
  private running = false
  private stopController = new AbortController()

  constructor (components: SwarmComponents, init: SwarmInit) {
    super()
    this.store = components.store
    this.log = components.logger ?? silentLogger
    this.init = init
    this.fleetBlobRelays = new FleetBlobRelays(init.fleetBlobTree)
    this.peerId = peerIdOfKey(init.privateKey)
    this.bans = new BanList()
    this.scores = new PeerScores({ baseBanMs: init.banDurationMs ?? BAN_DURATION_MS })
    this.uploadLimiter = init.maxUploadBytesPerSecond === undefined ? undefined : new RateLimiter(init.maxUploadBytesPerSecond)
    this.fetcher = new Fetcher({
      store: this.store, local: this.local, haveList: this.haveList, scores: this.scores, transfer: this.transfer, events: this, log: this.log,
    }, {
      scheduler: init.scheduler,
      maxDownloadBytesPerSecond: init.maxDownloadBytesPerSecond,
      // The protocol's name and the first requests leave in one write, without waiting for the
      // holder's echo: on a congested link that echo queued behind the holder's chunk data and
      // the requests behind ours, and the holder's 10 s wait for a first request ran out.
      // A lane when one is ready (lanes.ts), libp2p otherwise.
      openChunkStream: async (peer, { signal }) => await this.lanes.take(peer, signal) ??
        await this.requireNode().dialProtocol(peerIdFromString(peer), CHUNK_PROTOCOL, { signal, negotiateFully: false }),
      onOffence: (peer, kind, detail) => { this.penalize(peer, kind, detail) },
      onRefused: (peer) => { this.refusedBy(peer) },
      // A lane that died says nothing of the peer's libp2p connection: its have stream stays.
      onChunkStreamFailed: (peer, err) => { if (!(err instanceof LaneClosedError)) this.have.close(peer, err) },
      onDelivered: (peer, rate) => { this.lanes.delivered(peer, rate) },
      openObjectLane: async (peer, signal) => await this.lanes.objectLane(peer, signal),
      onStalled: (bundleId, stalledForMs) => { this.finder.searchIfDue(bundleId, this.stopController.signal, stalledForMs) },
      warn: (message, error) => { this.warn(message, error) },
    })
    this.finder = new ManifestFinder({
      haveList: this.haveList,
      bans: this.bans,
      scores: this.scores,
      events: this,
      node: () => this.requireNode(),
      isRunning: () => this.running,
      bootstrap: init.bootstrap ?? [],
      defaultTimeoutMs: init.manifestSearchTimeoutMs ?? DEFAULT_MANIFEST_SEARCH_TIMEOUT_MS,
      dial: async (address, options) => await this.dial(address, options),
      findProviders: async (bundleId, options) => await this.findProviders(bundleId, options),
      neighboursCover: (bundleId) => this.neighboursCover(bundleId),
      penalize: (peer, kind, detail) => { this.penalize(peer, kind, detail) },
      warn: (message, error) => { this.warn(message, error) },
      debug: (message, fields) => { this.log.debug(message, fields) },
    })
    this.holderWatch = new HolderWatch({
      haveList: this.haveList,
      isBanned: (peer) => this.bans.isBanned(peer),
      connectedPeers: () => this.node?.getPeers().map(p => p.toString()) ?? [],
      interestedHere: (bundleId) => this.local.has(bundleId),
      searchProviders: async (bundleId, signal) => await this.finder.searchProviders(bundleId, signal),
    })
    this.have = new HaveProtocol({ store: this.store, local: this.local, haveList: this.haveList }, {
      gateway: init.gateway ?? false,
      onNeighbourJoined: (peer, gateway) => { this.neighbourJoined(peer, gateway) },
      onNeighbourLeft: (peer) => { this.neighbourLeft(peer) },
      onHolding: (peer, object, holding) => { this.peerHolds(peer, object, holding) },
      onChunks: (peer, object, indexes) => {
        this.fetcher.holdsChunks(peer, object, indexes)
        this.holderWatch.changed()
      },
      onViolation: (peer, err) => { this.penalize(peer, 'violation', `have stream: ${err.message}`) },
    })
    this.trusted = trustedPublishers(init)
    const records = { trusted: this.trusted, connections: () => this.node?.getConnections() ?? [], log: this.log }
    this.refs = new RefSync(this.store, records, {
      self: peerIdOfKey(init.publisherKey ?? init.privateKey),
      bounds: init.heardRefs,
      onInvalid: (peer, why) => { this.penalize(peer, 'invalid-record', why) },
      onMalformed: (peer, why) => { this.penalize(peer, 'violation', `ref records: ${why}`) },
      onSendAllFailed: (err) => { this.sendAllFailed('ref', err) },
    })
    this.preheatStore = components.preheats
    this.preheats = components.preheats === undefined
      ? undefined
      : new PreheatSync(components.preheats, records, {
        onInvalid: (peer, why) => { this.penalize(peer, 'invalid-record', why) },
        onMalformed: (peer, why) => { this.penalize(peer, 'violation', `preheat records: ${why}`) },
        onSendAllFailed: (err) => { this.sendAllFailed('preheat', err) },
        onAccepted: (record) => { this.emit('preheat:accepted', record) },
      })
    this.statusGossip = new StatusGossip({
      privateKey: init.privateKey,
      connections: () => this.node?.getConnections() ?? [],
      source: init.status?.source ?? noStatus,
      probe: async (peer, { signal }) => await this.answersDial(peer, signal),
      log: this.log,
    }, {
      intervalMs: init.status?.intervalMs,
      absenceGraceMs: init.status?.absenceGraceMs,
      maxKnownNodes: init.status?.maxKnownNodes,
      witnessDelayMs: init.status?.witnessDelayMs,
      newPublishersBurst: init.status?.newPublishersBurst,
      newPublishersPerSecond: init.status?.newPublishersPerSecond,
      addressGroup: init.status?.addressGroup,
      onAbsence: (subject, witness) => { this.emit('status:absence', { subject, witness }) },
      onSynced: (peer) => { this.emit('status:synced', { peer }) },
      onInvalid: (peer, why) => { this.penalize(peer, 'invalid-record', why) },
      onAccepted: (publisher, sequence) => { this.emit('status:accepted', { publisher, sequence }) },
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
      seeding: init.seeding,
      soleCopyHoldMs: init.soleCopyHoldMs,
      strangerUnreadBytes: init.strangerUnreadBytes,
      onUploaded: (peer, bytes) => { this.transfer.uploaded(peer, bytes) },
      onOffence: (peer, kind, detail) => { this.penalize(peer, kind, detail) },
    })
    this.objectServer = new ObjectStreamServer({
      store: this.store,
      local: this.local,
      uploadSlots: this.chunkServer.components.uploadSlots,
      uploadLimiter: this.uploadLimiter,
      recordSent: (key, peer, connectionId, object, index) => { this.chunkServer.recordSent(key, peer, connectionId, object, index) },
      spreadingElsewhere: (object, asker) => this.chunkServer.spreadingElsewhere(object, asker),
      isTaker: (peer) => this.chunkServer.isTaker(peer),
    }, {
      gateway: init.gateway ?? false,
      onUploaded: (peer, bytes) => { this.transfer.uploaded(peer, bytes) },
      onOffence: (peer, kind, detail) => { this.penalize(peer, kind, detail) },
    })
    this.lanes = new Lanes({
      log: this.log,
      connectionTo: (peer) => this.node?.getConnections(peerIdFromString(peer)).find(c => c.status === 'open'),
      admits: (peer) => this.running && !this.bans.isBanned(peer) && (this.node?.getConnections(peerIdFromString(peer)).some(c => c.status === 'open') ?? false),
      // A lane up before its asker has a request for it stays for one (LANE_FIRST_REQUEST_TIMEOUT_MS).
      onServe: (stream, connection) => { this.chunkServer.handleStream(stream, connection, LANE_FIRST_REQUEST_TIMEOUT_MS) },
      // A lane asked for one blob stream is served as that protocol's libp2p streams are.
      onServeBlob: (stream, connection) => {
        if (this.fleetBlobHooks === undefined) stream.abort(new LaneClosedError('the swarm is not running'))
        else void serveFleetBlobRequest(this.fleetBlobResponder, stream, connection, this.stopController.signal, this.fleetBlobHooks)
      },
      onServeObject: (stream, connection) => { void this.objectServer.serve(stream, connection, this.stopController.signal) },
      onReady: (peer) => { this.fetcher.renewChunkStream(peer) },
    }, {
      listen: init.lanePort === false ? undefined : laneListenOf(init.listen ?? ['/ip4/0.0.0.0/tcp/0'], init.lanePort),
      ask: init.lanePort !== false,
      minRateBytesPerSecond: init.laneMinRateBytesPerSecond,
    })
  }

  get isRunning (): boolean {
    return this.running
  }

  // ---- lifecycle ----------------------------------------------------------------------

  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.running) return
    this.stopController = new AbortController()
    if (this.init.banFile !== undefined) {
      this.banFile = new BanFile(this.init.banFile, this.bans, this.log)
      const restored = await this.banFile.load()
      if (restored > 0) this.log.info('bans restored from the last run', { peers: restored, path: this.init.banFile })
    }
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
        maxPendingPerIp: MAX_PENDING_UPGRADES_PER_IP, maxConnectionsPerIp: MAX_CONNECTIONS_PER_IP, maxNewIdentitiesPerIp: this.init.maxNewIdentitiesPerIp,
      }).gater(),
      yamuxWindowBytes: this.init.yamuxWindowBytes,
      encrypters: this.init.encrypters,
    })
    this.node = node
    try {
      await this.startNode(node, options)
    } catch (err) {
      // Leave nothing half-started: no store listeners, no open sockets.
      this.detachStore()
      this.providers?.stop()
      this.statusGossip.stop()
      this.refs.stop()
      this.preheats?.stop()
      try {
        await this.lanes.stop()
        await node.stop()
      } catch {
        // Stopping a node that failed to start may fail too; the start error is the one to report.
      }
      this.node = undefined
      throw err
    }
    this.running = true
    this.fetcher.start()
    this.tickTimer = setInterval(() => { this.tick() }, SCHEDULER_TICK_MS)
    this.tickTimer.unref()
  }

  private async startNode (node: ShoalNode, options: { signal?: AbortSignal }): Promise<void> {
    this.providers = new ProviderRecords(node, {
      bundles: () => this.local.ids(),
      onWarning: (message, error) => { this.warn(message, error) },
      connect: async (peer, { signal } = {}) => await this.connect(peer, { signal, withinLimit: true, quiet: true }),
      fedByNeighbours: (bundleId) => this.fetcher.pulling(bundleId) && this.neighboursCover(bundleId),
      reprovideDelayMs: this.init.reprovide?.delayMs,
      reprovideMinIntervalMs: this.init.reprovide?.minIntervalMs,
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
    // Offered only where a lane listens: an asker of a node without one fails the negotiation and stays on libp2p.
    if (await this.lanes.start(options) !== undefined) {
      await node.handle(LANE_PROTOCOL, (stream, connection) => { this.lanes.handleOffer(stream, connection) }, {
        maxInboundStreams: LANE_OFFER_STREAMS_PER_CONNECTION, maxOutboundStreams: LANE_OFFER_STREAMS_PER_CONNECTION,
      })
      await node.handle(BLOB_LANE_PROTOCOL, (stream, connection) => { this.lanes.handleOffer(stream, connection, 'blob') }, {
        maxInboundStreams: LANE_OFFER_STREAMS_PER_CONNECTION, maxOutboundStreams: LANE_OFFER_STREAMS_PER_CONNECTION,
      })
      await node.handle(OBJECT_LANE_PROTOCOL, (stream, connection) => { this.lanes.handleOffer(stream, connection, 'object') }, {
        maxInboundStreams: LANE_OFFER_STREAMS_PER_CONNECTION, maxOutboundStreams: LANE_OFFER_STREAMS_PER_CONNECTION,
      })
    }
    await this.refs.attach(node)
    await node.handle(FLEET_PROTOCOL, (stream, connection) => { void serveFleetRequest(this.fleetResponder, stream, connection, this.stopController.signal) }, {
      maxInboundStreams: MAX_FLEET_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_FLEET_STREAMS_PER_CONNECTION,
    })
    const fleetBlobHooks: FleetBlobServeHooks = this.fleetBlobHooks = {
      relays: this.fleetBlobRelays,
      usable: (peer) => this.actsFor(peer) && !this.bans.isBanned(peer) && node.getConnections(peerIdFromString(peer)).some(c => c.status === 'open'),
      relayFailed: (relay, asker, digest) => { this.log.info('an asker came back from the relay it was pointed at for a fleet blob; that relay is not named again for it', { relay, asker, digest }) },
      penalize: (peer, kind, detail) => { this.penalize(peer, kind, detail) },
      addressesOf: async (peer) => await this.listenAddresses(peer),
      sent: (peer, bytes) => { this.transfer.streamed(peer, 'up', bytes) },
      uploadLimiter: this.uploadLimiter,
      // The chunk server's bounds: what a peer has not read, and the node's upload slots.
      budget: this.chunkServer.budget,
      uploadSlots: this.chunkServer.components.uploadSlots,
      peerSends: new KeyedSemaphores(FLEET_BLOB_SENDS_PER_PEER),
      sendTimeoutMs: this.init.fleetBlobSendTimeoutMs,
    }
    await node.handle(FLEET_BLOB_PROTOCOL, (stream, connection) => { void serveFleetBlobRequest(this.fleetBlobResponder, stream, connection, this.stopController.signal, fleetBlobHooks) }, {
      maxInboundStreams: MAX_FLEET_BLOB_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_FLEET_BLOB_STREAMS_PER_CONNECTION,
    })
    await this.preheats?.attach(node)
    await this.statusGossip.attach(node)
    await node.register(HAVE_PROTOCOL, {
      onConnect: (peerId, connection) => { this.maybeOpenHave(peerId.toString(), connection) },
    })
    node.addEventListener('peer:discovery', (evt) => { this.discovered(evt.detail) })
    node.addEventListener('peer:connect', (evt) => {
      this.holderWatch.changed()
      this.emit('peer:connected', { peer: evt.detail.toString() })
    })
    node.addEventListener('peer:disconnect', (evt) => {
      const peer = evt.detail.toString()
      this.haveOpenedAt.delete(peer)
      this.shoalPeers.delete(peer)
      this.lanes.closePeer(peer, new LaneClosedError('the peer disconnected'))
      this.holderWatch.lost()
      this.emit('peer:disconnected', { peer })
    })

    await node.start()
    await this.statusGossip.start()
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
    this.providers?.stop()
    this.statusGossip.stop()
    this.refs.stop()
    this.preheats?.stop()
    this.detachStore()
    this.fetcher.stop(reason)
    this.have.closeAll()
    this.chunkServer.closeAll()
    await this.lanes.stop()
    await this.node?.stop()
    this.node = undefined
    await this.banFile?.flush()
  }

  // ---- public API ---------------------------------------------------------------------

  /** Every node this one has heard of, itself included, from their signed statuses (`shoal fleet`). */
  fleetView (): FleetNode[] {
    return this.statusGossip.view()
  }

  /** What the fleet view turned away: new nodes dropped past a neighbour's or its network's allowance, and neighbours charged. */
  fleetStats (): FleetGossipStats {
    const gossip = this.statusGossip
    return { droppedNeighbour: gossip.dropped - gossip.droppedForGroup, droppedGroup: gossip.droppedForGroup, charges: gossip.charges }
  }

  /** Multiaddrs peers can dial, each ending in /p2p/<peer id>. */
  addresses (): string[] {
    return this.requireNode().getMultiaddrs().map(ma => ma.toString())
  }

  /** The port the data lane listens on (lanes.ts); undefined when this node serves no lanes. */
  lanePort (): number | undefined {
    return this.lanes.port
  }

  /** Connects to a peer by a full multiaddr (with /p2p/<id>); resolves with its peer ID. */
  async dial (address: string, options: { signal?: AbortSignal } = {}): Promise<string> {
    const connection = await this.requireNode().dial(multiaddr(address), { signal: abortAfter(DIAL_TIMEOUT_MS, options.signal) })
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
      // The holder's data lane is asked for now, not when the first chunk stream opens: the pull's
      // start (the description stored, the room check, the first objects' order) then covers its
      // offer, connect and handshake, 11-34 ms before the first chunk at load ~10 (issue 8).
      const encoded = await this.finder.find(bundleId, signal, options.manifestSearchTimeoutMs, {
        ...options,
        onHolder: peer => {
          this.lanes.prepare(peer)
          this.holderWatch.claimed(bundleId, peer)
        },
      })
      bundle = (await this.store.addBundle(encoded, { expectedId: bundleId, signal })).bundle
    }
    // Before any chunk is asked for: a pull the disk has no room for could only fill it (and
    // fill it again each time a client's request starts it anew), NoRoomError says so instead.
    await this.store.requireRoomForBundle(bundleId, { objects: options.objects })
    this.addLocalBundle(bundleId, bundle)
    if (options.firstObjects !== undefined) {
      let first: readonly string[] = []
      try {
        first = await options.firstObjects(signal)
      } catch (err) {
        signal.throwIfAborted()
        this.log.debug('the order of a pull\'s first objects could not be had; the swarm picks', { bundleId, err })
      }
      // The latest call goes first: handed over last to first. Not wanted yet, they wait in the
      // fetcher until the pull below enlists them.
      for (const object of [...first].reverse()) this.fetcher.prioritize(object)
    }
    // Ends the wait of the pull's first DHT search when the pull is over before it.
    const pulled = new AbortController()
    try {
      await this.fetcher.fetch(bundleId, bundle, {
        signal,
        onProgress: options.onProgress,
        priorityObject: options.priorityObject,
        objects: options.objects,
        background: options.background,
        onStarted: () => {
          if (announceHere) void this.announceQuietly(bundleId)
          this.finder.searchAtStart(bundleId, AbortSignal.any([signal, pulled.signal]))
        },
      })
    } finally {
      pulled.abort()
    }
  }

  /**
   * Resolves, with why, once no connected peer holds or is about to send a chunk of `object` of
   * `bundleId` (a local bundle: a pull of it has begun) and a short search found none
   * (holder-watch.ts); while a holder is known it waits. Rejects only when `signal` aborts. A
   * pull itself goes on looking: this is for a client that would rather ask another source.
   */
  async untilNoHolder (bundleId: string, object: string, options: { signal: AbortSignal }): Promise<NoHolder> {
    return await this.holderWatch.untilNoHolder(bundleId, object, { signal: anySignal(options.signal, this.stopController.signal) })
  }

  /**
   * Fetches this object's chunks before anything else, in order (an HTTP client waits on it).
   * An object no pull wants yet goes first once one does.
   */
  prioritize (object: string): void {
    this.fetcher.prioritize(object)
  }

  /**
   * A client waits on this object (an HTTP response): its chunks go before any pull's own order,
   * taking turns with other waited objects, until the returned release is called.
   */
  waitFor (object: string): () => void {
    return this.fetcher.waitFor(object)
  }

  /**
   * Signs ref records (`name:tag` → bundle) with this node's publisher key, keeps them, and
   * sends them to every neighbour, who pass them on if they trust this publisher.
   */
  async publishRefs (refs: Array<{ ref: string, bundleId: string, manifestDigest?: string }>): Promise<void> {
    await this.refs.publish(this.init.publisherKey ?? this.init.privateKey, refs)
  }

  /**
   * Signs a preheat intent with this node's publisher key, keeps it, and sends it to every
   * neighbour; nodes that trust this publisher and match the selector pull and pin the bundle.
   */
  async publishPreheat (intent: PreheatIntent): Promise<VerifiedPreheatRecord> {
    if (this.preheats === undefined) throw new SwarmNotStartedError()
    return await this.preheats.publish(this.init.publisherKey ?? this.init.privateKey, intent)
  }

  /** Every preheat record held (all from trusted publishers: nothing else is kept), verified. */
  async preheatRecords (): Promise<VerifiedPreheatRecord[]> {
    const out: VerifiedPreheatRecord[] = []
    for (const signed of await this.preheatStore?.preheatRecords() ?? []) out.push(await verifyPreheatRecord(signed))
    return out
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
  async askFleet (query: FleetQuery, options: FleetAskOptions): Promise<FleetResult> {
    this.requireNode()
    if (this.trustsNobody()) return { misses: [NO_TRUST_MISS] }
    const signal = anySignal(options.signal, this.stopController.signal)
    // A connection to the gateway dropped under load (and libp2p does not redial it) left an
    // edge answering 404 for every new tag while its bootstrap address was right there.
    if (this.trustedPeers().length === 0) await this.redialTrustedBootstrap(signal)
    return await this.fleet.ask(query, { ...options, signal })
  }

  /** A new neighbour could not be sent our records: while stopping (the store closed) that is expected. */
  private sendAllFailed (what: string, err: unknown): void {
    if (this.running) this.warn(`could not send ${what} records to a new neighbour`, err instanceof Error ? err : new Error(String(err)))
  }

  /** Dials the bootstrap addresses (each ends in /p2p/<id>, checked at start) of trusted peers, within `signal`. */
  private async redialTrustedBootstrap (signal: AbortSignal): Promise<void> {
    const addresses = (this.init.bootstrap ?? []).filter(address => this.trusted.has(address.split('/p2p/').pop() ?? ''))
    await Promise.allSettled(addresses.map(async address => await this.dial(address, { signal })))
  }

  /** No publisher but this node is trusted: no peer is asked for tags or digests (FleetAsker asks trusted peers only). */
  private trustsNobody (): boolean {
    for (const publisher of this.trusted) if (publisher !== this.peerId) return false
    return true
  }

  /** Answers other nodes' blob streams (/shoal/fleet-blob/1.0.0) with `responder`; without one, NOT_FOUND. */
  serveFleetBlobs (responder: FleetBlobResponder | undefined): void {
    this.fleetBlobResponder = responder
  }

  /**
   * Has the fleet's pull-through node stream a blob here as it downloads it, or the edge it
   * points us at which is receiving it already (see streamFromFleet).
   */
  async streamFleetBlob (query: FleetBlobQuery, options: { signal: AbortSignal }): Promise<FleetBlobSource> {
    this.requireNode()
    if (this.trustsNobody()) return { misses: [NO_TRUST_MISS] }
    const signal = anySignal(options.signal, this.stopController.signal)
    const source = await streamFromFleet(this.trustedPeers(), query, {
      connectRelay: async (peer, addrs, signal) => await this.connectRelay(peer, addrs, signal),
      // The pull-through node's bytes over a data lane when one can be had (lanes.ts blobLane).
      lane: async (peer, signal) => await this.lanes.blobLane(peer, signal),
      penalize: (peer, kind, detail) => { this.penalize(peer, kind, detail) },
      relayDropped: (detail) => { this.log.info('a relay for a fleet blob was dropped; the pull-through node streams it', { ...detail, digest: query.digest }) },
      received: (peer, bytes) => {
        this.transfer.streamed(peer, 'down', bytes)
        this.emit('fleet-blob:received', { peer, bytes })
      },
    }, { signal })
    const limiter = this.fetcher.downloadLimiter
    return source.stream === undefined || limiter === undefined ? source : { ...source, stream: pacedByDownloadCap(source.stream, limiter, signal) }
  }

  /** A connection to a relay edge the pull-through node named: the open one, else dialled at the addresses it gave. */
  private async connectRelay (peer: string, addrs: string[], signal: AbortSignal): Promise<Connection | undefined> {
    const node = this.requireNode()
    if (peer === this.peerId || this.bans.isBanned(peer)) return undefined
    let id
    try {
      id = peerIdFromString(peer)
    } catch {
      return undefined
    }
    const open = node.getConnections(id).find(c => c.status === 'open')
    if (open !== undefined) return open
    const multiaddrs = addrs.flatMap((address) => {
      try {
        return [multiaddr(address)]
      } catch {
        return []
      }
    })
    try {
      if (multiaddrs.length > 0) await node.peerStore.merge(id, { multiaddrs })
      return await node.dial(id, { signal: abortAfter(DIAL_TIMEOUT_MS, signal) })
    } catch (err) {
      signal.throwIfAborted()
      this.log.debug('could not dial a relay for a fleet blob', { peer, err })
      return undefined
    }
  }

  /** The addresses a peer said it listens on (identify), for naming it as a relay. */
  private async listenAddresses (peer: string): Promise<string[]> {
    const node = this.node
    if (node === undefined) return []
    try {
      const known = await node.peerStore.get(peerIdFromString(peer))
      return known.addresses.map(a => a.multiaddr.toString()).filter(a => !a.includes('/p2p-circuit'))
    } catch {
      return []
    }
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

  /** Looks up holders of a bundle in the DHT and connects to those not connected; resolves with their IDs. */
  async findProviders (bundleId: string, options: { signal?: AbortSignal } = {}): Promise<string[]> {
    this.requireNode()
    const found = await this.providers?.find(bundleId, { signal: anySignal(options.signal, this.stopController.signal) }) ?? []
    // The caller's signal goes to the dials too: a pull that ended leaves no holder dialled for it.
    await Promise.all(found.map(async (peer) => { await this.connect(peer.id, { addresses: peer.multiaddrs, signal: options.signal }) }))
    return found.map(peer => peer.id.toString())
  }

  /** Whether the connected, unbanned neighbours hold every chunk of a local bundle between them. */
  private neighboursCover (bundleId: string): boolean {
    const objects = this.local.objectsOf(bundleId).map(hash => ({ hash, chunkCount: this.local.object(hash)?.chunkCount ?? 0 }))
    const node = this.node
    if (objects.length === 0 || node === undefined) return false
    return this.haveList.covers(objects, peer => !this.bans.isBanned(peer) && node.getConnections(peerIdFromString(peer)).length > 0)
  }

  /**
   * Whether `peer` may make this node act for the fleet: be named a relay for a blob streamed
   * from here, or have this node write and announce a bundle it asked for. A peer this node
   * trusts (`--trust`), or any peer of a fleet closed with a swarm key (admitted by its
   * operator). In an open fleet anyone could otherwise ask early and be named a relay (its
   * askers then lost up to the relay-judging window per blob), or make this node announce.
   */
  actsFor (peer: string): boolean {
    return this.init.swarmKey !== undefined || this.trusted.has(peer)
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
      const stats = this.transfer.get(id)
      return {
        id,
        addresses: connections.map(c => c.remoteAddr.toString()),
        connected: connections.length > 0,
        neighbour: this.have.has(id),
        gateway: this.gateways.has(id),
        banned: this.bans.isBanned(id),
        bytesUploaded: stats.bytesUploaded,
        bytesDownloaded: stats.bytesDownloaded,
        rate: this.fetcher.rate(id),
        requestsInFlight: this.fetcher.inFlight(id),
        score: Math.round(this.scores.score(id)),
        lastOffence: this.scores.lastOffence(id),
      }
    })
  }

  stats (): SwarmStats {
    return { ...this.transfer.snapshot(), requests: this.fetcher.requestCounts(), gatewayExtraCopies: this.chunkServer.extraCopies(), lanes: this.lanes.stats(), objectStreams: this.fetcher.objectStreamStats() }
  }

  /** Inbound ref records: verified, dropped as untrusted before any verify, invalid, over allowance. */
  refStats (): RecordSyncStats {
    return this.refs.stats()
  }

  /** Inbound preheat records, likewise (undefined without a preheat store). */
  preheatStats (): RecordSyncStats | undefined {
    return this.preheats?.stats()
  }

  banned (): Ban[] {
    return this.bans.list()
  }

  /** Disconnects a peer and refuses it for `durationMs` (default BAN_DURATION_MS). */
  ban (peer: string, reason: string, durationMs: number = this.init.banDurationMs ?? BAN_DURATION_MS): void {
    const ban = this.bans.ban(peer, durationMs, reason)
    this.transfer.banned()
    this.have.close(peer, new BadDataError(`banned: ${reason}`))
    this.fetcher.closePeer(peer, new BadDataError(`banned: ${reason}`))
    this.lanes.closePeer(peer, new LaneClosedError(`banned: ${reason}`))
    this.neighbourLeft(peer)
    this.statusGossip.distrust(peer)
    this.holderWatch.lost()
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
    this.fetcher.peerJoined(peer, gateway)
    this.providers?.scheduleReprovide()
    this.holderWatch.changed()
    this.log.debug('neighbour joined', { peer, gateway })
    this.emit('neighbour:joined', { peer, gateway })
  }

  private neighbourLeft (peer: string): void {
    if (!this.fetcher.hasPeer(peer)) return
    this.fetcher.peerLeft(peer)
    this.gateways.delete(peer)
    this.holderWatch.lost()
    this.log.debug('neighbour left', { peer })
    this.emit('neighbour:left', { peer })
  }

  private peerHolds (peer: string, object: string, holding: ObjectHolding): void {
    this.fetcher.holds(peer, object, holding)
    this.holderWatch.changed()
  }

  /**
   * Whether a neighbour whose connection dropped is still there (the fleet view's absence
   * notices): connected again, or answering a dial. A peer banned here is not ours to report.
   */
  private async answersDial (peer: string, signal: AbortSignal): Promise<boolean> {
    const node = this.node
    if (node === undefined || this.bans.isBanned(peer)) return true
    const id = peerIdFromString(peer)
    if (node.getConnections(id).some(c => c.status === 'open')) return true
    try {
      await node.dial(id, { signal: abortAfter(DIAL_TIMEOUT_MS, AbortSignal.any([signal, this.stopController.signal])) })
      return true
    } catch {
      return false
    }
  }

  private discovered (info: PeerInfo): void {
    if (this.running) void this.connect(info.id, { addresses: info.multiaddrs, withinLimit: true })
  }

  /**
   * Dials a peer unless it is banned or connected already; resolves whether it is connected. A
   * connected peer costs nothing, not even a peer-store merge of `addresses` it holds already
   * (each merge takes the peer's lock, writes its record and dispatches `peer:update`).
   * Discovery and an announce's DHT walk (`withinLimit`) add neighbours only below the limit;
   * holders a pull looked up are dialled regardless. A failed dial is a warning, except for a
   * peer the DHT walk named (`quiet`: one beyond reach is why records are sent), a dial its
   * caller gave up on, and a peer connected by then all the same (two nodes dialling each other
   * at once: one handshake is reset, seen as ECONNRESET on a loaded machine).
   */
  private async connect (peer: PeerId, options: { addresses?: PeerInfo['multiaddrs'], signal?: AbortSignal, withinLimit?: boolean, quiet?: boolean }): Promise<boolean> {
    const node = this.node
    if (node === undefined || this.bans.isBanned(peer.toString())) return false
    if (node.getConnections(peer).length > 0) return true
    if (options.withinLimit === true && node.getPeers().length >= (this.init.maxNeighbours ?? MAX_NEIGHBOURS)) return false
    try {
      if (options.addresses !== undefined && options.addresses.length > 0) await node.peerStore.merge(peer, { multiaddrs: options.addresses })
      await node.dial(peer, { signal: abortAfter(DIAL_TIMEOUT_MS, anySignal(options.signal, this.stopController.signal)) })
    } catch (err) {
      if (options.quiet === true) this.log.debug('could not dial a peer an announce\'s DHT walk named', { peer: peer.toString(), err })
      else if (node.getConnections(peer).length > 0) this.log.debug('a dial failed; the peer is connected all the same', { peer: peer.toString(), err })
      else if (this.running && options.signal?.aborted !== true) this.warn(`could not dial ${peer.toString()}`, err as Error)
    }
    return node.getConnections(peer).length > 0
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
    this.fetcher.chunkStored(object, index)
  }

  private readonly onObjectComplete = ({ object, rereadBytes }: { object: string, rereadBytes?: number }): void => {
    // How much of it completion had to read back to hash it whole (0: its chunks came in order).
    this.log.debug('object complete', { object, rereadBytes })
    this.have.localObjectComplete(object)
    this.fetcher.objectCompleted(object)
  }

  private addLocalBundle (id: string, bundle: BundleManifest): void {
    if (!this.local.add(id, bundle)) return
    this.have.localBundleAdded(id)
    this.holderWatch.changed()
  }

  private async announceQuietly (bundleId: string): Promise<void> {
    try {
      await this.announce(bundleId)
    } catch (err) {
      if (this.running) this.warn(`DHT announce of ${bundleId} failed`, err as Error)
    }
  }

  /** Renews lost have streams; the fetcher releases stalled requests and reports stalled pulls. */
  private tick (): void {
    if (!this.running) return
    const now = Date.now()
    const node = this.requireNode()
    for (const connection of node.getConnections()) {
      const peer = connection.remotePeer.toString()
      if (!this.shoalPeers.has(peer) || this.have.has(peer) || now - (this.haveOpenedAt.get(peer) ?? 0) < HAVE_REOPEN_INTERVAL_MS) continue
      if (connection.status === 'open' && HaveProtocol.opensTo(this.peerId, peer)) this.maybeOpenHave(peer, connection)
    }
    this.fetcher.tick()
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


/**
 * Why a fleet question went to nobody, for an edge given its gateway's address but not its key:
 * the connected gateway is not asked, and "no trusted peer is connected" sent operators to the
 * network instead of to the flag.
 */
const NO_TRUST_MISS = { peer: '-', reason: 'this node trusts no peer, so it asks none for tags or blobs: start it with --trust PEERID (the gateway\'s peer ID, which `shoal status` prints there)' }

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
