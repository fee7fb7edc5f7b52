import type { FleetNodeInfo, FleetResponse } from './fleet-view.js'
import type { BundleSummary, Store } from '../store/index.js'
import type { HttpLogger } from './types.js'

export interface ControlApiComponents {
  store: Store
  swarm: SwarmControl
  /** Preheats and pins; without it those routes answer NOT_FOUND. */
  preheats?: PreheatControl
  /** Pushes and pulls asked for by the CLI are logged at info: they move the fleet's content. */
  logger?: HttpLogger
}

export interface ControlApiInit {
  gateway?: boolean
  labels?: Readonly<Record<string, string>>
  /** The most a push may send (the store's quota, when one is set). */
  maxPushBytes?: number
  /** Where the registry mirror and the metrics listen, filled in once they do (`shoal status` says it). */
  serving?: Readonly<ServingAddresses>
}

/** The HTTP listeners an operator points containerd and Prometheus at, as HOST:PORT. */
export interface ServingAddresses {
  registry?: string
  /** Absent when /metrics is served on the registry's listener (no --metrics). */
  metrics?: string
}

/** What the control API needs of the swarm; the daemon passes the real one. */
export interface SwarmControl {
  readonly peerId: string
  addresses: () => string[]
  pull: (bundleId: string, options: {
    signal?: AbortSignal
    onProgress?: (progress: PullProgress) => void
    searchOnce?: boolean
    onSearch?: (search: ManifestSearchProgress) => void
  }) => Promise<void>
  announce: (bundleId: string) => Promise<void> | void
  peers: () => PeerInfo[]
  stats: () => SwarmStats
  /** Every node heard of through the status gossip, this one included. */
  fleetView: () => FleetNodeInfo[]
}

/** Where the search for a bundle manifest this node does not have stands. */
export interface ManifestSearchProgress { peersAsked: number, providerLookups: number, providersFound: number }

export interface PullProgress {
  presentBytes: number
  totalBytes: number
  /** Peers this node has chunk requests with right now. */
  peers: number
}

export interface PeerInfo {
  id: string
  addresses: string[]
  bytesUploaded: number
  bytesDownloaded: number
  /** An open connection now; the list keeps peers that left (with their byte totals) and banned ones. */
  connected: boolean
  banned: boolean
  gateway: boolean
  /** Trust from what the peer did (0 neutral; banned at -100), and the last offence charged. */
  score?: number
  lastOffence?: string
}

export interface SwarmStats {
  bytesUploaded: number
  bytesDownloaded: number
  chunksFetchedTwice: number
  chunksRejected: number
  bans: number
}

/** What the control API needs of the daemon's preheat keeper (src/daemon/preheat-keeper.ts). */
export interface PreheatControl {
  /** Signs and gossips a preheat (or its cancel) for the bundle a ref or ID names. */
  issue: (request: PreheatRequest) => Promise<PreheatIssued>
  /** What this node does about each preheat record it holds. */
  status: () => PreheatStatus[]
  /** Unpins a bundle here (`shoal unpin`); a preheat of it no longer holds it on this node. */
  unpin: (idOrRef: string) => Promise<{ bundleId: string, preheated: boolean }>
}

/** `POST /api/v1/preheat`. */
export interface PreheatRequest {
  ref: string
  /** A selector (`arch=amd64,site=a`); absent: every node. */
  nodes?: string
  /** OS/ARCH[/VARIANT]; absent: each node's own platform. */
  platform?: string
  cancel?: boolean
}

export interface PreheatIssued {
  bundleId: string
  ref?: string
  selector: string
  platform?: string
  cancelled: boolean
  sequence: number
  publisher: string
}

/** What this node does about one preheat record (`GET /api/v1/preheats`). */
export type PreheatState = 'pulling' | 'waiting' | 'complete' | 'failed' | 'cancelled' | 'released' | 'not-matching'

export interface PreheatStatus {
  bundleId: string
  ref?: string
  /** Canonical selector; empty: every node. */
  selector: string
  platform?: string
  publisher: string
  sequence: number
  state: PreheatState
  /** Bytes of the objects this node fetches for it (its platform's, for a multi-platform image). */
  presentBytes: number
  totalBytes: number
  /** Why the last attempt failed (it is retried). */
  error?: string
}

/** `GET /api/v1/status`. */
export interface StatusResponse {
  peerId: string
  addresses: string[]
  gateway: boolean
  /** What this node is (`--label`, with the detected `os` and `arch`), as preheat selectors match it. */
  labels: Record<string, string>
  bundles: BundleSummary[]
  peers: PeerInfo[]
  stats: SwarmStats
  /** The fleet as the nodes' statuses tell it, the table cut to FLEET_PAGE_ROWS. */
  fleet: FleetResponse
  serving: ServingAddresses
}

/** One line of the NDJSON stream `POST /api/v1/pull` answers with. */
export type PullEvent =
  | { type: 'resolved', id: string }
  | { type: 'searching', peersAsked: number, providerLookups: number, providersFound: number }
  | { type: 'progress', presentBytes: number, totalBytes: number, peers: number }
  | { type: 'done', id: string, seconds: number }
  | { type: 'error', code: string, message: string }
