import type { ShoalNode } from './libp2p-node.js'
import type { PeerId } from '@libp2p/interface'
import type { CID } from 'multiformats/cid'

/**
 * Whether a DHT announce could tell anyone something new (providers.ts).
 *
 * A provider record tells a node where a bundle is; a connected neighbour that pulls the bundle
 * learns that from our have-list, and a record at a neighbour serves the nodes *it* neighbours
 * that we do not. So records are worth sending when some DHT node is not our neighbour: a peer
 * of our routing table with no connection to us (one whose connection closed since it entered:
 * kad-dht pings a new contact before it enters the table, a dial whose connection stays), or a
 * peer that a neighbour names when asked for the peers closest to the bundle's key.
 */
export interface DhtReach {
  /** Whether the routing table names a peer with no connection to us. */
  beyondNeighbours: () => boolean
  /**
   * Asks the DHT for the peers closest to `cid` (the first half of an announce: FIND_NODE, no
   * records sent) and tells whether an answer named as many peers as an answer holds (K: the
   * answerer may know more than it said), or named a peer we have no connection to once the walk
   * is over and `connect` (DhtReachInit) could not make one. The walk dials the named peers closer
   * to the key than their namer (the connection stays); `connect` tries the others. A peer
   * connected is a neighbour, which our have-list tells: on the 16-host bed, where pulls began
   * while mDNS still joined the mesh, a walk that stopped at the first answer naming a peer not
   * yet connected sent records from 6 to 14 of the 15 edges, to peers all connected seconds later.
   */
  walkFindsBeyond: (cid: CID, options?: { signal?: AbortSignal }) => Promise<boolean>
  /**
   * Records us as a holder in our own provider store only: a lookup that reaches us is answered
   * with us (kad-dht's provide adds the same record first). kad-dht answers with the addresses
   * the peer store holds for a provider and leaves out one with none, and libp2p keeps none for
   * ourselves: ours are written there too.
   */
  provideLocally: (cid: CID, options?: { signal?: AbortSignal }) => Promise<void>
}

/** What this relies on of @libp2p/kad-dht (16.x): its routing table's k-bucket tree, and its provider store. */
interface KadInternals {
  routingTable?: { kb?: { toIterable?: () => Iterable<{ peerId: PeerId }> } }
  providers?: { addProvider?: (cid: CID, provider: PeerId, options?: { signal?: AbortSignal }) => Promise<void> }
}

export interface DhtReachInit {
  /**
   * Connects to a peer a walk named and did not reach (within the node's neighbour limit, not
   * banned); resolves whether it is connected. Without it such a peer is beyond the neighbours.
   */
  connect?: (peer: PeerId, options?: { signal?: AbortSignal }) => Promise<boolean>
}

/** The node's DHT reach, or undefined where kad-dht is not the version this reads (then every announce is a query, as before). */
export function dhtReach (node: ShoalNode, init: DhtReachInit = {}): DhtReach | undefined {
  const dht = node.services.dht
  const { routingTable: table, providers } = dht as unknown as KadInternals
  const addProvider = providers?.addProvider
  if (typeof table?.kb?.toIterable !== 'function' || typeof addProvider !== 'function') return undefined
  const unconnected = (peer: PeerId): boolean => !peer.equals(node.peerId) && node.getConnections(peer).length === 0
  return {
    beyondNeighbours: () => {
      for (const contact of table.kb?.toIterable?.() ?? []) if (unconnected(contact.peerId)) return true
      return false
    },
    walkFindsBeyond: async (cid, options) => {
      const named = new Map<string, PeerId>()
      for await (const event of dht.getClosestPeers(cid.multihash.bytes, options)) {
        if (event.name !== 'PEER_RESPONSE') continue
        if (event.closer.length >= dht.k) return true
        for (const peer of event.closer) named.set(peer.id.toString(), peer.id)
      }
      const missing = [...named.values()].filter(unconnected)
      const { connect } = init
      if (missing.length === 0 || connect === undefined) return missing.length > 0
      const connected = await Promise.all(missing.map(async peer => await connect(peer, options).catch(() => false)))
      return connected.includes(false)
    },
    provideLocally: async (cid, options) => {
      await node.peerStore.merge(node.peerId, { multiaddrs: node.getMultiaddrs() }, options)
      await addProvider.call(providers, cid, node.peerId, options)
    },
  }
}
