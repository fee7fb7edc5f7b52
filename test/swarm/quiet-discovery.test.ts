import { describe, expect, it } from 'vitest'
import { TypedEventEmitter } from 'main-event'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createPeerKey } from '../../src/swarm/index.js'
import { withoutConnectedPeers } from '../../src/swarm/quiet-discovery.js'
import type { PeerDiscovery, PeerDiscoveryEvents, PeerId, PeerInfo } from '@libp2p/interface'

class Finder extends TypedEventEmitter<PeerDiscoveryEvents> {
  found (id: PeerId): void { this.safeDispatchEvent('peer', { detail: { id, multiaddrs: [] } }) }
}

describe('discovery without the neighbours already connected', () => {
  it('passes on finds of peers not connected and drops finds of connected ones', async () => {
    const connected = peerIdFromPrivateKey(await createPeerKey())
    const stranger = peerIdFromPrivateKey(await createPeerKey())
    const finder = new Finder()
    const components = { connectionManager: { getConnections: (id?: PeerId) => id?.equals(connected) === true ? [{}] : [] } }
    const service = withoutConnectedPeers(() => finder as unknown as PeerDiscovery)(components)
    const seen: PeerInfo[] = []
    service.addEventListener('peer', (evt) => { seen.push(evt.detail) })
    finder.found(connected)
    finder.found(stranger)
    finder.found(connected)
    expect(seen.map(p => p.id.toString())).toEqual([stranger.toString()])
  })
})
