import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import { FIRST_MESSAGE_TIMEOUT_MS, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { FrameQueue, sendFrame } from './framing.js'
import { RefBatch, SignedRefRecord } from './pb/swarm-ref.pb.js'
import { openRefRecord, signRefRecord, type OpenedRefRecord, type VerifiedRefRecord } from './ref-record.js'

export const REF_PROTOCOL = '/shoal/ref/1.0.0'
/** One batch carries every ref a node holds: 256 KiB is ~500 records of ~500 bytes. */
export const MAX_REF_BATCH_BYTES = 256 * 1024
/** Batches are rare and short-lived; a few at once per connection is plenty. */
export const MAX_REF_STREAMS_PER_CONNECTION = 4
/**
 * A record's sequence is its publisher's clock in milliseconds (signRefRecord): one further
 * ahead of ours than this is refused, so one record cannot pin a tag past every later update.
 */
export const MAX_REF_CLOCK_AHEAD_MS = 10 * 60_000
/**
 * Records verified per neighbour: a burst of this many, then this many per second. Each costs
 * an Ed25519 verify; a flood of invalid ones took a daemon's whole CPU for 20 s.
 */
export const REF_RECORDS_BURST = 512
export const REF_RECORDS_PER_SECOND = 64

export interface RefStore {
  acceptRefRecord: (update: VerifiedRefRecord) => Promise<'accepted' | 'stale'>
  refRecords: () => Promise<Uint8Array[]>
}

export interface RefSyncLogger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
}

/**
 * /shoal/ref/1.0.0: a node sends its signed ref records to a neighbour when they connect,
 * and sends a record on to every neighbour when it accepts a newer one (gossip). A record is
 * applied only when its signature checks out and its publisher is trusted, and only when it
 * is newer than what the ref already holds, so an old record replayed cannot roll a tag back.
 */
export interface RefSyncInit {
  /** A neighbour sent an invalid record or too many: the swarm charges it (peer-score.ts). */
  onInvalid?: (peer: string, why: string) => void
  now?: () => number
}

/** What inbound records cost: how many were verified, and how many were turned away before. */
export interface RefSyncStats {
  /** Ed25519 verifies done (records from trusted publishers within their sender's allowance). */
  verified: number
  /** Records naming a publisher outside --trust: dropped after decoding, never verified. */
  untrusted: number
  /** Records that did not decode, were malformed, or whose signature failed. */
  invalid: number
  /** Records beyond their sender's allowance: dropped unread. */
  overAllowance: number
}

/** Neighbours whose record allowance is remembered; beyond this the oldest is forgotten. */
const MAX_ALLOWANCES = 4096

export class RefSync {
  /** peer → records it may still send now, and when that was computed (a token bucket). */
  private readonly allowance = new Map<string, { tokens: number, at: number }>()
  private readonly now: () => number
  private readonly counts: RefSyncStats = { verified: 0, untrusted: 0, invalid: 0, overAllowance: 0 }

  constructor (
    private readonly store: RefStore,
    private readonly trusted: ReadonlySet<string>,
    private readonly connections: () => Connection[],
    private readonly log: RefSyncLogger,
    private readonly init: RefSyncInit = {},
  ) {
    this.now = init.now ?? Date.now
  }

  /** Inbound stream: one batch, then the sender closes. */
  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const frames = new FrameQueue(stream, { maxFrameBytes: MAX_REF_BATCH_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
    try {
      const batch = RefBatch.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS }))
      await stream.close()
      const from = connection.remotePeer.toString()
      const allowed = this.take(from, batch.records.length)
      if (allowed < batch.records.length) {
        this.counts.overAllowance += batch.records.length - allowed
        this.init.onInvalid?.(from, `sent ${batch.records.length} ref records, more than its allowance of ${allowed}`)
      }
      const accepted: VerifiedRefRecord[] = []
      for (const signed of batch.records.slice(0, allowed)) {
        const update = await this.apply(SignedRefRecord.encode(signed), from)
        if (update !== undefined) accepted.push(update)
      }
      if (accepted.length > 0) await this.broadcast(accepted.map(a => a.signed), connection.remotePeer.toString())
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Signs and applies records for refs this node publishes, then tells every neighbour. */
  async publish (key: PrivateKey, refs: Array<{ ref: string, bundleId: string, manifestDigest?: string }>): Promise<void> {
    const records: Uint8Array[] = []
    for (const ref of refs) {
      const signed = await signRefRecord(key, ref)
      await this.store.acceptRefRecord(signed)
      records.push(signed.signed)
    }
    await this.broadcast(records)
  }

