import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterEach, describe, expect, it } from 'vitest'
import { createPeerKey } from '../../src/swarm/index.js'
import { lazyEncrypter } from '../../src/swarm/lazy-encrypter.js'

/**
 * A daemon offers two encrypters and loads each on its first handshake (src/swarm/lazy-encrypter.ts):
 * real libp2p nodes over TCP on loopback, with a loader that counts its calls.
 */
describe('lazy connection encrypter', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.stop()
  })

  async function start (protocol: string, loaded: { count: number }): Promise<Libp2p> {
    const node = await createLibp2p({
      privateKey: await createPeerKey(),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [lazyEncrypter(protocol, async () => {
        loaded.count++
        return noise()
      })],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
    })
    nodes.push(node)
    return node
  }

  it('loads the implementation at the first handshake, once, and speaks it', async () => {
    const listenerLoads = { count: 0 }
    const dialerLoads = { count: 0 }
    const listener = await start('/noise', listenerLoads)
    const dialer = await start('/noise', dialerLoads)
    expect([listenerLoads.count, dialerLoads.count]).toEqual([0, 0])
    const address = multiaddr(listener.getMultiaddrs()[0]!.toString())
    const connection = await dialer.dial(address, { signal: AbortSignal.timeout(10_000) })
    expect(connection.encryption).toBe('/noise')
    expect(connection.remotePeer.equals(listener.peerId)).toBe(true)
    await connection.close()
    const again = await dialer.dial(address, { signal: AbortSignal.timeout(10_000) })
    expect(again.remotePeer.equals(listener.peerId)).toBe(true)
    expect([listenerLoads.count, dialerLoads.count]).toEqual([1, 1])
  })

  it('refuses a loaded implementation that speaks another protocol than the one offered', async () => {
    const listener = await start('/noise', { count: 0 })
    // A packaging mistake (the wrong module behind a name): the handshake fails and says why.
    const wrong = await createLibp2p({
      privateKey: await createPeerKey(),
      transports: [tcp()],
      connectionEncrypters: [lazyEncrypter('/noise', async () => () => ({
        protocol: '/other',
        secureInbound: async () => { throw new Error('not reached') },
        secureOutbound: async () => { throw new Error('not reached') },
      }))],
      streamMuxers: [yamux()],
      connectionMonitor: { enabled: false },
    })
    nodes.push(wrong)
    const address = multiaddr(listener.getMultiaddrs()[0]!.toString())
    await expect(wrong.dial(address, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow(/speaks \/other/)
  })
})
