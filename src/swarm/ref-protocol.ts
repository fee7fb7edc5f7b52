import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { HeardRefBounds } from '../store/index.js'
import { RecordSync, type RecordSyncComponents, type RecordSyncInit, type RecordSyncStats } from './record-sync.js'
import { openRefRecord, refRecordSequence, signRefRecord, type VerifiedRefRecord } from './ref-record.js'

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

/**
 * Refs a node keeps from other publishers' records: per publisher, and all of them together;
 * past either the oldest goes (Store.acceptRefRecord), never this node's own, nor one whose
 * bundle it holds or a preheat names. Every record held goes to each new neighbour, which
 * verifies REF_RECORDS_PER_SECOND a second of them: 10,000 take it ~2.6 min, and ~2-5 MB
 * (200-500 bytes a record; 40 MB at the 4 KiB a record may have). A fleet the project targets
 * (5,000 nodes, a gateway or a few trusted publishers) tags hundreds of images, tens of tags
 * each: a publisher past 10,000 live tags is retagging builds, whose oldest tags nobody pulls.
 * Four such publishers fill the total; a fifth's refs push out the oldest of all.
 */
export const MAX_HEARD_REFS_PER_PUBLISHER = 10_000
export const MAX_HEARD_REFS = 40_000

export interface RefStore {
  acceptRefRecord: (update: VerifiedRefRecord, bounds?: HeardRefBounds) => Promise<'accepted' | 'stale'>
  refRecords: () => Promise<Uint8Array[]>
}

/**
 * /shoal/ref/1.0.0: signed `ref → bundle` records, synced as record-sync.ts describes; the
 * store keeps, per ref, the newest record, so an old one replayed cannot roll a tag back.
 */
export class RefSync {
  private readonly sync: RecordSync<VerifiedRefRecord>
  private readonly bounds: HeardRefBounds | undefined

  /**
   * `self`: this node's publisher ID, whose refs are not bounded (without it, none are);
   * `bounds`: the numbers (MAX_HEARD_REFS_PER_PUBLISHER, MAX_HEARD_REFS), which tests make small.
   */
  constructor (private readonly store: RefStore, components: RecordSyncComponents, init: RecordSyncInit & { self?: string, bounds?: { maxPerPublisher?: number, maxTotal?: number } } = {}) {
    const bounds: HeardRefBounds | undefined = init.self === undefined
      ? undefined
      : { self: init.self, maxPerPublisher: init.bounds?.maxPerPublisher ?? MAX_HEARD_REFS_PER_PUBLISHER, maxTotal: init.bounds?.maxTotal ?? MAX_HEARD_REFS }
    this.bounds = bounds
    this.sync = new RecordSync(components, {
      name: 'ref',
      protocol: REF_PROTOCOL,
      maxBatchBytes: MAX_REF_BATCH_BYTES,
      maxStreamsPerConnection: MAX_REF_STREAMS_PER_CONNECTION,
      maxClockAheadMs: MAX_REF_CLOCK_AHEAD_MS,
      allowance: { burst: REF_RECORDS_BURST, perSecond: REF_RECORDS_PER_SECOND },
      open: openRefRecord,
      sequence: refRecordSequence,
      keep: async (record) => await store.acceptRefRecord(record, bounds) === 'accepted',
      held: async () => await store.refRecords(),
    }, init)
  }

  async attach (node: Pick<Libp2p, 'handle' | 'register'>): Promise<void> {
    await this.sync.attach(node)
  }

  /** Ends sends under way and drops owed resyncs (the node is stopping). */
  stop (): void {
    this.sync.stop()
  }

  /** Neighbours owed a resync of every record held (tests). */
  pendingResyncs (): number {
    return this.sync.pendingResyncs()
  }

  /** Signs and applies records for refs this node publishes, then tells every neighbour. */
  async publish (key: PrivateKey, refs: Array<{ ref: string, bundleId: string, manifestDigest?: string }>): Promise<void> {
    const records: Uint8Array[] = []
    for (const ref of refs) {
      const signed = await signRefRecord(key, ref)
      await this.store.acceptRefRecord(signed, this.bounds)
      records.push(signed.signed)
    }
    await this.sync.broadcast(records)
  }

  /** Inbound record counters (tests, and what a flood cost). */
  stats (): RecordSyncStats {
    return this.sync.stats()
  }
}
