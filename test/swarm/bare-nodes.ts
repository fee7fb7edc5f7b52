import type { Server, Socket } from 'node:net'
import { afterEach } from 'vitest'
import { createPeerKey } from '../../src/swarm/index.js'
import { createNode, type NodeInit, type ShoalNode } from '../../src/swarm/libp2p-node.js'

/**
 * Transport tests' fixture: libp2p nodes as the daemons build them (no swarm above), and the raw
 * sockets and servers a test puts beside them, all closed after each test.
 */
export function useBareNodes (): { start: (init?: Partial<NodeInit>) => Promise<ShoalNode>, servers: Server[], sockets: Socket[] } {
  const nodes: ShoalNode[] = []
  const servers: Server[] = []
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy()
    for (const server of servers.splice(0)) await new Promise(resolve => server.close(resolve))
    for (const node of nodes.splice(0)) await node.stop()
  })
  const start = async (init: Partial<NodeInit> = {}): Promise<ShoalNode> => {
    const node = await createNode({ privateKey: await createPeerKey(), listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, gater: {}, ...init })
    nodes.push(node)
    await node.start()
    return node
  }
  return { start, servers, sockets }
}

/** The TCP port a started node listens on (its first address). */
export function tcpPortOf (node: ShoalNode): number {
  return Number(node.getMultiaddrs()[0]?.toString().split('/')[4])
}
