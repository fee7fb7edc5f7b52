import type { Libp2p, Peer, PeerData, PeerId, PeerStore } from '@libp2p/interface'

/**
 * How long a connected peer's record may go without a real write. libp2p forgets a peer whose
 * record was last written 6 h ago and whose addresses were last seen 1 h ago; the merges let
 * through here keep it written far more often than that.
 */
export const KNOWN_PROTOCOLS_REWRITE_MS = 10 * 60_000

/**
 * libp2p writes the protocol of every stream it opens or accepts into its peer store, on both
 * ends (`peerStore.merge(peer, { protocols: [protocol] })` in its Connection, before the stream is
 * handed over): a lock, the peer's record read, decoded, merged, encoded, compared and stored, and
 * two queue timers — ~5 times a second per idle daemon on the 16-host fleet bed, 4.4 per pulling
 * edge on the 8-host one (~4.5% of its busy main thread). Nearly every one names a protocol the
 * record already holds. Here such a merge for a connected peer is answered from the record libp2p
 * last returned or announced (`peer:update`), without the write, unless that record is older
 * than KNOWN_PROTOCOLS_REWRITE_MS; a merge that adds a protocol, or sets anything else, goes
 * through as before. libp2p has no setting for this: its peer store's `merge` is wrapped (the
 * Connection calls the same object, `components.peerStore`).
 */
export function skipKnownProtocolMerges (node: Pick<Libp2p, 'peerStore' | 'addEventListener' | 'getConnections'>, now: () => number = Date.now): void {
  const peerStore: PeerStore = node.peerStore
  const merge = peerStore.merge.bind(peerStore)
  const known = new Map<string, { peer: Peer, protocols: Set<string>, at: number }>()
  const remember = (peer: Peer, at: number): void => {
    // Connected peers only: the entry goes when the last connection does.
    if (node.getConnections(peer.id).length === 0) return
    known.set(peer.id.toString(), { peer, protocols: new Set(peer.protocols), at })
  }
  // Every other write (identify, discovery) announces the record it left.
  node.addEventListener('peer:update', (evt) => { remember(evt.detail.peer, now()) })
  node.addEventListener('peer:disconnect', (evt) => { known.delete(evt.detail.toString()) })
  peerStore.merge = async (id: PeerId, data: PeerData, options?: Parameters<PeerStore['merge']>[2]): Promise<Peer> => {
    const protocols = onlyProtocols(data)
    if (protocols !== undefined) {
      const entry = known.get(id.toString())
      if (entry !== undefined && now() - entry.at < KNOWN_PROTOCOLS_REWRITE_MS && protocols.every(p => entry.protocols.has(p))) return entry.peer
    }
    const peer = await merge(id, data, options)
    remember(peer, now())
    return peer
  }
}

/** The protocols of a merge that sets nothing else. */
function onlyProtocols (data: PeerData): string[] | undefined {
  if (data.protocols === undefined) return undefined
  for (const [key, value] of Object.entries(data)) if (key !== 'protocols' && value !== undefined) return undefined
  return data.protocols
}
