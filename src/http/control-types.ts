import type { BundleSummary } from '../store/index.js'

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
}

/** One line of the NDJSON stream `POST /api/v1/pull` answers with. */
export type PullEvent =
  | { type: 'resolved', id: string }
  | { type: 'searching', peersAsked: number, providerLookups: number, providersFound: number }
  | { type: 'progress', presentBytes: number, totalBytes: number, peers: number }
  | { type: 'done', id: string, seconds: number }
  | { type: 'error', code: string, message: string }
