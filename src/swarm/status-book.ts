import type { Bytes, NodeStatusFields } from './status-record.js'
import { DROP_AFTER_INTERVALS, MAX_KNOWN_NODES, STALE_AFTER_INTERVALS } from './status-constants.js'

/** One node's latest status as this node holds it. */
export interface HeldStatus {
  publisher: string
  /** The publisher's key, protobuf-encoded: refreshes are checked against it. */
  publisherKey: Bytes
  sequence: number
  bodyHash: string
  fields: NodeStatusFields
  body: Bytes
  stamp: Bytes
  signature: Bytes
  /** Local clock when this sequence was first heard here (less the age its sender reported). */
  heardAt: number
}

/** A row of the fleet view. */
export interface FleetNode extends NodeStatusFields {
  peerId: string
  self: boolean
  stale: boolean
  /** Milliseconds since this node last heard from it. */
  lastSeenMs: number
  sequence: number
}

export type AcceptVerdict = 'accepted' | 'older' | 'too-soon'

/**
 * Every node's latest status, by publisher: bounded in count, each judged stale and then
 * forgotten by its own promised heartbeat period. Pure: an injected clock, no I/O.
 */
export class StatusBook {
  private readonly byPublisher = new Map<string, HeldStatus>()
  /** Last 8 key bytes (hex) → publisher, to find the status a refresh is for. */
  private readonly byTail = new Map<string, string>()

  constructor (private readonly self: string, private readonly now: () => number, private readonly maxNodes = MAX_KNOWN_NODES) {}

  get size (): number { return this.byPublisher.size }

  get (publisher: string): HeldStatus | undefined { return this.byPublisher.get(publisher) }

  byKeyTail (tail: Uint8Array): HeldStatus | undefined {
    const publisher = this.byTail.get(Buffer.from(tail).toString('hex'))
    return publisher === undefined ? undefined : this.byPublisher.get(publisher)
  }

  all (): IterableIterator<HeldStatus> { return this.byPublisher.values() }

  /**
   * Keeps a status newer than the one held. A publisher's heartbeats closer together than
   * half its own promised period are refused, so one node cannot make the fleet relay a flood.
   */
  accept (status: HeldStatus): AcceptVerdict {
    const held = this.byPublisher.get(status.publisher)
    if (held !== undefined) {
      if (status.sequence <= held.sequence) return 'older'
      if (status.publisher !== this.self && status.sequence - held.sequence < held.fields.intervalMs / 2) return 'too-soon'
    } else {
      this.sweep()
      if (this.byPublisher.size >= this.maxNodes) this.forgetLongestSilent()
      this.byTail.set(Buffer.from(status.publisherKey.subarray(-8)).toString('hex'), status.publisher)
    }
    this.byPublisher.set(status.publisher, status)
    return 'accepted'
  }

  /** Drops what was silent for DROP_AFTER_INTERVALS of its own periods. */
  sweep (): void {
    const now = this.now()
    for (const held of this.byPublisher.values()) {
      if (held.publisher !== this.self && now - held.heardAt > DROP_AFTER_INTERVALS * held.fields.intervalMs) this.forget(held)
    }
  }

  view (): FleetNode[] {
    this.sweep()
    const now = this.now()
    return [...this.byPublisher.values()].map(held => {
      const lastSeenMs = held.publisher === this.self ? 0 : Math.max(0, now - held.heardAt)
      return {
        peerId: held.publisher,
        self: held.publisher === this.self,
        stale: lastSeenMs > STALE_AFTER_INTERVALS * held.fields.intervalMs,
        lastSeenMs,
        sequence: held.sequence,
        ...held.fields,
      }
    }).sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  private forgetLongestSilent (): void {
    let oldest: HeldStatus | undefined
    for (const held of this.byPublisher.values()) {
      if (held.publisher !== this.self && (oldest === undefined || held.heardAt < oldest.heardAt)) oldest = held
    }
    if (oldest !== undefined) this.forget(oldest)
  }

  private forget (held: HeldStatus): void {
    this.byPublisher.delete(held.publisher)
    this.byTail.delete(Buffer.from(held.publisherKey.subarray(-8)).toString('hex'))
  }
}
