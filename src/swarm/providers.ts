import { PROVIDER_LOOKUP_TIMEOUT_MS } from './constants.js'
import { bundleCid } from './content-id.js'
import type { ShoalNode } from './libp2p-node.js'
import type { PeerInfo } from '@libp2p/interface'
import { abortAfter } from '../wait/index.js'

/**
 * DHT provider records for bundle IDs, so a node finds holders beyond its neighbours. A
 * record is stored at the peers closest to the bundle's CID that we know *now*; a node that
 * announced while alone reached nobody, so bundles are announced again when neighbours join.
 */

/** First re-announce this long after a neighbour joins (its routing table fills meanwhile)… */
const REPROVIDE_DELAY_MS = 1_000
/** …and not more often than this: each run is one DHT query per local bundle. */
const REPROVIDE_MIN_INTERVAL_MS = 60_000

export interface ProviderRecordsInit {
  bundles: () => string[]
  onWarning: (message: string, error: Error) => void
  /** REPROVIDE_DELAY_MS and REPROVIDE_MIN_INTERVAL_MS; tests shorten them. */
  reprovideDelayMs?: number
  reprovideMinIntervalMs?: number
}

export class ProviderRecords {
  private timer: NodeJS.Timeout | undefined
  private lastRunAt = 0
  private readonly controller = new AbortController()
  /** When each bundle's last announce that reached the DHT began. */
  private readonly announcedAt = new Map<string, number>()
  /** When the latest neighbour joined (scheduleReprovide). */
  private joinedAt = 0
  private readonly delayMs: number
  private readonly minIntervalMs: number

  constructor (private readonly node: ShoalNode, private readonly init: ProviderRecordsInit) {
    this.delayMs = init.reprovideDelayMs ?? REPROVIDE_DELAY_MS
    this.minIntervalMs = init.reprovideMinIntervalMs ?? REPROVIDE_MIN_INTERVAL_MS
  }

  async announce (bundleId: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    const began = Date.now()
    await this.node.contentRouting.provide(bundleCid(bundleId), { signal: this.lookupSignal(options.signal) })
    this.announcedAt.set(bundleId, began)
  }

  /** A lookup's deadline, ended sooner by stop() or the caller's signal. */
  private lookupSignal (signal: AbortSignal | undefined): AbortSignal {
    return abortAfter(PROVIDER_LOOKUP_TIMEOUT_MS, signal === undefined ? this.controller.signal : AbortSignal.any([this.controller.signal, signal]))
  }

  /** Holders the DHT knows of, ourselves excluded; stops at the first `limit` or the timeout. */
  async find (bundleId: string, options: { signal?: AbortSignal, limit?: number } = {}): Promise<PeerInfo[]> {
    const signal = this.lookupSignal(options.signal)
    const found = new Map<string, PeerInfo>()
    const self = this.node.peerId.toString()
    try {
      for await (const provider of this.node.contentRouting.findProviders(bundleCid(bundleId), { signal })) {
        const key = provider.id.toString()
        if (key === self || found.has(key)) continue
        found.set(key, { id: provider.id, multiaddrs: provider.multiaddrs })
        if (found.size >= (options.limit ?? 20)) break
      }
    } catch (err) {
      // A lookup that timed out still returns what it found; a caller's abort propagates.
      options.signal?.throwIfAborted()
      if (found.size === 0) this.init.onWarning(`DHT lookup for bundle ${bundleId} failed`, err as Error)
    }
    return [...found.values()]
  }

  /** Re-announces every local bundle soon, at most once per interval. */
  scheduleReprovide (): void {
    this.joinedAt = Date.now()
    if (this.timer !== undefined || this.controller.signal.aborted) return
    const delay = Math.max(this.delayMs, this.lastRunAt + this.minIntervalMs - Date.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.lastRunAt = Date.now()
      void this.reprovide()
    }, delay)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.controller.abort(new Error('the swarm is stopping'))
  }

  /**
   * Announces again the bundles whose last announce began before the latest neighbour joined
   * (and its routing table filled, the first delay): one announced since reached it already.
   * A join schedules this up to a minute later; on the 16-host bed every edge's first joins
   * came at start, with no bundle yet, and the run a minute later announced again the bundle
   * each edge had announced when its manifest arrived, with every neighbour there: a DHT query
   * to all 15 and 15 provider records, at every edge, in the middle of the pull.
   */
  private async reprovide (): Promise<void> {
    const bundles = this.init.bundles()
    const local = new Set(bundles)
    for (const id of this.announcedAt.keys()) if (!local.has(id)) this.announcedAt.delete(id)
    for (const id of bundles) {
      if (this.controller.signal.aborted) return
      if ((this.announcedAt.get(id) ?? Number.NEGATIVE_INFINITY) >= this.joinedAt + this.delayMs) continue
      try {
        await this.announce(id)
      } catch (err) {
        if (!this.controller.signal.aborted) this.init.onWarning(`DHT announce of bundle ${id} failed`, err as Error)
      }
    }
  }
}
