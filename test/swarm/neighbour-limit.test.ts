import { randomUUID } from 'node:crypto'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it, vi } from 'vitest'
import { createPeerKey, peerIdOfKey } from '../../src/swarm/index.js'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import type { ProviderRecords } from '../../src/swarm/providers.js'
import { connect, nextEvent, useSwarms } from './swarm-fixture.js'

/** What the swarm gave its provider records to connect to a peer an announce's DHT walk named. */
type WalkConnect = (peer: PeerId, options?: { signal?: AbortSignal }) => Promise<boolean>
/** The swarm's dial of a peer (discovery's, the walk's, a lookup's); resolves whether it is connected. */
type SwarmConnect = (peer: PeerId, options: object) => Promise<boolean>

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

  it('dials the peers mDNS finds while below it, and stops dialling there', async () => {
    // A service tag of our own: parallel test files and other daemons on this host never see these.
    const lan = { mdns: true, mdnsServiceTag: `_shoal-test-${randomUUID().slice(0, 8)}._udp.local`, mdnsIntervalMs: 500 }
    // The seeker's peer ID is the lowest: of two daemons that find each other the lower dials at
    // once and the other holds its find (quiet-discovery.ts), so the seeker's finds are not held.
    const keys = await Promise.all([0, 1, 2, 3].map(async () => await createPeerKey()))
    const [seekerKey, ...peerKeys] = keys.sort((a, b) => peerIdOfKey(a) < peerIdOfKey(b) ? -1 : 1)
    const seeker = await node({ ...lan, privateKey: seekerKey, maxNeighbours: 2 })
    const libp2p = (seeker.swarm as unknown as { node: ShoalNode }).node
    // The others answer the seeker's queries and dial nobody they find (a limit of 0): every
    // connection the seeker has is one its discovery dialled.
    const passive = async (key: typeof seekerKey): Promise<unknown> => await node({ ...lan, privateKey: key, maxNeighbours: 0 })
    const [first, second, third] = peerKeys.map(peerIdOfKey)

    const joined = [first, second].map(async peer => await nextEvent(seeker.swarm, 'neighbour:joined', e => e.peer === peer))
    await passive(peerKeys[0])
    await passive(peerKeys[1])
    await Promise.all(joined)
    const connections = (): string[] => libp2p.getConnections().map(c => `${c.remotePeer.toString()} ${c.direction}`).sort()
    expect(connections()).toEqual([`${first} outbound`, `${second} outbound`])

    // At the limit, a third found is not dialled: the swarm's connect for it resolves unconnected
    // without a dial (one it made would have been awaited before it resolves).
    const attempts = vi.spyOn(seeker.swarm as unknown as { connect: SwarmConnect }, 'connect')
    const dials = vi.spyOn(libp2p, 'dial')
    await passive(peerKeys[2])
    const attemptOnThird = (): Promise<boolean> | undefined => attempts.mock.results[attempts.mock.calls.findIndex(([peer]) => peer.toString() === third)]?.value
    await vi.waitFor(() => { expect(attemptOnThird()).toBeDefined() }, { timeout: 15_000, interval: 50 })
    expect(await attemptOnThird()).toBe(false)
    expect(dials).not.toHaveBeenCalled()
    expect(connections()).toEqual([`${first} outbound`, `${second} outbound`])
    vi.restoreAllMocks()
  })
})
