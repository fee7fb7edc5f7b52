import type { Connection, PrivateKey } from '@libp2p/interface'
import type { StatusBatch } from './pb/swarm-status.pb.js'
import type { StatusBook } from './status-book.js'
import type { Bytes, NodeStatusFields } from './status-record.js'

/** What the fleet view turned away so far (Swarm.fleetStats, /metrics). */
export interface FleetGossipStats {
  /** New nodes dropped unread past their neighbour's allowance of introductions (it was charged). */
  droppedNeighbour: number
  /** New nodes dropped unread past their neighbour's address group's shared allowance (not charged). */
  droppedGroup: number
  /** Neighbours charged for what they sent: forged or malformed statuses, too many, too many new nodes. */
  charges: number
}

/** What the node says about itself each heartbeat (the period is the gossip's to fill in). */
export type StatusSource = (options: { signal?: AbortSignal }) => Promise<Omit<NodeStatusFields, 'intervalMs'>>

export interface StatusGossipComponents {
  privateKey: PrivateKey
  connections: () => Connection[]
  source: StatusSource
  /**
   * Whether a neighbour whose connection dropped still answers a dial (or is not ours to judge,
   * e.g. banned here). Without it a lost connection is taken as a lost node.
   */
  probe?: (peer: string, options: { signal: AbortSignal }) => Promise<boolean>
  log: { debug: (msg: string, fields?: Record<string, unknown>) => void, warn: (msg: string, fields?: Record<string, unknown>) => void }
}

export interface StatusGossipInit {
  /** The heartbeat period of a small fleet (DEFAULT_STATUS_INTERVAL_MS); it grows with the fleet (statusIntervalMs). */
  intervalMs?: number
  /** A neighbour sent a forged or malformed status, or too many: the swarm charges it (peer-score.ts). */
  onInvalid?: (peer: string, why: string) => void
  /** A status entered the view (a new node, a heartbeat or a change). */
  onAccepted?: (publisher: string, sequence: number) => void
  /** A neighbour's notice that it lost a node entered the view (this node's own too). */
  onAbsence?: (subject: string, witness: string) => void
  /** A neighbour's answer to this node's digest is applied whole (status-sync.ts): from here on it only introduces. */
  onSynced?: (peer: string) => void
  /**
   * Absence notices' timing, by default from the configured period (ABSENCE_GRACE_INTERVALS,
   * ABSENCE_WITNESS_DELAY_INTERVALS); tests set them apart from the heartbeat period.
   */
  absenceGraceMs?: number
  witnessDelayMs?: number
  /** Nodes the view holds (MAX_KNOWN_NODES); tests fill a smaller one. */
  maxKnownNodes?: number
  /**
   * The allowance of introductions (NEW_PUBLISHERS_BURST, NEW_PUBLISHERS_PER_SECOND), both what
   * this node allows each neighbour and what it assumes each neighbour allows it: internal, so
   * a test fleet floods a small allowance with a few keys, and what it refills during the test
   * does not blur the count (every node of the test takes the same).
   */
  newPublishersBurst?: number
  newPublishersPerSecond?: number
  /**
   * The address group a neighbour's introductions are counted in besides its own, from its
   * connection's remote address (default: peer-score.ts addressPrefix, as bans group; loopback
   * is in none). Internal: a test groups loopback addresses by IP, so 127.0.0.2 plays a network.
   */
  addressGroup?: (address: string) => string | undefined
  now?: () => number
  random?: () => number
}

/**
 * What the gossip's parts (the outbox, the digest sync, the witness) share: the gossip's
 * collaborators and settings, its book, and its running state.
 */
export interface StatusGossipContext {
  readonly components: StatusGossipComponents
  readonly init: StatusGossipInit
  readonly book: StatusBook
  /**
   * Nodes this node never heard of that one neighbour may introduce at once, and then a second
   * (StatusGossipInit's, defaults resolved): what this node allows and assumes it is allowed.
   */
  readonly newPublishers: { burst: number, perSecond: number }
  /** This node's peer ID and protobuf-encoded public key. */
  readonly peerId: string
  readonly publisherKey: Bytes
  /** Aborted when the gossip stops (a fresh one at each attach). */
  readonly signal: AbortSignal
  /** The configured period, which times absence notices; `intervalMs` is the fleet's adaptive one. */
  readonly baseIntervalMs: number
  readonly intervalMs: number
  now: () => number
  random: () => number
  /** Peers with an open connection now. */
  neighbours: () => string[]
  /** Sends a batch on the connection after those sent to it before (status-streams.ts). */
  send: (connection: Connection, batch: StatusBatch) => Promise<void>
  /** The local time a record was first heard, from the age its sender reported. */
  heardAt: (ageMs: number) => number
}
