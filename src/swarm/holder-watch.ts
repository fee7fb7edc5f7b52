import { RecentSet } from '../recent/index.js'
import { abortAfter, wakeOrTimeout, Wakers } from '../wait/index.js'
import { NO_HOLDER_SEARCH_MS, NO_HOLDER_SETTLE_MS, SILENT_HOLDER_WAIT_MS } from './constants.js'
import type { HaveList } from './have-list.js'

/** Peers that served a bundle's description, remembered per bundle (a bound: one entry per pull's holder). */
const CLAIMS_KEPT = 1024

export interface HolderWatchInit {
  haveList: HaveList
  isBanned: (peer: string) => boolean
  /** The peers this node has an open connection to. */
  connectedPeers: () => string[]
  /** Whether this node's interest in the bundle has gone to its neighbours (it is a local bundle). */
  interestedHere: (bundleId: string) => boolean
  /** A DHT lookup of the bundle's holders that connects to them; [] when it fails. */
  searchProviders: (bundleId: string, signal: AbortSignal) => Promise<string[]>
  now?: () => number
}

/** Why the swarm judged that no peer holds an object it lacks. */
export interface NoHolder {
  reason: string
}

/** Who might still send an object's chunks, as the have-lists say now. */
interface HoldersView {
  /** Connected, unbanned peers whose have-list names a chunk of the object. */
  holders: number
  /**
   * Connected, unbanned peers that have not said either way: not greeted on the have protocol
   * yet, or interested in the bundle (or that served its description) with nothing of the
   * object in their have-list: their state may still be on its way.
   */
  silent: number
  /** Greeted neighbours not interested in the bundle: an answer "none of it here". */
  without: number
}

/**
 * The swarm's "this object has no holder" (issue 8: a 404 within about a second when no one in
 * the fleet holds the thing, not after the first-chunk wait of 10 s). A pull never says it
 * itself: it keeps looking for holders as long as someone waits on it. This judges from what
 * the have protocol has told us, plus one bounded DHT lookup: no connected, unbanned peer names
 * a chunk of the object, none that might is still silent (waited for up to
 * SILENT_HOLDER_WAIT_MS), and a DHT lookup cut at NO_HOLDER_SEARCH_MS named nobody who did. A
 * peer that says it holds the object, even one that then stalls, is a holder: stalls are the
 * scheduler's and the scores' business. The DHT is asked only once no neighbour may hold it: a
 * request that comes before its holder's have message (the neighbour path's start) costs none.
 */
export class HolderWatch {
  /** Woken by anything a verdict reads. */
  private readonly changes = new Wakers()
  /** Woken when a peer leaves, disconnects or is banned: only that can take a holder away. */
  private readonly losses = new Wakers()
  private readonly claims = new RecentSet<string>(CLAIMS_KEPT)
  private readonly now: () => number

  constructor (private readonly init: HolderWatchInit) {
    this.now = init.now ?? Date.now
  }

  /** Something a verdict reads changed: a peer came, or told us of its interest or what it holds. */
  changed (): void {
    this.changes.wakeAll()
  }

  /** A peer left, disconnected or was banned. */
  lost (): void {
    this.losses.wakeAll()
    this.changes.wakeAll()
  }

  /**
   * `peer` served the bundle's description: it said it holds the bundle, so it counts as a
   * holder that has not spoken yet until its have-list says otherwise (its interest in a bundle
   * it has just made, a one-blob bundle, may still be on its way).
   */
  claimed (bundleId: string, peer: string): void {
    this.claims.add(`${bundleId} ${peer}`)
    this.changed()
  }

  /**
   * Resolves once no peer holds or is about to send a chunk of `object` (of `bundleId`), with
   * why; while one does it waits (a holder that leaves or is banned starts a new search).
   * Rejects only when `signal` aborts.
   */
  async untilNoHolder (bundleId: string, object: string, { signal }: { signal: AbortSignal }): Promise<NoHolder> {
    for (;;) {
      // Neighbours tell us of a bundle's objects once our interest in it reached them.
      await this.waitUntil(() => this.init.interestedHere(bundleId), this.changes, signal)
      const verdict = await this.search(bundleId, object, signal)
      if (verdict !== undefined) return verdict
      await this.waitUntil(() => this.view(bundleId, object).holders === 0, this.losses, signal)
    }
  }

  /** One bounded search: a verdict, or undefined once a holder is seen. */
  private async search (bundleId: string, object: string, signal: AbortSignal): Promise<NoHolder | undefined> {
    const started = this.now()
    let lookup: { at: number, named?: number } | undefined
    for (;;) {
      const view = this.view(bundleId, object)
      if (view.holders > 0) return undefined
      let wakeAt = started + SILENT_HOLDER_WAIT_MS
      if (view.silent === 0 || this.now() >= wakeAt) {
        // Nobody here may hold it (or those who might stayed silent too long): the DHT, once,
        // and the have messages already on their way (a neighbour's interest in a bundle it has
        // just made, its state of the object) get NO_HOLDER_SEARCH_MS.
        if (lookup === undefined) {
          const asked: { at: number, named?: number } = { at: this.now() }
          lookup = asked
          void this.init.searchProviders(bundleId, abortAfter(NO_HOLDER_SEARCH_MS, signal))
            .then(found => { asked.named = found.length }, () => { asked.named = 0 })
            .finally(() => { this.changed() })
        }
        // The lookup's answer ends the search early, but not before NO_HOLDER_SETTLE_MS: what
        // the have protocol already sent us is read first.
        wakeAt = lookup.at + (lookup.named === undefined ? NO_HOLDER_SEARCH_MS : NO_HOLDER_SETTLE_MS)
        if (this.now() >= wakeAt) {
          const silent = view.silent === 0 ? '' : `, ${view.silent} that may hold it said nothing of it in ${SILENT_HOLDER_WAIT_MS} ms`
          return { reason: `no peer holds any chunk of object ${object} of bundle ${bundleId}: ${view.without} neighbours do not hold the bundle${silent}, and a DHT lookup named ${lookup.named ?? 0} holders${lookup.named === undefined ? ` in ${NO_HOLDER_SEARCH_MS} ms` : ''}` }
        }
      }
      if (await wakeOrTimeout(this.changes.subscribe, { timeoutMs: wakeAt - this.now(), signal }) === 'aborted') signal.throwIfAborted()
    }
  }

  private view (bundleId: string, object: string): HoldersView {
    const { haveList, isBanned } = this.init
    const connected = new Set(this.init.connectedPeers())
    let holders = 0
    const holding = new Set<string>()
    for (const [peer, held] of haveList.holdersOf(object)) {
      if (!connected.has(peer) || isBanned(peer) || (held !== true && held.count() === 0)) continue
      holders++
      holding.add(peer)
    }
    let silent = 0
    let without = 0
    for (const peer of connected) {
      if (holding.has(peer) || isBanned(peer)) continue
      const mayHold = !haveList.hasPeer(peer) || haveList.interestOf(peer).has(bundleId) || this.claims.has(`${bundleId} ${peer}`)
      if (mayHold) silent++
      else without++
    }
    return { holders, silent, without }
  }

  private async waitUntil (holds: () => boolean, wakers: Wakers, signal: AbortSignal): Promise<void> {
    while (!holds()) {
      if (await wakeOrTimeout(wakers.subscribe, { signal }) === 'aborted') signal.throwIfAborted()
    }
  }
}
