/** What a swarm is built from and the shapes its API speaks; no behaviour lives here. */
import type { SeedingPolicy } from './gateway-seeding.js'
import type { SchedulerInit } from './scheduler.js'
import type { PullProgress } from './swarm-events.js'
import type { Store } from '../store/index.js'
import type { PrivateKey } from '@libp2p/interface'
import type { PreheatRecordStore } from './preheat-protocol.js'
import type { StatusGossipInit, StatusSource } from './status-options.js'

/** The part of the store the swarm uses (src/store/index.ts). */
export type SwarmStore = Pick<Store, 'getBundle' | 'getEncodedBundle' | 'addBundle' | 'requireRoomForBundle' | 'bundleIds' | 'objectState' | 'readChunk' | 'writeChunk' | 'on' | 'off' | 'acceptRefRecord' | 'refRecords'>

/** Structured logging, as the daemon's logger provides it; the swarm is silent without one. */
export interface SwarmLogger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  info: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
  error: (msg: string, fields?: Record<string, unknown>) => void
}

export interface SwarmComponents {
  store: SwarmStore
  /** Where preheat records are kept (the store); without it the node takes no part in preheats. */
  preheats?: PreheatRecordStore
  logger?: SwarmLogger
}

/** The logger of a swarm built without one. */
export const silentLogger: SwarmLogger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }

/** A swarm built without a status source still appears in the fleet view, saying nothing more. */
export const noStatus: StatusSource = async () => ({ version: '', labels: {}, complete: [], completeCount: 0, partial: [], partialCount: 0, freeBytes: 0, uploadRate: 0, downloadRate: 0 })

export interface SwarmInit {
  /** The node's persistent identity (createPeerKey / parsePeerKey). */
  privateKey: PrivateKey
  /** What this node gossips about itself for the fleet view (status-protocol.ts). */
  /** Refs kept from other publishers' records (ref-protocol.ts MAX_HEARD_REFS*); tests make them small. */
  heardRefs?: { maxPerPublisher?: number, maxTotal?: number }
  status?: { source: StatusSource } & Pick<StatusGossipInit, 'intervalMs' | 'absenceGraceMs' | 'witnessDelayMs' | 'maxKnownNodes' | 'newPublishersBurst' | 'newPublishersPerSecond' | 'addressGroup'>
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
  /**
   * The data lane's port (lanes.ts): chunk bodies over TLS 1.3 keyed by a one-time offer made
   * on the libp2p connection. Default: libp2p's first TCP listen port + 1 when that port is
   * fixed (4001 → 4002, declared in the deploy files), any free port when it is 0. 0: any free
   * port. false: no lanes, neither served nor asked for (chunks over libp2p only).
   */
  lanePort?: number | false
  /** How fast a peer must deliver over libp2p before a lane to it is asked for (default LANE_MIN_RATE_BYTES_PER_S; 0: as its first chunk stream opens; Infinity: never). */
  laneMinRateBytesPerSecond?: number
  /** A gateway seeds the fleet: edges fetch from it only what no other neighbour holds. */
  gateway?: boolean
  maxUploadBytesPerSecond?: number
  maxDownloadBytesPerSecond?: number
  banDurationMs?: number
  /** Where bans are saved so a restart keeps them (the daemon: DATA/bans.json); unset keeps them in memory. */
  banFile?: string
  /** How long pull() looks for a peer holding an unknown manifest before giving up (a holder's transfer is not cut off by it). */
  manifestSearchTimeoutMs?: number
  maxNeighbours?: number
  yamuxWindowBytes?: number
  /** The connection encrypters offered, in order of preference (default ENCRYPTERS in constants.ts). */
  encrypters?: ReadonlyArray<'tls' | 'noise'>
  /**
   * New identities one IP may bring at once before they come one per NEW_IDENTITY_INTERVAL_MS
   * (default MAX_NEW_IDENTITIES_PER_IP). Raised only where one address plays many peers on
   * purpose (the wire fuzzer re-keys after every ban).
   */
  maxNewIdentitiesPerIp?: number
  scheduler?: Partial<Omit<SchedulerInit, 'chunkSizeBytes'>>
  /** A gateway's seeding policy over GATEWAY_SEEDING_POLICY (tests stretch its times). */
  seeding?: Partial<SeedingPolicy>
  /** An edge's hold for sole copies (sole-copies.ts; default SOLE_COPY_HOLD_MS; tests stretch it). */
  soleCopyHoldMs?: number
  /** What a chunk asker that has read nothing may hold unread (STRANGER_UNREAD_BYTES; tests make it one chunk, so one stream fills it). */
  strangerUnreadBytes?: number
  /** How long a blob frame may wait to leave for an asker that does not read it (FLEET_BLOB_STALL_MS; tests shorten it). */
  fleetBlobSendTimeoutMs?: number
  /** The relay tree's shape (FLEET_BLOB_DIRECT_ASKERS, FLEET_BLOB_RELAY_FANOUT; tests make a relay two hops down with three edges). */
  fleetBlobTree?: { directAskers?: number, fanout?: number }
  /** When a neighbour's join announces bundles again (providers.ts ProviderRecordsInit; tests shorten them). */
  reprovide?: { delayMs?: number, minIntervalMs?: number }
}

export interface PullOptions {
  signal?: AbortSignal
  onProgress?: (progress: PullProgress) => void
  /** An object a client is waiting on: its chunks are fetched first, in order. */
  priorityObject?: string
  /**
   * Objects to fetch first, in this order, each in index order (`priorityObject` still goes
   * ahead of them). Asked once the bundle's manifest is in the store and awaited before the
   * first chunk request, so none of their chunks is fetched out of order: a registry client
   * then reads them as they come, and the store hashes them from memory as they arrive
   * instead of reading them back at completion. A rejection only leaves the order the swarm's.
   */
  firstObjects?: (signal: AbortSignal) => Promise<readonly string[]>
  /**
   * Fetch only these objects of the bundle (a preheat of one platform of a multi-platform
   * image); the pull resolves when they are complete. Default: every object.
   */
  objects?: ReadonlySet<string>
  /**
   * Background work (a preheat): its chunks are asked for only while no other pull has one a
   * peer could send, so a containerd pull goes first (scheduler.ts).
   */
  background?: boolean
  /**
   * How long to look for a peer holding an unknown manifest (default the swarm's
   * `manifestSearchTimeoutMs`). A registry client waiting on a tag wants a fast no, so it
   * can try its next host, not a 30 s search. It bounds finding a holder: once a peer has
   * answered that it holds the manifest, its transfer is cut off only when it stalls.
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
