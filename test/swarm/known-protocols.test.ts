import { describe, expect, it } from 'vitest'
import { TypedEventEmitter } from 'main-event'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createPeerKey } from '../../src/swarm/index.js'
import { KNOWN_PROTOCOLS_REWRITE_MS, skipKnownProtocolMerges } from '../../src/swarm/known-protocols.js'
import type { Libp2pEvents, Peer, PeerData, PeerId, PeerStore } from '@libp2p/interface'

/** A peer store that keeps protocols and counts the merges that reach it. */
class CountingStore {
  readonly merges: PeerData[] = []
  private readonly protocols = new Map<string, Set<string>>()
  async merge (id: PeerId, data: PeerData): Promise<Peer> {
    this.merges.push(data)
    const set = this.protocols.get(id.toString()) ?? new Set<string>()
    for (const p of data.protocols ?? []) set.add(p)
    this.protocols.set(id.toString(), set)
    return { id, protocols: [...set], addresses: [], metadata: new Map(), tags: new Map() }
  }
}

async function fixture (): Promise<{ store: CountingStore, events: TypedEventEmitter<Libp2pEvents>, peer: PeerId, connected: Set<string>, clock: { now: number }, peerStore: PeerStore }> {
  const store = new CountingStore()
  const events = new TypedEventEmitter<Libp2pEvents>()
  const peer = peerIdFromPrivateKey(await createPeerKey())
  const connected = new Set([peer.toString()])
  const clock = { now: 1_000_000 }
  const node = {
    peerStore: store as unknown as PeerStore,
    addEventListener: events.addEventListener.bind(events),
    getConnections: (id?: PeerId) => connected.has(id?.toString() ?? '') ? [{}] : [],
  }
  skipKnownProtocolMerges(node as unknown as Parameters<typeof skipKnownProtocolMerges>[0], () => clock.now)
  return { store, events, peer, connected, clock, peerStore: node.peerStore }
}

describe('peer-store merges of protocols already known', () => {
  it('writes a stream\'s protocol once per connected peer, and every new protocol and every other field', async () => {
    const { store, peer, peerStore } = await fixture()
    await peerStore.merge(peer, { protocols: ['/a'] })
    await peerStore.merge(peer, { protocols: ['/a'] })
    await peerStore.merge(peer, { protocols: ['/a'] })
    expect(store.merges).toHaveLength(1)
    const answered = await peerStore.merge(peer, { protocols: ['/a'] })
    expect(answered.protocols).toEqual(['/a'])
    await peerStore.merge(peer, { protocols: ['/b'] })
    await peerStore.merge(peer, { protocols: ['/a'], tags: { t: { value: 1 } } })
    await peerStore.merge(peer, { multiaddrs: [] })
    expect(store.merges.map(m => Object.keys(m).join(','))).toEqual(['protocols', 'protocols', 'protocols,tags', 'multiaddrs'])
    // Both now known: neither is written again.
    await peerStore.merge(peer, { protocols: ['/b'] })
    await peerStore.merge(peer, { protocols: ['/a'] })
    expect(store.merges).toHaveLength(4)
  })

  it('writes again once the record is old, and for a peer that disconnected', async () => {
    const { store, events, peer, connected, clock, peerStore } = await fixture()
    await peerStore.merge(peer, { protocols: ['/a'] })
    clock.now += KNOWN_PROTOCOLS_REWRITE_MS
    await peerStore.merge(peer, { protocols: ['/a'] })
    expect(store.merges).toHaveLength(2)
    connected.delete(peer.toString())
    events.safeDispatchEvent('peer:disconnect', { detail: peer })
    await peerStore.merge(peer, { protocols: ['/a'] })
    await peerStore.merge(peer, { protocols: ['/a'] })
    expect(store.merges).toHaveLength(4)
  })

  it('takes what other writes announce: a protocol identify recorded is not written again', async () => {
    const { store, events, peer, peerStore } = await fixture()
    events.safeDispatchEvent('peer:update', { detail: { peer: { id: peer, protocols: ['/id', '/a'], addresses: [], metadata: new Map(), tags: new Map() } } })
    await peerStore.merge(peer, { protocols: ['/a'] })
    expect(store.merges).toHaveLength(0)
  })
})
