import { peerIdFromString } from '@libp2p/peer-id'
import { fetchBundle } from './bundle-protocol.js'
import { MAX_CONCURRENT_MANIFEST_FETCHES } from './constants.js'
import { BadDataError, BundleNotInSwarmError, isRemoteFault } from './errors.js'
import type { BanList } from './ban-list.js'
import type { HaveList } from './have-list.js'
import type { ShoalNode } from './libp2p-node.js'
import type { OffenceKind, PeerScores } from './peer-score.js'
import { Semaphore } from './semaphore.js'
import type { SwarmEventEmitter } from './swarm-events.js'
import type { ManifestSearch, PullOptions } from './swarm-options.js'
import { abortAfter, wakeOrTimeout } from '../wait/index.js'

export const DEFAULT_MANIFEST_SEARCH_TIMEOUT_MS = 30_000
/** Peers asked for a manifest at once (see fetchFromAny). */
const MANIFEST_FETCH_PARALLELISM = 3
/** A bundle's holders are looked up in the DHT at most this often for a stalled pull. */
const PROVIDER_SEARCH_INTERVAL_MS = 15_000
/**
 * A pull's first DHT search waits this long for its neighbours' have-lists (they answer its
 * interest within a round trip and a store read), and is skipped if they cover the bundle.
 */
const PROVIDER_SEARCH_START_WAIT_MS = 2_000
/**
 * A stalled pull whose neighbours cover its bundle searches the DHT only after stalling this
 * long: holders that advertise and do not deliver are left to the scheduler's rules and bans
 * first, and the DHT is the way out if they never are.
 */
const COVERED_STALL_SEARCH_MS = 30_000

export interface ManifestFinderInit {
  haveList: HaveList
  bans: BanList
  scores: PeerScores
  /** Tells when a neighbour joins: a search waiting for one asks it at once. */
  events: SwarmEventEmitter
  /** The running node; throws when the swarm is not started. */
  node: () => ShoalNode
  isRunning: () => boolean
  /** Dialed again when a search finds this node alone. */
  bootstrap: string[]
  defaultTimeoutMs: number
  dial: (address: string, options: { signal: AbortSignal }) => Promise<string>
  /** A DHT lookup that also connects to the holders it finds. */
  findProviders: (bundleId: string, options: { signal?: AbortSignal }) => Promise<string[]>
  /** Whether connected neighbours' have-lists name every chunk of the bundle (HaveList.covers). */
  neighboursCover: (bundleId: string) => boolean
  penalize: (peer: string, kind: OffenceKind, detail: string) => void
  warn: (message: string, error?: Error) => void
  debug: (message: string, fields: Record<string, unknown>) => void
  now?: () => number
}

/**
 * Finding who holds a bundle: a manifest nobody here has (neighbours that said they hold it,
 * any neighbour, then the DHT), and more holders for a pull that stalled.
 */
export class ManifestFinder {
  private readonly fetches = new Semaphore(MAX_CONCURRENT_MANIFEST_FETCHES)
  private readonly providerSearchAt = new Map<string, number>()
  private readonly now: () => number

  constructor (private readonly init: ManifestFinderInit) {
    this.now = init.now ?? Date.now
  }