  /** Hands every record this node holds to one neighbour (on connect). */
  async sendAll (connection: Connection): Promise<void> {
    const records = await this.store.refRecords()
    if (records.length > 0) await this.send(connection, records)
  }

  /** Inbound record counters (tests, and what a flood cost). */
  stats (): RefSyncStats {
    return { ...this.counts }
  }

  private async apply (signed: Uint8Array, from: string): Promise<VerifiedRefRecord | undefined> {
    let opened: OpenedRefRecord
    let record: VerifiedRefRecord
    try {
      opened = openRefRecord(signed)
    } catch (err) {
      this.refused(from, err)
      return undefined
    }
    // Trust first: a record from a publisher we do not trust is dropped for the price of a
    // decode. Not charged: a neighbour with a wider --trust list relays such records honestly.
    if (!this.trusted.has(opened.publisher)) {
      this.counts.untrusted++
      this.log.debug('ref record from an untrusted publisher ignored', { from, ref: opened.ref, publisher: opened.publisher })
      return undefined
    }
    try {
      this.counts.verified++
      record = await opened.verify()
    } catch (err) {
      this.refused(from, err)
      return undefined
    }
    if (record.sequence > this.now() + MAX_REF_CLOCK_AHEAD_MS) {
      // A trusted publisher whose clock (or key) went wrong: refused, and worth a warning.
      this.log.warn('ref record refused: its sequence is ahead of this node\'s clock', {
        from, ref: record.ref, publisher: record.publisher, sequence: record.sequence, maxAheadMs: MAX_REF_CLOCK_AHEAD_MS,
      })
      return undefined
    }
    return await this.store.acceptRefRecord(record) === 'accepted' ? record : undefined
  }

  private refused (from: string, err: unknown): void {
    this.counts.invalid++
    // Logged by the swarm's penalty (once per peer at warn), not once per record.
    this.log.debug('ref record refused', { from, err })
    this.init.onInvalid?.(from, err instanceof Error ? err.message : String(err))
  }

  /** Takes up to `wanted` records from the peer's allowance; returns how many it may send. */
  private take (peer: string, wanted: number): number {
    const now = this.now()
    let bucket = this.allowance.get(peer)
    if (bucket === undefined) {
      if (this.allowance.size >= MAX_ALLOWANCES) {
        const oldest = this.allowance.keys().next().value
        if (oldest !== undefined) this.allowance.delete(oldest)
      }
      bucket = { tokens: REF_RECORDS_BURST, at: now }
      this.allowance.set(peer, bucket)
    }
    bucket.tokens = Math.min(REF_RECORDS_BURST, bucket.tokens + (now - bucket.at) / 1000 * REF_RECORDS_PER_SECOND)
    bucket.at = now
    const allowed = Math.max(0, Math.min(wanted, Math.floor(bucket.tokens)))
    bucket.tokens -= allowed
    return allowed
  }

  private async broadcast (records: Uint8Array[], except?: string): Promise<void> {
    await Promise.allSettled(this.connections()
      .filter(c => c.remotePeer.toString() !== except && c.status === 'open')
      .map(async c => { await this.send(c, records) }))
  }

  private async send (connection: Connection, records: Uint8Array[]): Promise<void> {
    try {
      const stream = await connection.newStream(REF_PROTOCOL, { signal: AbortSignal.timeout(STREAM_OPEN_TIMEOUT_MS) })
      const batch = RefBatch.encode({ records: records.map(r => SignedRefRecord.decode(r)) })
      const signal = AbortSignal.timeout(MESSAGE_TIMEOUT_MS)
      await sendFrame(stream, batch, { signal })
      await stream.close({ signal })
    } catch (err) {
      this.log.debug('could not send ref records', { peer: connection.remotePeer.toString(), err })
    }
  }
}
