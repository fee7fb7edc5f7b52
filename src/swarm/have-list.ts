import type { ChunkBitmap } from '../manifest/index.js'

/**
 * What each neighbour told us it holds, object by object: the whole object or a bitmap that
 * grows as its chunks arrive. Pure bookkeeping; the have protocol checks every message
 * against our own manifests before it lands here.
 */

export type PeerKey = string

/** `true` when the peer holds the whole object. */
export type ObjectHolding = true | ChunkBitmap

interface NeighbourState {
  gateway: boolean
  interest: Set<string>
  objects: Map<string, ObjectHolding>
}

export class HaveList {
  private readonly peers = new Map<PeerKey, NeighbourState>()

  addPeer (peer: PeerKey, init: { gateway: boolean, bundles: Iterable<string> }): void {
    this.peers.set(peer, { gateway: init.gateway, interest: new Set(init.bundles), objects: new Map() })
  }

  removePeer (peer: PeerKey): void {
    this.peers.delete(peer)
  }

  hasPeer (peer: PeerKey): boolean {
    return this.peers.has(peer)
  }

  /** Whether the peer has told us it holds anything at all (a leech never does). */
  advertisesAnything (peer: PeerKey): boolean {
    return (this.peers.get(peer)?.objects.size ?? 0) > 0
  }

  isGateway (peer: PeerKey): boolean {
    return this.peers.get(peer)?.gateway ?? false
  }

  updateInterest (peer: PeerKey, added: Iterable<string>, removed: Iterable<string>): void {
    const state = this.peers.get(peer)
    if (state === undefined) return
    for (const id of added) state.interest.add(id)
    for (const id of removed) state.interest.delete(id)
  }

  interestOf (peer: PeerKey): ReadonlySet<string> {
    return this.peers.get(peer)?.interest ?? new Set()
  }

  peersInterestedIn (bundleId: string): PeerKey[] {
    return [...this.peers].filter(([, state]) => state.interest.has(bundleId)).map(([peer]) => peer)
  }

  setObject (peer: PeerKey, object: string, holding: ObjectHolding): void {
    this.peers.get(peer)?.objects.set(object, holding)
  }

  /** Marks chunks held; returns the indexes that were new (so callers forward only news). */
  addChunks (peer: PeerKey, object: string, indexes: Iterable<number>, fresh: () => ChunkBitmap): number[] {
    const state = this.peers.get(peer)
    if (state === undefined) return []
    let holding = state.objects.get(object)
    if (holding === true) return []
    if (holding === undefined) {
      holding = fresh()
      state.objects.set(object, holding)
    }
    const added: number[] = []
    for (const index of indexes) {
      if (holding.has(index)) continue
      holding.set(index)
      added.push(index)
    }
    return added
  }

  holding (peer: PeerKey, object: string): ObjectHolding | undefined {
    return this.peers.get(peer)?.objects.get(object)
  }

  has (peer: PeerKey, object: string, index: number): boolean {
    const holding = this.holding(peer, object)
    if (holding === undefined) return false
    return holding === true || holding.has(index)
  }

  /** How many neighbours other than `exclude` hold the chunk: a gateway serves low counts first. */
  holderCount (object: string, index: number, exclude?: PeerKey): number {
    return this.countHolders(object, index, exclude, false)
  }

  /**
   * How many neighbours other than `exclude` that are not gateways hold the chunk: an edge
   * sends first the chunks only it holds among the edges (sole-copies.ts), and a gateway
   * neighbour's whole holding would count in every chunk.
   */
  edgeHolderCount (object: string, index: number, exclude?: PeerKey): number {
    return this.countHolders(object, index, exclude, true)
  }

  private countHolders (object: string, index: number, exclude: PeerKey | undefined, edgesOnly: boolean): number {
    let count = 0
    for (const [peer, state] of this.peers) {
      if (peer === exclude || (edgesOnly && state.gateway)) continue
      const holding = state.objects.get(object)
      if (holding === true || (holding?.has(index) ?? false)) count++
    }
    return count
  }

  /**
   * Whether the neighbours `usable` accepts hold, between them, every chunk of these objects:
   * then a pull can finish from its neighbours alone, and a DHT search would name nobody new in
   * a fleet where every node neighbours every other (manifest-search.ts).
   */
  covers (objects: Iterable<{ hash: string, chunkCount: number }>, usable: (peer: PeerKey) => boolean): boolean {
    const peers = [...this.peers].filter(([peer]) => usable(peer)).map(([, state]) => state.objects)
    for (const { hash, chunkCount } of objects) {
      const holdings = peers.map(objects => objects.get(hash)).filter(h => h !== undefined)
      if (holdings.some(h => h === true)) continue
      for (let index = 0; index < chunkCount; index++) {
        if (!holdings.some(h => h !== true && h.has(index))) return false
      }
    }
    return true
  }

  /** Every peer's holding of one object, for seeding a new want in the scheduler. */
  holdersOf (object: string): Array<[PeerKey, ObjectHolding]> {
    const out: Array<[PeerKey, ObjectHolding]> = []
    for (const [peer, state] of this.peers) {
      const holding = state.objects.get(object)
      if (holding !== undefined) out.push([peer, holding])
    }
    return out
  }
}
