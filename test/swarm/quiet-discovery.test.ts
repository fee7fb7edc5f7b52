import { pEvent } from 'p-event'
import { randomBytes } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'
import { TypedEventEmitter } from 'main-event'
import { mdns } from '@libp2p/mdns'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createPeerKey } from '../../src/swarm/index.js'
import { libp2pLogger } from '../../src/swarm/libp2p-logger.js'
import { namesOnlyConnected, withoutConnectedPeers } from '../../src/swarm/quiet-discovery.js'
import { useBareNodes } from './bare-nodes.js'
import type { PeerDiscovery, PeerDiscoveryEvents, PeerId, PeerInfo } from '@libp2p/interface'

class Finder extends TypedEventEmitter<PeerDiscoveryEvents> {
  readonly read: unknown[] = []
  found (id: PeerId): void { this.safeDispatchEvent('peer', { detail: { id, multiaddrs: [] } }) }
  /** As @libp2p/mdns names its response reader. */
  _onMdnsResponse (response: unknown): void { this.read.push(response) }
}

/** A response as multicast-dns decodes @libp2p/mdns's answer: a PTR and a TXT per address, data as buffers. */
function answer (...ids: string[]): { answers: Array<{ type: string, data: unknown }>, additionals: never[] } {
  return {
    answers: [
      { type: 'PTR', data: 'name._shoal._udp.local' },
      ...ids.map(id => ({ type: 'TXT', data: [Buffer.from(`dnsaddr=/ip4/10.0.0.2/tcp/4001/p2p/${id}`)] })),
    ],
    additionals: [],
  }
}

async function peers (): Promise<{ connected: PeerId, stranger: PeerId, self: PeerId }> {
  const [connected, stranger, self] = await Promise.all([0, 1, 2].map(async () => peerIdFromPrivateKey(await createPeerKey())))
  return { connected: connected!, stranger: stranger!, self: self! }
}

function componentsWith (connected: PeerId, self?: PeerId): { connectionManager: { getConnections: (id?: PeerId) => Array<{ remotePeer: PeerId }> }, peerId?: PeerId } {
  return {
    connectionManager: { getConnections: (id?: PeerId) => id === undefined || id.equals(connected) ? [{ remotePeer: connected }] : [] },
    ...(self === undefined ? {} : { peerId: self }),
  }
}

describe('discovery without the neighbours already connected', () => {
  it('passes on finds of peers not connected and drops finds of connected ones', async () => {
    const { connected, stranger } = await peers()
    const finder = new Finder()
    const service = withoutConnectedPeers(() => finder as unknown as PeerDiscovery)(componentsWith(connected))
    const seen: PeerInfo[] = []
    service.addEventListener('peer', (evt) => { seen.push(evt.detail) })
    finder.found(connected)
    finder.found(stranger)
    finder.found(connected)
    expect(seen.map(p => p.id.toString())).toEqual([stranger.toString()])
  })

  it('leaves unread an mDNS answer that names only connected peers or ourselves', async () => {
    const { connected, stranger, self } = await peers()
    const finder = new Finder()
    withoutConnectedPeers(() => finder as unknown as PeerDiscovery)(componentsWith(connected, self))
    const reader = finder as unknown as { _onMdnsResponse: (response: unknown) => void }
    const answers = [answer(connected.toString()), answer(self.toString()), answer(stranger.toString()), answer(connected.toString(), stranger.toString()), answer()]
    for (const response of answers) reader._onMdnsResponse(response)
    // Read: a stranger's, one naming a stranger beside a neighbour, and one naming nobody (the service drops that itself).
    expect(finder.read).toEqual([answers[2], answers[3], answers[4]])
    expect(namesOnlyConnected(componentsWith(connected), { answers: [{ type: 'TXT', data: 'dnsaddr=/ip4/10.0.0.2/tcp/4001' }] })).toBe(false)
  })

  it('holds a find of a peer with a lower ID, which dials us, and passes it on after the wait only if no connection came', async () => {
    const ids = await Promise.all([0, 1, 2, 3].map(async () => peerIdFromPrivateKey(await createPeerKey())))
    const [lower, other, self, higher] = ids.sort((x, y) => x.toString() < y.toString() ? -1 : 1) as [PeerId, PeerId, PeerId, PeerId]
    const finder = new Finder()
    const connected = new Set<string>()
    const components = {
      connectionManager: { getConnections: (id?: PeerId) => id !== undefined && connected.has(id.toString()) ? [{ remotePeer: id }] : [] },
      peerId: self,
    }
    const service = withoutConnectedPeers(() => finder as unknown as PeerDiscovery, { dialWaitMs: 100 })(components)
    const seen: string[] = []
    const passed = new TypedEventEmitter<{ seen: CustomEvent<string> }>()
    service.addEventListener('peer', (evt) => { seen.push(evt.detail.id.toString()); passed.safeDispatchEvent('seen', { detail: evt.detail.id.toString() }) })

    finder.found(higher)
    expect(seen).toEqual([higher.toString()])
    finder.found(lower)
    finder.found(other)
    finder.found(lower)
    expect(seen).toEqual([higher.toString()])
    // `lower` dials us meanwhile; `other` does not, so we dial it once the wait is over.
    connected.add(lower.toString())
    const next = await pEvent(passed, 'seen', { timeout: 5_000 })
    expect(next.detail).toBe(other.toString())
    await (service as unknown as { stop: () => Promise<void> }).stop()
    expect(seen).toEqual([higher.toString(), other.toString()])
  })

  it('finds @libp2p/mdns\'s response reader to replace', () => {
    const components = { logger: libp2pLogger({}), connectionManager: { getConnections: () => [] } }
    const plain = mdns()(components as never) as unknown as { _onMdnsResponse: unknown }
    const quiet = withoutConnectedPeers(mdns())(components as never) as unknown as { _onMdnsResponse: unknown }
    expect(typeof plain._onMdnsResponse).toBe('function')
    expect(typeof quiet._onMdnsResponse).toBe('function')
    expect((quiet._onMdnsResponse as () => void).name).not.toBe((plain._onMdnsResponse as () => void).name)
  })
})

describe('the DHT without the neighbours already connected', () => {
  const { start } = useBareNodes()

  it('passes on the peers a DHT answer names that are not connected, and drops the connected ones', async () => {
    const [a, b, c, d] = await Promise.all([start(), start(), start(), start()])
    // b neighbours everyone; a neighbours b and c, and knows d only from b's answers.
    for (const other of [a, c, d]) await b.dial(other.getMultiaddrs()[0]!)
    await a.dial(c.getMultiaddrs()[0]!)
    const named = new Set<string>()
    // The DHT is a discovery service of libp2p's: its 'peer' events are what libp2p merges and shoal dials.
    ;(a.services.dht as unknown as PeerDiscovery).addEventListener('peer', (evt) => { named.add(evt.detail.id.toString()) })
    await vi.waitFor(async () => {
      for await (const event of a.services.dht.getClosestPeers(randomBytes(32), { signal: AbortSignal.timeout(5_000) })) void event
      expect(named).toContain(d.peerId.toString())
    }, { timeout: 20_000, interval: 200 })
    expect(named).not.toContain(b.peerId.toString())
    expect(named).not.toContain(c.peerId.toString())
  }, 30_000)
})
