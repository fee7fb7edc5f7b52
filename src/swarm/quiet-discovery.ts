import type { PeerDiscovery, PeerId, PeerInfo } from '@libp2p/interface'

/** What the filter needs of libp2p's components: who is connected now, and who we are. */
export interface QuietDiscoveryComponents {
  connectionManager: { getConnections: (peerId?: PeerId) => Array<{ remotePeer: { toString: () => string } }> }
  peerId?: { toString: () => string }
}

/**
 * A discovery service whose finds of peers already connected are dropped before libp2p sees
 * them.
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
export function withoutConnectedPeers<C> (factory: (components: C) => PeerDiscovery): (components: C & QuietDiscoveryComponents) => PeerDiscovery {
  return (components) => {
    const service = factory(components)
    const dispatch = service.dispatchEvent.bind(service)
    service.dispatchEvent = (event: Event): boolean => {
      if (event.type === 'peer' && isConnected(components, (event as CustomEvent<PeerInfo>).detail)) return true
      return dispatch(event)
    }
    responseFilter(service, components)
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
