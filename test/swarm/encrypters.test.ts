import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createPeerKey, generateSwarmKey } from '../../src/swarm/index.js'
import { createNode, type Encrypter, type ShoalNode } from '../../src/swarm/libp2p-node.js'

/**
 * Which encrypter two libp2p nodes built as a daemon builds them settle on, over real TCP on
 * loopback: noise between daemons, TLS 1.3 with a peer that offers only TLS, both under the
 * swarm key's layer.
 */
describe('connection encrypters', () => {
  const nodes: ShoalNode[] = []
  // Each encrypter's module is loaded on a node's first handshake that uses it (lazy-encrypter.ts,
  // tested there), inside libp2p's upgrade deadlines (5 s inbound, 6 s per address out). Loading
  // @libp2p/tls alone took 1.0-1.8 s at load 12, and with six busy loops beside this file the
  // first TLS dial failed twice in six runs ("Handshake timeout", ECONNRESET): the load of the
  // module, not the negotiation these tests are about. Loaded here first, outside any deadline.
  beforeAll(async () => {
    await Promise.all([import('@libp2p/tls'), import('@chainsafe/libp2p-noise')])
  })
  afterEach(async () => {
    for (const node of nodes.splice(0)) await node.stop()
  })

  async function start (init: { encrypters?: Encrypter[], swarmKey?: Uint8Array } = {}): Promise<ShoalNode> {
    const node = await createNode({ privateKey: await createPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, gater: {}, ...init })
    nodes.push(node)
    await node.start()
    return node
  }

  async function connect (from: ShoalNode, to: ShoalNode): Promise<string | undefined> {
    const address = to.getMultiaddrs()[0]
    if (address === undefined) throw new Error('the listener has no address')
    const connection = await from.dial(multiaddr(address.toString()), { signal: AbortSignal.timeout(10_000) })
    expect(connection.remotePeer.equals(to.peerId)).toBe(true)
    return connection.encryption
  }

  it('speaks noise between two daemons', async () => {
    expect(await connect(await start(), await start())).toBe('/noise')
  })

  it('speaks TLS 1.3 with a peer that offers only TLS, either way round', async () => {
    const daemon = await start()
    const tlsOnly = await start({ encrypters: ['tls'] })
    expect(await connect(daemon, tlsOnly)).toBe('/tls/1.0.0')
    const other = await start()
    expect(await connect(await start({ encrypters: ['tls'] }), other)).toBe('/tls/1.0.0')
  })

  it('runs TLS inside the swarm key, and a node without the key does not get in', async () => {
    const key = generateSwarmKey()
    const listener = await start({ swarmKey: key, encrypters: ['tls'] })
    expect(await connect(await start({ swarmKey: key }), listener)).toBe('/tls/1.0.0')
    await expect(connect(await start(), listener)).rejects.toThrow()
    expect(listener.getConnections().length).toBe(1)
  })
})
