import type { Libp2p, PrivateKey } from '@libp2p/interface'
import { signPreheatRecord, openPreheatRecord, preheatRecordSequence, type PreheatIntent, type VerifiedPreheatRecord } from './preheat-record.js'
import { RecordSync, type RecordSyncComponents, type RecordSyncInit, type RecordSyncStats } from './record-sync.js'
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

export interface PreheatRecordStore {
  /** Keeps the record when it is newer than the one held for its bundle; 'full' when the store holds its bound already. */
  acceptPreheatRecord: (record: VerifiedPreheatRecord) => Promise<'accepted' | 'stale' | 'full'>
  preheatRecords: () => Promise<Uint8Array[]>
}

export interface PreheatSyncInit extends RecordSyncInit {
  /** A record from a trusted publisher was accepted (here or from a neighbour). */
  onAccepted?: (record: VerifiedPreheatRecord) => void
}

/**
 * /shoal/preheat/1.0.0: signed preheat intents, synced as record-sync.ts describes, so a node
 * that joins late, or restarts, learns every live intent from its first neighbour. The store
 * keeps, per bundle, the newest record, so a replay cannot undo a cancel. An untrusted
 * publisher is warned about once, then logged at debug.
 */
export class PreheatSync {
  private readonly sync: RecordSync<VerifiedPreheatRecord>

  constructor (private readonly store: PreheatRecordStore, components: RecordSyncComponents, private readonly init: PreheatSyncInit = {}) {
    this.sync = new RecordSync(components, {
      name: 'preheat',
      protocol: PREHEAT_PROTOCOL,
      maxBatchBytes: MAX_PREHEAT_BATCH_BYTES,
      maxStreamsPerConnection: MAX_PREHEAT_STREAMS_PER_CONNECTION,
      maxClockAheadMs: MAX_PREHEAT_CLOCK_AHEAD_MS,
      allowance: { burst: PREHEAT_RECORDS_BURST, perSecond: PREHEAT_RECORDS_PER_SECOND },
      open: openPreheatRecord,
      sequence: preheatRecordSequence,
      keep: async (record, from) => {
        const verdict = await store.acceptPreheatRecord(record)
        if (verdict === 'full') components.log.warn('preheat record dropped: this node holds the most preheat records it keeps', { from, bundleId: record.bundleId, max: MAX_PREHEAT_RECORDS })
        if (verdict !== 'accepted') return false
        init.onAccepted?.(record)
        return true
      },
      held: async () => await store.preheatRecords(),
      untrustedAdvice: 'trust its key with --trust if it should steer this node',
    }, init)
  }

  async attach (node: Pick<Libp2p, 'handle' | 'register'>): Promise<void> {
    await this.sync.attach(node)
  }

  /** Ends sends under way and drops owed resyncs (the node is stopping). */
  stop (): void {
    this.sync.stop()
  }

  /** Inbound record counters (what a flood cost; /metrics). */
  stats (): RecordSyncStats {
    return this.sync.stats()
  }

  /** Neighbours owed a resync of every record held (tests). */
  pendingResyncs (): number {
    return this.sync.pendingResyncs()
  }

  /** Signs and keeps an intent of this node's operator, then tells every neighbour. */
  async publish (key: PrivateKey, intent: PreheatIntent): Promise<VerifiedPreheatRecord> {
    const record = await signPreheatRecord(key, intent)
    const verdict = await this.store.acceptPreheatRecord(record)
    if (verdict === 'full') throw new PreheatLimitError()
    this.init.onAccepted?.(record)
    await this.sync.broadcast([record.signed])
    return record
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
