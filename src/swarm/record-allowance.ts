import { RecentMap } from '../recent/index.js'

/**
 * How many signed records each neighbour may still have verified now: a token bucket per
 * peer (a burst, then a steady rate). Each record costs an Ed25519 verify, so a flood is
 * refused before it costs CPU. Bounded: beyond `maxPeers` the oldest peer's bucket is forgotten.
 */
export class RecordAllowance {
  private readonly buckets: RecentMap<string, { tokens: number, at: number }>

  /**
   * `emptiedAt`: a peer not seen yet has a bucket emptied then and refilling since, not a full
   * one; a sender's model of what its neighbours allow it starts so after a restart, when what
   * it sent just before is not known (RecordSync.theirAllowance).
   */
  constructor (private readonly init: { burst: number, perSecond: number, maxPeers: number, now?: () => number, emptiedAt?: number }) {
    this.buckets = new RecentMap(init.maxPeers)
  }

  /** How many records the peer's allowance holds now (the burst for a peer not seen, unless emptiedAt). Takes nothing. */
  available (peer: string): number {
    const now = (this.init.now ?? Date.now)()
    return this.refilled(this.buckets.get(peer) ?? this.unseen(now), now)
  }

  /** How long until the peer's allowance holds `wanted` records (at most the burst): 0 when it does now. Takes nothing. */
  msUntil (peer: string, wanted: number): number {
    const short = Math.min(wanted, this.init.burst) - this.available(peer)
    return short <= 0 ? 0 : Math.ceil(short / this.init.perSecond * 1000)
  }

  /** Takes up to `wanted` records from the peer's allowance; returns how many it may send. */
  take (peer: string, wanted: number): number {
    const now = (this.init.now ?? Date.now)()
    let bucket = this.buckets.get(peer)
    if (bucket === undefined) {
      bucket = this.unseen(now)
      this.buckets.set(peer, bucket)
    }
    bucket.tokens = this.refilled(bucket, now)
    bucket.at = now
    const allowed = Math.max(0, Math.min(wanted, Math.floor(bucket.tokens)))
    bucket.tokens -= allowed
    return allowed
  }

  private unseen (now: number): { tokens: number, at: number } {
    const emptiedAt = this.init.emptiedAt
    return emptiedAt === undefined || emptiedAt > now ? { tokens: this.init.burst, at: now } : { tokens: 0, at: emptiedAt }
  }

  private refilled (bucket: { tokens: number, at: number }, now: number): number {
    return Math.min(this.init.burst, bucket.tokens + (now - bucket.at) / 1000 * this.init.perSecond)
  }
}