  /**
   * Finds a peer that serves the manifest: neighbours that said they hold it, any neighbour,
   * then the DHT. `timeoutMs` bounds finding a holder: every step, the DHT lookup and a
   * peer's answer included, is cut off at it until a peer answers that it holds the
   * manifest, so a caller that asked for a short search gets its "nobody has it" on time.
   * A holder's transfer then runs under fetchBundle's own rules (a part within
   * MESSAGE_TIMEOUT_MS, the whole within BUNDLE_FETCH_TIMEOUT_MS) and `signal`: on a loaded
   * machine a manifest that is arriving is not turned into a 404 by the search's deadline.
   */
  async find (
    bundleId: string, signal: AbortSignal, timeoutMs = this.init.defaultTimeoutMs,
    options: Pick<PullOptions, 'searchOnce' | 'onSearch'> & {
      /** A peer said it holds the bundle's manifest: it is likely to hold its chunks too. */
      onHolder?: (peer: string) => void
    } = {},
  ): Promise<Uint8Array> {
    const deadline = this.now() + timeoutMs
    const searchTimeout = abortAfter(timeoutMs)
    const search = AbortSignal.any([signal, searchTimeout])
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
      const node = this.init.node()
      const interested = this.init.haveList.peersInterestedIn(bundleId)
      const others = node.getPeers().map(p => p.toString()).filter(p => !notFound.has(p))
      const candidates = [...new Set([...interested, ...others])].filter(peer => !this.init.bans.isBanned(peer) && node.getConnections(peerIdFromString(peer)).length > 0)
      for (const peer of candidates) asked.add(peer)
      progress.peersAsked = asked.size
      if (candidates.length > 0) options.onSearch?.({ ...progress })
      const encoded = await this.fetchFromAny(bundleId, candidates, notFound, signal, searchTimeout, options.onHolder)
      if (encoded !== undefined) return encoded
      if (search.aborted) giveUp()
      if (this.now() >= deadline) giveUp()
      if (this.now() >= nextLookupAt) {
        // A node whose first bootstrap dials failed (a busy gateway, a slow start) stays alone
        // for good unless it dials again.
        if (node.getConnections().length === 0) await this.redialBootstrap(search)
        const found = await this.searchProviders(bundleId, search)
        nextLookupAt = this.now() + lookupBackoffMs
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
        const unanswered = node.getPeers().map(p => p.toString()).filter(p => !notFound.has(p) && !this.init.bans.isBanned(p))
        if (unanswered.length === 0) giveUp()
        if (unanswered.some(p => !asked.has(p))) continue
      }
      await this.nextNeighbour(Math.min(nextLookupAt - this.now(), deadline - this.now()), search)
    }
  }

  /**
   * A pull's first look for holders beyond its neighbours, once they had time to say what they
   * hold: none when they hold every chunk between them. On the 16-host bed, where every node
   * neighbours every other, each search reached all 15 neighbours and named nobody new.
   */
  searchAtStart (bundleId: string, signal: AbortSignal): void {
    void wakeOrTimeout(undefined, { timeoutMs: PROVIDER_SEARCH_START_WAIT_MS, signal }).then(outcome => {
      if (outcome === 'aborted') return
      if (this.init.neighboursCover(bundleId)) this.init.debug('no DHT search at the pull\'s start: the neighbours hold every chunk', { bundleId })
      else void this.searchProviders(bundleId, signal)
    })
  }

  /**
   * Looks up holders of a stalled pull's bundle, unless that was done a short while ago, or its
   * neighbours hold every chunk and it has not stalled for long (COVERED_STALL_SEARCH_MS).
   */
  searchIfDue (bundleId: string, signal: AbortSignal, stalledForMs: number): void {
    if (this.now() - (this.providerSearchAt.get(bundleId) ?? 0) < PROVIDER_SEARCH_INTERVAL_MS) return
    if (stalledForMs < COVERED_STALL_SEARCH_MS && this.init.neighboursCover(bundleId)) return
    void this.searchProviders(bundleId, signal)
  }

  async searchProviders (bundleId: string, signal?: AbortSignal): Promise<string[]> {
    this.providerSearchAt.set(bundleId, this.now())
    try {
      return await this.init.findProviders(bundleId, { signal })
    } catch (err) {
      if (this.init.isRunning() && signal?.aborted !== true) this.init.warn(`provider search for ${bundleId} failed`, err as Error)
      return []
    }
  }

  /**
   * Asks up to MANIFEST_FETCH_PARALLELISM peers at once, the first verified manifest wins and
   * the other fetches are dropped: one peer that drips its answer cannot hold the pull while
   * another could have answered in milliseconds. `searchTimeout` stops new asks and cuts off
   * every fetch whose peer has not yet said it holds the manifest; a holder's fetch goes on.
   */
  private async fetchFromAny (
    bundleId: string, peers: string[], notFound: Set<string>, signal: AbortSignal, searchTimeout: AbortSignal, onHolder?: (peer: string) => void,
  ): Promise<Uint8Array | undefined> {
    const won = new AbortController()
    const search = AbortSignal.any([signal, searchTimeout, won.signal])
    const node = this.init.node()
    let next = 0
    let result: Uint8Array | undefined
    const worker = async (): Promise<void> => {
      while (result === undefined && next < peers.length && !search.aborted) {
        const peer = peers[next++] as string
        const connection = node.getConnections(peerIdFromString(peer))[0]
        if (connection === undefined) continue
        // Cut off at the search's deadline until the peer says it holds the manifest.
        const unanswered = new AbortController()
        const cutOff = (): void => { unanswered.abort(searchTimeout.reason) }
        searchTimeout.addEventListener('abort', cutOff, { once: true })
        const fetchSignal = AbortSignal.any([signal, won.signal, unanswered.signal])
        try {
          await this.fetches.acquire({ signal: fetchSignal })
          try {
            const onHolding = (): void => {
              searchTimeout.removeEventListener('abort', cutOff)
              onHolder?.(peer)
            }
            const encoded = await fetchBundle(connection, bundleId, { signal: fetchSignal, onHolding })
            if (encoded === undefined) {
              notFound.add(peer)
            } else {
              result ??= encoded
              this.init.scores.served(peer)
              won.abort()
            }
          } finally {
            this.fetches.release()
          }
        } catch (err) {
          if (fetchSignal.aborted) return
          if (err instanceof BadDataError) this.init.penalize(peer, 'bad-data', err.message)
          else if (isRemoteFault(err)) this.init.penalize(peer, 'violation', `manifest: ${(err as Error).message}`)
        } finally {
          searchTimeout.removeEventListener('abort', cutOff)
        }
      }
    }
    await Promise.all(Array.from({ length: MANIFEST_FETCH_PARALLELISM }, worker))
    return result
  }

  private async redialBootstrap (signal: AbortSignal): Promise<void> {
    await Promise.allSettled(this.init.bootstrap.map(async address => { await this.init.dial(address, { signal }) }))
  }

  /** Resolves when a neighbour joins or after `ms`. */
  private async nextNeighbour (ms: number, signal: AbortSignal): Promise<void> {
    const events = this.init.events
    await wakeOrTimeout(wake => {
      events.on('neighbour:joined', wake)
      return () => { events.off('neighbour:joined', wake) }
    }, { timeoutMs: ms, signal })
  }

}
