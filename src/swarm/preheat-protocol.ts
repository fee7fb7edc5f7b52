import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import { FIRST_MESSAGE_TIMEOUT_MS, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { FrameQueue, sendFrame } from './framing.js'
import { PreheatBatch, SignedPreheatRecord } from './pb/swarm-preheat.pb.js'
import { signPreheatRecord, verifyPreheatRecord, type PreheatIntent, type VerifiedPreheatRecord } from './preheat-record.js'
import { RecordAllowance } from './record-allowance.js'
import { MAX_PREHEAT_RECORDS } from '../store/index.js'

export const PREHEAT_PROTOCOL = '/shoal/preheat/1.0.0'
/** One batch carries every record a node holds: 256 records of ~400 bytes. */
export const MAX_PREHEAT_BATCH_BYTES = 128 * 1024
export const MAX_PREHEAT_STREAMS_PER_CONNECTION = 2
/** As for ref records: a sequence further ahead of our clock than this is refused, so one record cannot outrank every later cancel. */
export const MAX_PREHEAT_CLOCK_AHEAD_MS = 10 * 60_000
/**
 * Records verified per neighbour: a burst of what one node may hold, then 32 per second, so a
 * neighbour that reconnects within seconds and hands over its full set again is not charged
 * (each record costs one Ed25519 verify, ~0.1 ms).
 */
export const PREHEAT_RECORDS_BURST = MAX_PREHEAT_RECORDS
export const PREHEAT_RECORDS_PER_SECOND = 32
/** Untrusted publishers remembered for the log-once rule. */
const MAX_WARNED_PUBLISHERS = 1024

export interface PreheatRecordStore {
  /** Keeps the record when it is newer than the one held for its bundle; 'full' when the store holds its bound already. */
  acceptPreheatRecord: (record: VerifiedPreheatRecord) => Promise<'accepted' | 'stale' | 'full'>
  preheatRecords: () => Promise<Uint8Array[]>
}

export interface PreheatSyncLogger {
  debug: (msg: string, fields?: Record<string, unknown>) => void
  warn: (msg: string, fields?: Record<string, unknown>) => void
}

export interface PreheatSyncInit {
  /** A neighbour sent an invalid record or too many: the swarm charges it (peer-score.ts). */
  onInvalid?: (peer: string, why: string) => void
  /** A record from a trusted publisher was accepted (here or from a neighbour). */
  onAccepted?: (record: VerifiedPreheatRecord) => void
  now?: () => number
}

/**
 * /shoal/preheat/1.0.0: the ref protocol's model for preheat intents. A node sends its records
 * to a neighbour when they connect (so a node that joins late, or restarts, learns every live
 * intent) and passes on each record it accepts (gossip). A record counts only when its
 * signature checks out, its publisher is trusted (`--trust`, or this node), and it is newer
 * than the one held for its bundle. An untrusted publisher is logged once, then at debug.
 */
export class PreheatSync {
  private readonly allowance: RecordAllowance
  private readonly warned = new Set<string>()
  private readonly now: () => number

  constructor (
    private readonly store: PreheatRecordStore,
    private readonly trusted: ReadonlySet<string>,
    private readonly connections: () => Connection[],
    private readonly log: PreheatSyncLogger,
    private readonly init: PreheatSyncInit = {},
  ) {
    this.now = init.now ?? Date.now
    this.allowance = new RecordAllowance({ burst: PREHEAT_RECORDS_BURST, perSecond: PREHEAT_RECORDS_PER_SECOND, maxPeers: 4096, now: this.now })
  }

  /** Inbound stream: one batch, then the sender closes. */
  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const frames = new FrameQueue(stream, { maxFrameBytes: MAX_PREHEAT_BATCH_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
    try {
      const batch = PreheatBatch.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS }))
      await stream.close()
      const from = connection.remotePeer.toString()
      const allowed = this.allowance.take(from, batch.records.length)
      if (allowed < batch.records.length) this.init.onInvalid?.(from, `sent ${batch.records.length} preheat records, more than its allowance of ${allowed}`)
      const accepted: Uint8Array[] = []
      for (const signed of batch.records.slice(0, allowed)) {
        const record = await this.apply(SignedPreheatRecord.encode(signed), from)
        if (record !== undefined) accepted.push(record.signed)
      }
      if (accepted.length > 0) await this.broadcast(accepted, from)
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /** Signs and keeps an intent of this node's operator, then tells every neighbour. */
  async publish (key: PrivateKey, intent: PreheatIntent): Promise<VerifiedPreheatRecord> {
    const record = await signPreheatRecord(key, intent)
    const verdict = await this.store.acceptPreheatRecord(record)
    if (verdict === 'full') throw new PreheatLimitError()
    this.init.onAccepted?.(record)
    await this.broadcast([record.signed])
    return record
  }

  /** Hands every record this node holds to one neighbour (on connect). */
  async sendAll (connection: Connection): Promise<void> {
    const records = await this.store.preheatRecords()
    if (records.length > 0) await this.send(connection, records)
  }

  private async apply (signed: Uint8Array, from: string): Promise<VerifiedPreheatRecord | undefined> {
    let record: VerifiedPreheatRecord
    try {
      record = await verifyPreheatRecord(signed)
    } catch (err) {
      this.log.debug('preheat record refused', { from, err })
      this.init.onInvalid?.(from, err instanceof Error ? err.message : String(err))
      return undefined
    }
    if (!this.trusted.has(record.publisher)) {
      // Once per publisher at warn: an operator wants to know a stranger tries to fill their
      // disks, but not a line per gossip round.
      if (!this.warned.has(record.publisher) && this.warned.size < MAX_WARNED_PUBLISHERS) {
        this.warned.add(record.publisher)
        this.log.warn('preheat record from an untrusted publisher ignored (further ones from it at debug); trust its key with --trust if it should steer this node', { from, publisher: record.publisher, bundleId: record.bundleId })
      } else {
        this.log.debug('preheat record from an untrusted publisher ignored', { from, publisher: record.publisher, bundleId: record.bundleId })
      }
      return undefined
    }
    if (record.sequence > this.now() + MAX_PREHEAT_CLOCK_AHEAD_MS) {
      this.log.warn('preheat record refused: its sequence is ahead of this node\'s clock', { from, publisher: record.publisher, bundleId: record.bundleId, sequence: record.sequence })
      return undefined
    }
    const verdict = await this.store.acceptPreheatRecord(record)
    if (verdict === 'full') {
      this.log.warn('preheat record dropped: this node holds the most preheat records it keeps', { from, bundleId: record.bundleId, max: MAX_PREHEAT_RECORDS })
      return undefined
    }
    if (verdict !== 'accepted') return undefined
    this.init.onAccepted?.(record)
    return record
  }

  private async broadcast (records: Uint8Array[], except?: string): Promise<void> {
    await Promise.allSettled(this.connections()
      .filter(c => c.remotePeer.toString() !== except && c.status === 'open')
      .map(async c => { await this.send(c, records) }))
  }

  private async send (connection: Connection, records: Uint8Array[]): Promise<void> {
    try {
      const stream = await connection.newStream(PREHEAT_PROTOCOL, { signal: AbortSignal.timeout(STREAM_OPEN_TIMEOUT_MS) })
      const batch = PreheatBatch.encode({ records: records.map(r => SignedPreheatRecord.decode(r)) })
      const signal = AbortSignal.timeout(MESSAGE_TIMEOUT_MS)
      await sendFrame(stream, batch, { signal })
      await stream.close({ signal })
    } catch (err) {
      this.log.debug('could not send preheat records', { peer: connection.remotePeer.toString(), err })
    }
  }
}

/** This node already keeps MAX_PREHEAT_RECORDS live records; a cancelled one makes room. */
export class PreheatLimitError extends Error {
  readonly code = 'PREHEAT_LIMIT'
  constructor () {
    super(`this node keeps at most ${MAX_PREHEAT_RECORDS} preheat records; cancel preheats that are done with (shoal preheat --cancel ID) to make room`)
    this.name = 'PreheatLimitError'
  }
}
