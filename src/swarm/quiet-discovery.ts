import type { PeerDiscovery, PeerId, PeerInfo } from '@libp2p/interface'
import { MAX_HELD_FINDS, MDNS_DIAL_WAIT_MS } from './constants.js'

/** What the filter needs of libp2p's components: who is connected now, and who we are. */
export interface QuietDiscoveryComponents {
  connectionManager: { getConnections: (peerId?: PeerId) => Array<{ remotePeer: { toString: () => string } }> }
  peerId?: { toString: () => string }
}

/**
 * A discovery service whose finds of peers already connected are dropped before libp2p sees
 * them, and whose finds of a peer that dials us first are held (HeldFinds: one connection per
 * pair).
 *
 * mDNS answers are multicast: every daemon of a LAN parses every answer to every daemon's query,
 * N² a query interval, and libp2p merges each into its peer store (a lock, the peer's record
 * decoded, merged, encoded and compared, two queue timers) only to learn addresses it already
 * holds for a neighbour it is connected to. On the 16-host fleet bed that was 3.7 merges a second
 * per idle daemon, more than its status and ping streams together. A connected peer's addresses
 * come from identify; shoal's own `peer:discovery` handler dials only peers not connected, so a
 * find of a connected peer changes nothing but the CPU it costs.
 *
 * For @libp2p/mdns the answer is dropped before the service reads it (responseFilter): reading
 * one parses its multiaddrs and peer ID, ~150 µs of its ~180 µs (the DNS decode is the rest) at
 * load 14, for each of the ~640 answers an edge received in a 16-host run.
 */
export function withoutConnectedPeers<C> (factory: (components: C) => PeerDiscovery, options: QuietDiscoveryOptions = {}): (components: C & QuietDiscoveryComponents) => PeerDiscovery {
  return (components) => {
    const service = factory(components)
    const dispatch = service.dispatchEvent.bind(service)
    const held = new HeldFinds(components, options.dialWaitMs ?? MDNS_DIAL_WAIT_MS, dispatch)
    service.dispatchEvent = (event: Event): boolean => {
      if (event.type !== 'peer') return dispatch(event)
      const info = (event as CustomEvent<PeerInfo>).detail
      if (isConnected(components, info)) return true
      if (held.hold(info, event)) return true
      return dispatch(event)
    }
    wrapStop(service, () => { held.clear() })
    responseFilter(service, components)
    return service
  }
}

export interface QuietDiscoveryOptions {
  /** How long a find of a peer that dials us first is held (default MDNS_DIAL_WAIT_MS). */
  dialWaitMs?: number
}

/**
 * One connection per pair: of two daemons that find each other, the one with the lower peer ID
 * dials, and the other holds its find for as long as that dial may take, dialling then only if
 * no connection came.
 *
 * mDNS answers are multicast, so two daemons find each other in the same moment (a daemon's
 * query at start is answered by all, and its own answer reaches all), and both dialled: libp2p
 * keeps both connections, each with its identify, status streams, DHT routing and pings. On the
 * 16-host fleet bed an edge held 25-29 connections for its 15 neighbours. Comparing the two
 * peer IDs' strings gives both ends the same answer without a word exchanged. A peer that does
 * not dial (it stopped, it is full, it cannot reach us) costs the pair a connection made
 * MDNS_DIAL_WAIT_MS later, as before the wait. Nothing here closes a connection: a peer that
 * dials first only saves us a dial, and a peer that never dials is dialled after the wait.
 */
class HeldFinds {
  private readonly timers = new Map<string, NodeJS.Timeout>()

  constructor (
    private readonly components: QuietDiscoveryComponents,
    private readonly waitMs: number,
    private readonly dispatch: (event: Event) => boolean,
  ) {}

  /** Holds the find when the peer is the one to dial; false when we dial now. */
  hold (info: PeerInfo, event: Event): boolean {
    const self = this.components.peerId?.toString()
    const peer = info.id.toString()
    if (this.waitMs <= 0 || self === undefined || !(peer < self)) return false
    if (this.timers.has(peer)) return true
    // Answers naming many peers (a hostile host on the LAN) are not held without bound: past it, dialled as before.
    if (this.timers.size >= MAX_HELD_FINDS) return false
    const timer = setTimeout(() => {
      this.timers.delete(peer)
      if (!isConnected(this.components, info)) this.dispatch(event)
    }, this.waitMs)
    timer.unref()
    this.timers.set(peer, timer)
    return true
  }

