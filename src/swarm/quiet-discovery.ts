import type { PeerDiscovery, PeerId, PeerInfo } from '@libp2p/interface'

/** What the filter needs of libp2p's components: whether a peer is connected now. */
export interface QuietDiscoveryComponents {
  connectionManager: { getConnections: (peerId?: PeerId) => unknown[] }
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
 */
export function withoutConnectedPeers<C> (factory: (components: C) => PeerDiscovery): (components: C & QuietDiscoveryComponents) => PeerDiscovery {
  return (components) => {
    const service = factory(components)
    const dispatch = service.dispatchEvent.bind(service)
    service.dispatchEvent = (event: Event): boolean => {
      if (event.type === 'peer' && isConnected(components, (event as CustomEvent<PeerInfo>).detail)) return true
      return dispatch(event)
    }
    return service
  }
}

function isConnected (components: QuietDiscoveryComponents, info: PeerInfo | undefined): boolean {
  return info?.id !== undefined && components.connectionManager.getConnections(info.id).length > 0
}
