import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it, vi } from 'vitest'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import type { ProviderRecords } from '../../src/swarm/providers.js'
import { connect, useSwarms } from './swarm-fixture.js'

/** What the swarm gave its provider records to connect to a peer an announce's DHT walk named. */
type WalkConnect = (peer: PeerId, options?: { signal?: AbortSignal }) => Promise<boolean>

describe('the neighbour limit (Swarm.connect, withinLimit)', () => {
  const { node } = useSwarms()

  it('keeps discovery and an announce\'s DHT walk from dialling beyond it, and lets a pull\'s holder lookup dial past it', async () => {
    const holder = await node()
    const neighbour = await node()
    const seeker = await node({ maxNeighbours: 1 })
    await connect(seeker, neighbour)

    const libp2p = (seeker.swarm as unknown as { node: ShoalNode }).node
    const holderId = peerIdFromString(holder.swarm.peerId)
    const holderAddress = multiaddr(holder.address)
    const connectedToHolder = (): boolean => libp2p.getConnections(holderId).length > 0
    expect(libp2p.getPeers()).toHaveLength(1)
    expect(connectedToHolder()).toBe(false)

    // The DHT walk's connect: the holder's address is known, so only the limit keeps it from a dial.
    await libp2p.peerStore.merge(holderId, { multiaddrs: [holderAddress] })
    const providers = (seeker.swarm as unknown as { providers: ProviderRecords }).providers
    const walkConnect = (providers as unknown as { init: { connect: WalkConnect } }).init.connect
    expect(await walkConnect(holderId)).toBe(false)
    expect(connectedToHolder()).toBe(false)

    // Discovery (mDNS, bootstrap): the swarm's handler runs in the event's dispatch, and the
    // limit is judged before its first await, so a dial it would make has begun (its addresses
    // merged, then the dial) or never will.
    const merges = vi.spyOn(libp2p.peerStore, 'merge')
    const dials = vi.spyOn(libp2p, 'dial')
    libp2p.dispatchEvent(new CustomEvent('peer:discovery', { detail: { id: holderId, multiaddrs: [holderAddress] } }))
    expect(merges).not.toHaveBeenCalled()
    expect(dials).not.toHaveBeenCalled()
    vi.restoreAllMocks()

    // A pull's lookup of holders dials them whatever the limit. The DHT's answer is given: a
    // real lookup's own query may connect the holder before the swarm's dial (then that dial is
    // not made, and a broken limit would not show).
    vi.spyOn(providers, 'find').mockResolvedValue([{ id: holderId, multiaddrs: [holderAddress] }])
    expect(await seeker.swarm.findProviders('a-bundle')).toEqual([holder.swarm.peerId])
    expect(connectedToHolder()).toBe(true)
    expect(libp2p.getPeers()).toHaveLength(2)
    vi.restoreAllMocks()
  })
})