  clear (): void {
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
  }
}

/** Runs `cleanUp` after the service's own stop (a PeerDiscovery is Startable). */
function wrapStop (service: PeerDiscovery, cleanUp: () => void): void {
  const startable = service as unknown as { stop?: () => void | Promise<void> }
  const stop = startable.stop
  startable.stop = async (): Promise<void> => {
    cleanUp()
    await stop?.call(service)
  }
}

/**
 * kad-dht with the peers its answers name dropped where they are connected already.
 *
 * Every answer a DHT query receives names up to K = 20 peers (FIND_NODE's closer peers,
 * GET_PROVIDERS' providers), and kad-dht turns each into a `peer` event of its network: a
 * routing-table update queued (a SHA-256 of the peer ID, a queue job with its AbortController
 * and timers) and a peer-discovery event, which libp2p merges into its peer store (a lock, the
 * record read, merged, written). In a fleet where every daemon neighbours every other, a query
 * reaches all N-1 neighbours and each answer names them all again: (N-1)² events per query,
 * ~225 per announce at 16 hosts, for peers that identify already put in the peer store and
 * the routing table when they connected (kad-dht's topology). A peer not connected passes on
 * as before, so holders beyond the neighbours are still found, dialled and routed to.
 */
export function dhtWithoutConnectedPeers<C, S> (factory: (components: C) => S): (components: C & QuietDiscoveryComponents) => S {
  return (components) => {
    const service = factory(components)
    // What this relies on of @libp2p/kad-dht (16.x): the service's `network` dispatches those events.
    const network = (service as { network?: Partial<EventTarget> }).network
    const dispatchEvent = network?.dispatchEvent
    if (network === undefined || typeof dispatchEvent !== 'function') return service
    network.dispatchEvent = (event: Event): boolean => {
      if (event.type === 'peer' && isConnected(components, (event as CustomEvent<PeerInfo | undefined>).detail)) return true
      return dispatchEvent.call(network, event)
    }
    return service
  }
}

function isConnected (components: QuietDiscoveryComponents, info: PeerInfo | undefined): boolean {
  return info?.id !== undefined && components.connectionManager.getConnections(info.id).length > 0
}

/** A DNS response as multicast-dns decodes it: TXT records' data are buffers (or strings). */
interface ResponsePacket { answers?: DnsRecord[], additionals?: DnsRecord[] }
interface DnsRecord { type?: string, data?: unknown }

/**
 * @libp2p/mdns reads each response in `_onMdnsResponse`, bound when the service is made and
 * subscribed when it starts: replaced here before either, it passes on only answers that name
 * someone not connected. Another service (or a version without the method) is left as it is.
 */
function responseFilter (service: PeerDiscovery, components: QuietDiscoveryComponents): void {
  const target = service as unknown as { _onMdnsResponse?: (response: ResponsePacket) => void }
  const read = target._onMdnsResponse
  if (typeof read !== 'function') return
  target._onMdnsResponse = (response: ResponsePacket): void => {
    if (namesOnlyConnected(components, response)) return
    read.call(service, response)
  }
}

/**
 * Whether every peer a response's `dnsaddr=` records name (the last `/p2p/` of each, as
 * @libp2p/mdns reads them) is connected, or ourselves (our own answers come back to us); false
 * for a response that names nobody, which the service then reads and drops itself.
 */
export function namesOnlyConnected (components: QuietDiscoveryComponents, response: ResponsePacket): boolean {
  const named = new Set<string>()
  for (const record of [...response.answers ?? [], ...response.additionals ?? []]) {
    if (record.type !== 'TXT') continue
    for (const item of Array.isArray(record.data) ? record.data : [record.data]) {
      const text = String(item)
      if (!text.startsWith('dnsaddr=')) continue
      const at = text.lastIndexOf('/p2p/')
      if (at < 0) return false
      named.add(text.slice(at + '/p2p/'.length))
    }
  }
  if (named.size === 0) return false
  const known = new Set(components.connectionManager.getConnections().map(c => c.remotePeer.toString()))
  const self = components.peerId?.toString()
  for (const id of named) if (id !== self && !known.has(id)) return false
  return true
}
