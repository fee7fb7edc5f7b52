import { PROVIDER_LOOKUP_TIMEOUT_MS } from './constants.js'
import { bundleCid } from './content-id.js'
import { dhtReach, type DhtReach, type DhtReachInit } from './dht-reach.js'
import type { ShoalNode } from './libp2p-node.js'
import type { PeerInfo } from '@libp2p/interface'
import { abortAfter } from '../wait/index.js'

/**
 * DHT provider records for bundle IDs, so a node finds holders beyond its neighbours. A
 * record is stored at the peers closest to the bundle's CID that we know *now*; a node that
 * announced while alone reached nobody, so bundles are announced again when neighbours join.
 *
 * Records are sent only where someone beyond our neighbours could read them (DhtReach): an
 * announce asks for the peers closest to the key (FIND_NODE, as kad-dht's provide does first),
 * and sends ADD_PROVIDER (kad-dht's provide) only when an answer named a peer we still have no
 * connection to once the walk is over and the swarm tried to dial it, or an answer may have left
 * some out, or our routing table holds one. Else every node
 * our neighbours know is our neighbour too, and the record stays in our own provider store (a
 * lookup that reaches us finds us). On the 16-host bed, where every daemon neighbours every
 * other, each edge's announce was FIND_NODE and ADD_PROVIDER to all 15, and the same in from
 * the others.
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
  /** Who an announce could reach (default: the node's kad-dht, dhtReach); null makes every announce a query. */
  reach?: DhtReach | null
  /** For the default reach: connects to a peer a walk named (DhtReachInit.connect). */
  connect?: DhtReachInit['connect']
  /**
   * Whether this node is pulling the bundle and its neighbours hold every chunk of it between
   * them: a neighbour's join then does not announce it again until that is no longer so (the
   * pull ended, or chunks lack holders), as the walk would find nothing the pull needs and
   * costs the pull a DHT query mid-way. Default: never.
   */
  fedByNeighbours?: (bundleId: string) => boolean
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
  private readonly reach: DhtReach | undefined

  constructor (private readonly node: ShoalNode, private readonly init: ProviderRecordsInit) {
    this.delayMs = init.reprovideDelayMs ?? REPROVIDE_DELAY_MS
    this.minIntervalMs = init.reprovideMinIntervalMs ?? REPROVIDE_MIN_INTERVAL_MS
    this.reach = init.reach === undefined ? dhtReach(node, { connect: init.connect }) : (init.reach ?? undefined)
  }

  /**
   * Announces a bundle: records at the peers closest to its key when someone beyond the
   * neighbours could read them ('query'), else only in our own provider store ('local'; the
   * walk that told was made).
   */
  async announce (bundleId: string, options: { signal?: AbortSignal } = {}): Promise<'query' | 'local'> {
    const began = Date.now()
    const cid = bundleCid(bundleId)
    const signal = this.lookupSignal(options.signal)
    if (this.reach !== undefined) {
      await this.reach.provideLocally(cid, { signal })
      if (!this.reach.beyondNeighbours() && !await this.reach.walkFindsBeyond(cid, { signal })) {
        this.announcedAt.set(bundleId, began)
        return 'local'
      }
    }
    await this.node.contentRouting.provide(cid, { signal })
    this.announcedAt.set(bundleId, began)
    return 'query'
  }

  /** A lookup's deadline, ended sooner by stop() or the caller's signal. */
  private lookupSignal (signal: AbortSignal | undefined): AbortSignal {
    return abortAfter(PROVIDER_LOOKUP_TIMEOUT_MS, signal === undefined ? this.controller.signal : AbortSignal.any([this.controller.signal, signal]))
  }

  /**
   * Holders the DHT knows of, ourselves excluded; stops at the first `limit` or the timeout.
   * Asked of kad-dht itself, not through libp2p's content routing, which writes every holder's
   * addresses into the peer store as it passes them on: the caller dials (and so records the
   * addresses of) only the holders it has no connection to.
   */
  async find (bundleId: string, options: { signal?: AbortSignal, limit?: number } = {}): Promise<PeerInfo[]> {
    const signal = this.lookupSignal(options.signal)
    const found = new Map<string, PeerInfo>()
    const self = this.node.peerId.toString()
    try {
      for await (const event of this.node.services.dht.findProviders(bundleCid(bundleId), { signal })) {
        if (event.name !== 'PROVIDER') continue
        for (const provider of event.providers) {
          const key = provider.id.toString()
          if (key === self || found.has(key)) continue
          found.set(key, { id: provider.id, multiaddrs: provider.multiaddrs })
          if (found.size >= (options.limit ?? 20)) return [...found.values()]
        }
      }
    } catch (err) {
      // A lookup that timed out still returns what it found; a caller's abort propagates.
      options.signal?.throwIfAborted()
      if (found.size === 0) this.init.onWarning(`DHT lookup for bundle ${bundleId} failed`, err as Error)
    }
    return [...found.values()]
  }

  /** A neighbour joined: re-announces every local bundle soon, at most once per interval. */
  scheduleReprovide (): void {
    this.joinedAt = Date.now()
    this.scheduleRun()
  }

  private scheduleRun (): void {
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
   * Each goes out as announce decides then: a query with records, or our own record after a
   * walk that found nobody beyond the neighbours (the joined one may know others).
   * A join schedules this up to a minute later; on the 16-host bed every edge's first joins
   * came at start, with no bundle yet, and the run a minute later announced again the bundle
   * each edge had announced when its manifest arrived, with every neighbour there: a DHT query
   * to all 15 and 15 provider records, at every edge, in the middle of the pull. The same came
   * later from a neighbour that joined after an edge's announce (mDNS still completing the mesh
   * as the pulls began): its run a minute on walked again at about half the edges, mid-pull
   * (docs/architecture.md, the `dhtcost` lane). So a bundle whose pull its neighbours feed waits,
   * checked again a run later: it goes once the pull is over or lacks holders.
   */
  private async reprovide (): Promise<void> {
    const bundles = this.init.bundles()
    const local = new Set(bundles)
    for (const id of this.announcedAt.keys()) if (!local.has(id)) this.announcedAt.delete(id)
    let waiting = false
    for (const id of bundles) {
      if (this.controller.signal.aborted) return
      if ((this.announcedAt.get(id) ?? Number.NEGATIVE_INFINITY) >= this.joinedAt + this.delayMs) continue
      if (this.init.fedByNeighbours?.(id) === true) {
        waiting = true
        continue
      }
      try {
        await this.announce(id)
      } catch (err) {
        if (!this.controller.signal.aborted) this.init.onWarning(`DHT announce of bundle ${id} failed`, err as Error)
      }
    }
    if (waiting) this.scheduleRun()
  }
}
