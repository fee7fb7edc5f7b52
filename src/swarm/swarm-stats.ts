/** Transfer counters, for `swarm.stats()`, the status page and /metrics. */
import type { ExtraCopyReason } from './gateway-seeding.js'
import type { LaneStats } from './lanes.js'
import type { RequestCounts } from './scheduler.js'

export interface PeerTransferStats {
  bytesUploaded: number
  bytesDownloaded: number
  chunksUploaded: number
  chunksDownloaded: number
  /** Chunks this peer sent that another peer had already delivered. */
  duplicateChunks: number
  /** Chunks this peer sent that failed verification. */
  rejectedChunks: number
}

export interface SwarmStats extends PeerTransferStats {
  /** Chunks received more than once (end game, late answers to re-asked requests). */
  chunksFetchedTwice: number
  chunksRejected: number
  bans: number
  perPeer: Record<string, PeerTransferStats>
  /** Chunk requests sent, by why (the scheduler's; where fetched-twice chunks come from). */
  requests: RequestCounts
  /** A gateway's copies of chunks it had sent before, by why (empty on an edge). */
  gatewayExtraCopies: Partial<Record<ExtraCopyReason, number>>
  /** The data lanes (lanes.ts); their chunks are in the counts above as well. */
  lanes: LaneStats
  /** Objects this node asked for whole over object lanes (object-streams.ts): streams started, that brought the whole object, that fell back to chunks. */
  objectStreams: { started: number, completed: number, fellBack: number }
}

const emptyPeer = (): PeerTransferStats => ({
  bytesUploaded: 0, bytesDownloaded: 0, chunksUploaded: 0, chunksDownloaded: 0, duplicateChunks: 0, rejectedChunks: 0,
})

/**
 * Peers whose own figures are kept, the most recently active; the rest count in the totals only.
 * A stranger may bring a new identity every few seconds for as long as it likes, and every peer
 * ever served kept an entry here, listed in every `stats()` and `peers()` (the status page asks
 * each second). The peer scores keep as many.
 */
export const MAX_PEERS_WITH_STATS = 4096

export class TransferStats {
  /** In order of last activity, the least recent first. */
  private readonly peers = new Map<string, PeerTransferStats>()
  /** What the peers dropped from `peers` had done. */
  private readonly forgotten = emptyPeer()
  private bans = 0

  peer (peer: string): PeerTransferStats {
    let stats = this.peers.get(peer)
    if (stats === undefined) {
      stats = emptyPeer()
      if (this.peers.size >= MAX_PEERS_WITH_STATS) this.forgetLeastRecent()
    } else {
      this.peers.delete(peer)
    }
    this.peers.set(peer, stats)
    return stats
  }

  /** A peer's figures, without counting the look as activity (zeros for a peer not kept). */
  get (peer: string): PeerTransferStats {
    return { ...(this.peers.get(peer) ?? emptyPeer()) }
  }

  uploaded (peer: string, bytes: number): void {
    const stats = this.peer(peer)
    stats.bytesUploaded += bytes
    stats.chunksUploaded++
  }

  /** Bytes of a fleet blob stream (not chunks): counted in the peer's bytes, not its chunk counts. */
  streamed (peer: string, direction: 'up' | 'down', bytes: number): void {
    const stats = this.peer(peer)
    if (direction === 'up') stats.bytesUploaded += bytes
    else stats.bytesDownloaded += bytes
  }

  downloaded (peer: string, bytes: number, duplicate: boolean): void {
    const stats = this.peer(peer)
    stats.bytesDownloaded += bytes
    stats.chunksDownloaded++
    if (duplicate) stats.duplicateChunks++
  }

  rejected (peer: string): void {
    this.peer(peer).rejectedChunks++
  }

  banned (): void {
    this.bans++
  }

  snapshot (): Omit<SwarmStats, 'requests' | 'gatewayExtraCopies' | 'lanes' | 'objectStreams'> {
    const total = { ...this.forgotten }
    const perPeer: Record<string, PeerTransferStats> = {}
    for (const [peer, stats] of this.peers) {
      perPeer[peer] = { ...stats }
      addInto(total, stats)
    }
    return { ...total, chunksFetchedTwice: total.duplicateChunks, chunksRejected: total.rejectedChunks, bans: this.bans, perPeer }
  }

  /**
   * The totals (which /metrics turns into counters by difference) keep what the peer did. Not a
   * RecentMap: a peer is refreshed on every read (`peer`), and what it did is kept when it goes.
   */
  private forgetLeastRecent (): void {
    const [peer, stats] = this.peers.entries().next().value ?? []
    if (peer === undefined || stats === undefined) return
    this.peers.delete(peer)
    addInto(this.forgotten, stats)
  }
}

function addInto (total: PeerTransferStats, stats: PeerTransferStats): void {
  total.bytesUploaded += stats.bytesUploaded
  total.bytesDownloaded += stats.bytesDownloaded
  total.chunksUploaded += stats.chunksUploaded
  total.chunksDownloaded += stats.chunksDownloaded
  total.duplicateChunks += stats.duplicateChunks
  total.rejectedChunks += stats.rejectedChunks
}
