import { randomUUID } from 'node:crypto'
import { createServer, type Socket } from 'node:net'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it, vi } from 'vitest'
import { createPeerKey, generateSwarmKey, peerIdOfKey } from '../../src/swarm/index.js'
import type { ShoalNode } from '../../src/swarm/libp2p-node.js'
import type { ProviderRecords } from '../../src/swarm/providers.js'
import { connect, nextEvent, patternBytes, seed, useSwarms } from './swarm-fixture.js'

const MiB = 1024 * 1024

describe('swarm discovery and admission', () => {
  const { node, tempDir } = useSwarms()

  it('lets nodes with the same swarm key connect and refuses nodes without it or with another', async () => {
    const key = generateSwarmKey()
    const a = await node({ swarmKey: key })
    const b = await node({ swarmKey: key })
    const stranger = await node()
    const other = await node({ swarmKey: generateSwarmKey() })

    await connect(a, b)
    await expect(stranger.swarm.dial(a.address)).rejects.toThrow()
    await expect(a.swarm.dial(stranger.address)).rejects.toThrow()
    await expect(other.swarm.dial(a.address)).rejects.toThrow()
    expect(a.swarm.peers().filter(p => p.connected).map(p => p.id)).toEqual([b.swarm.peerId])
  })

  it('speaks @libp2p/pnet (XSalsa20) when asked, which the default AES cipher does not understand', async () => {
    const key = generateSwarmKey()
    const a = await node({ swarmKey: key, pnetCipher: 'xsalsa20' })
    const b = await node({ swarmKey: key, pnetCipher: 'xsalsa20' })
    const aes = await node({ swarmKey: key })
    await connect(a, b)
    await expect(aes.swarm.dial(a.address)).rejects.toThrow()
  })

  it('moves a bundle inside a closed fleet', async () => {
    const key = generateSwarmKey()
    const a = await node({ swarmKey: key })
    const b = await node({ swarmKey: key })
    const id = await seed(a, await tempDir(), { 'f.bin': patternBytes(3 * MiB, 21) })
    await connect(a, b)
    await b.swarm.pull(id)
    expect((await b.store.objectState((await b.store.getBundle(id))?.entries.find(e => e.type === 'F')?.checksum ?? '')).state).toBe('complete')
  })

  it('finds a neighbour on the LAN with mDNS alone', async () => {
    // A tag of our own, so parallel test files and other fleets on this host stay apart.
    const mdnsServiceTag = `_shoal-test-${randomUUID().slice(0, 8)}._udp.local`
    const a = await node({ mdns: true, mdnsServiceTag, mdnsIntervalMs: 500 })
    const joined = nextEvent(a.swarm, 'neighbour:joined')
    const b = await node({ mdns: true, mdnsServiceTag, mdnsIntervalMs: 500 })
    expect((await joined).peer).toBe(b.swarm.peerId)
  })

  it('holds one connection per pair when daemons find each other on the LAN at once', async () => {
    const mdnsServiceTag = `_shoal-test-${randomUUID().slice(0, 8)}._udp.local`
    const nodes = [await node({ mdns: true, mdnsServiceTag, mdnsIntervalMs: 500 })]
    for (let i = 0; i < 3; i++) {
      // Each new daemon's query at start reaches the others in the same moment its answer does: both ends find each other.
      const joined = nodes.map(n => nextEvent(n.swarm, 'neighbour:joined'))
      nodes.push(await node({ mdns: true, mdnsServiceTag, mdnsIntervalMs: 500 }))
      await Promise.all(joined)
    }
    await vi.waitFor(() => {
      for (const n of nodes) expect(n.swarm.peers().filter(p => p.connected)).toHaveLength(3)
    }, { timeout: 15_000, interval: 50 })
    for (const n of nodes) {
      // One connection to each of the three, from whichever end dialled (a peer's addresses are its connections').
      expect(n.swarm.peers().filter(p => p.connected).map(p => p.addresses.length)).toEqual([1, 1, 1])
    }
  })

  it('finds a holder two hops away through the DHT', async () => {
    const holder = await node()
    const middle = await node()
    // One neighbour at most: the seeker must not stumble on the holder by dialing every peer
    // the DHT's routing traffic reveals; only the provider record may lead it there.
    const seeker = await node({ maxNeighbours: 1 })
    const id = await seed(holder, await tempDir(), { 'f.bin': patternBytes(2 * MiB, 22) })
    await connect(middle, holder)
    // The holder announces as soon as it has a neighbour; this waits for that record.
    await holder.swarm.announce(id)
    await connect(seeker, middle)

    await seeker.swarm.pull(id, { signal: AbortSignal.timeout(30_000) })

    expect(seeker.swarm.peers().find(p => p.id === holder.swarm.peerId)?.connected).toBe(true)
    expect(seeker.swarm.stats().perPeer[holder.swarm.peerId]?.chunksDownloaded).toBe(2)
  })

  it('finds a connected holder in the DHT without dialling it or writing its addresses again', async () => {
    const holder = await node()
    const seeker = await node()
    const id = await seed(holder, await tempDir(), { 'f.bin': patternBytes(1 * MiB, 25) })
    await connect(seeker, holder)
    // Neighbours only: the record stays in the holder's own store, where the seeker's lookup reaches it.
    await holder.swarm.announce(id)
    const libp2p = (seeker.swarm as unknown as { node: ShoalNode }).node
    const merges = vi.spyOn(libp2p.peerStore, 'merge')
    const dials = vi.spyOn(libp2p, 'dial')

    expect(await seeker.swarm.findProviders(id)).toEqual([holder.swarm.peerId])

    // Its addresses are not written again (the lookup's stream still records the DHT protocol, once).
    expect(merges.mock.calls.filter(([peer, data]) => peer.toString() === holder.swarm.peerId && data.multiaddrs !== undefined)).toEqual([])
    expect(dials).not.toHaveBeenCalled()
  })

  it('gives up dialling the holders a lookup found when its caller does, and says nothing of it', async () => {
    const seeker = await node()
    const warnings: string[] = []
    seeker.swarm.on('warning', ({ message }) => { warnings.push(message) })
    const holder = peerIdOfKey(await createPeerKey())
    // The holder's port takes the connection and never answers: the dial waits in its handshake.
    const sockets: Socket[] = []
    const silent = createServer(socket => { sockets.push(socket) })
    await new Promise<void>(resolve => { silent.listen(0, '127.0.0.1', resolve) })
    try {
      const port = (silent.address() as { port: number }).port
      const holderId = peerIdFromString(holder)
      const providers = (seeker.swarm as unknown as { providers: ProviderRecords }).providers
      vi.spyOn(providers, 'find').mockResolvedValue([{ id: holderId, multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${port}`)] }])
      const dials = vi.spyOn((seeker.swarm as unknown as { node: ShoalNode }).node, 'dial')
      const arrived = new Promise(resolve => { silent.once('connection', resolve) })

      const lookup = new AbortController()
      const finding = seeker.swarm.findProviders('a-bundle', { signal: lookup.signal })
      await arrived
      lookup.abort()
      expect(dials.mock.calls[0]?.[1]?.signal?.aborted).toBe(true)
      expect(await finding).toEqual([holder])
      expect(seeker.swarm.peers().find(p => p.id === holder)?.connected ?? false).toBe(false)
      expect(warnings).toEqual([])
    } finally {
      vi.restoreAllMocks()
      for (const socket of sockets) socket.destroy()
      await new Promise(resolve => { silent.close(resolve) })
    }
  })

  it('looks up holders in the DHT when a pull starts with neighbours that lack some chunks', async () => {
    const holder = await node()
    const middle = await node()
    const seeker = await node({ maxNeighbours: 1 })
    const id = await seed(holder, await tempDir(), { 'f.bin': patternBytes(2 * MiB, 23) })
    // The seeker holds the manifest already, so only the pull's own search can find the holder.
    await seeker.store.addBundle(await holder.store.getEncodedBundle(id) as Uint8Array, { expectedId: id })
    await connect(middle, holder)
    await holder.swarm.announce(id)
    await connect(seeker, middle)

    await seeker.swarm.pull(id, { signal: AbortSignal.timeout(30_000) })

    expect(seeker.swarm.stats().perPeer[holder.swarm.peerId]?.chunksDownloaded).toBe(2)
  })

  it('does not walk the DHT again for a neighbour that joins mid-pull while its neighbours feed the pull', async () => {
    const gateway = await node({ gateway: true })
    // Slow enough that the late join's re-announce runs come while the pull still runs.
    const edge = await node({ maxDownloadBytesPerSecond: 256 * 1024, reprovide: { delayMs: 0, minIntervalMs: 200 } })
    const id = await seed(gateway, await tempDir(), { 'f.bin': patternBytes(4 * MiB, 26) })
    const providers = (edge.swarm as unknown as { providers: ProviderRecords }).providers
    const announces = vi.spyOn(providers, 'announce')
    const runs = vi.spyOn(providers as unknown as { reprovide: () => Promise<void> }, 'reprovide')
    await connect(edge, gateway)
    // The gateway's join runs first (nothing local yet), so it cannot race the pull's own announce.
    await vi.waitFor(() => { expect(runs).toHaveBeenCalledTimes(1) }, { timeout: 15_000, interval: 20 })
    const pull = new AbortController()
    const pulling = edge.swarm.pull(id, { signal: pull.signal }).catch(() => {})
    try {
      // Its own announce as the manifest arrives, and chunks coming from the gateway.
      await nextEvent(edge.swarm, 'pull:progress', p => p.bundleId === id && p.presentChunks > 0)
      await vi.waitFor(() => { expect(announces).toHaveBeenCalledTimes(1) }, { timeout: 15_000, interval: 20 })
      // A neighbour joins after that announce: its run comes at once, and again while the pull waits.
      await connect(edge, await node())
      await vi.waitFor(() => { expect(runs.mock.calls.length).toBeGreaterThanOrEqual(3) }, { timeout: 15_000, interval: 20 })
      expect(announces).toHaveBeenCalledTimes(1)
    } finally {
      pull.abort()
      await pulling
    }
  })

  it('asks the DHT nothing at a pull\'s start when its neighbours hold every chunk', async () => {
    const gateway = await node({ gateway: true })
    const skipped: unknown[] = []
    const logged = { debug: (msg: string, fields?: Record<string, unknown>) => { if (msg.startsWith('no DHT search')) skipped.push(fields) }, info () {}, warn () {}, error () {} }
    // Slow enough that the start search's wait ends while the pull still runs.
    const edge = await node({ logger: logged, maxDownloadBytesPerSecond: 256 * 1024 })
    const id = await seed(gateway, await tempDir(), { 'f.bin': patternBytes(4 * MiB, 24) })
    await connect(edge, gateway)
    const lookups = vi.spyOn(edge.swarm, 'findProviders')
    const pull = new AbortController()
    const pulling = edge.swarm.pull(id, { signal: pull.signal }).catch(() => {})
    try {
      await vi.waitFor(() => { expect(skipped).toHaveLength(1) }, { timeout: 15_000, interval: 50 })
      expect(lookups).not.toHaveBeenCalled()
    } finally {
      pull.abort()
      await pulling
    }
  })
})
