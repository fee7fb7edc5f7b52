import type { Connection, PrivateKey, Stream } from '@libp2p/interface'
import { FIRST_MESSAGE_TIMEOUT_MS, MESSAGE_TIMEOUT_MS, STREAM_OPEN_TIMEOUT_MS } from './constants.js'
import { FrameQueue, sendFrame } from './framing.js'
import { RefBatch, SignedRefRecord } from './pb/swarm-ref.pb.js'
import { signRefRecord, verifyRefRecord, type VerifiedRefRecord } from './ref-record.js'

export const REF_PROTOCOL = '/shoal/ref/1.0.0'
/** One batch carries every ref a node holds: 256 KiB is ~500 records of ~500 bytes. */
export const MAX_REF_BATCH_BYTES = 256 * 1024
/** Batches are rare and short-lived; a few at once per connection is plenty. */
export const MAX_REF_STREAMS_PER_CONNECTION = 4

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
export class RefSync {
  constructor (
    private readonly store: RefStore,
    private readonly trusted: ReadonlySet<string>,
    private readonly connections: () => Connection[],
    private readonly log: RefSyncLogger,
  ) {}

  /** Inbound stream: one batch, then the sender closes. */
  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const frames = new FrameQueue(stream, { maxFrameBytes: MAX_REF_BATCH_BYTES, messageTimeoutMs: MESSAGE_TIMEOUT_MS, maxQueuedFrames: 0 })
    try {
      const batch = RefBatch.decode(await frames.next({ timeoutMs: FIRST_MESSAGE_TIMEOUT_MS }))
      await stream.close()
      const accepted: VerifiedRefRecord[] = []
      for (const signed of batch.records) {
        const update = await this.apply(SignedRefRecord.encode(signed), connection.remotePeer.toString())
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

  private async apply (signed: Uint8Array, from: string): Promise<VerifiedRefRecord | undefined> {
    let record: VerifiedRefRecord
    try {
      record = await verifyRefRecord(signed)
    } catch (err) {
      this.log.warn('ref record refused', { from, err })
      return undefined
    }
    if (!this.trusted.has(record.publisher)) {
      this.log.debug('ref record from an untrusted publisher ignored', { from, ref: record.ref, publisher: record.publisher })
      return undefined
    }
    return await this.store.acceptRefRecord(record) === 'accepted' ? record : undefined
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
      await sendFrame(stream, batch)
      await stream.close()
    } catch (err) {
      this.log.debug('could not send ref records', { peer: connection.remotePeer.toString(), err })
    }
  }
}
