import { UnsupportedProtocolError, type Connection, type Libp2p, type Stream } from '@libp2p/interface'
import { receiveBatch, sendBatch } from './batch-stream.js'
import { RECORD_RESYNC_FIRST_DELAY_MS, RECORD_RESYNC_MAX_DELAY_MS, RECORD_RESYNC_MAX_TRIES } from './constants.js'
import { RecordBatch } from './pb/swarm-record.pb.js'
import { RecordAllowance } from './record-allowance.js'
import type { PendingRecord } from './signed-record.js'
import { sleep } from '../wait/index.js'

/** What the sync needs of any kind's verified record. */
export interface SyncedRecord {
  publisher: string
  /** The publisher's clock when it signed: a record far ahead of ours is refused. */
  sequence: number
  /** The record as it travels, to store and forward unchanged. */
  signed: Uint8Array
}

/** One kind of signed record: its protocol, its bounds, and how it is read and kept. */
export interface RecordKind<V extends SyncedRecord> {
  /** 'ref', 'preheat': names the records in logs and in what a neighbour is charged for. */
  name: string
  protocol: string
  /** The most bytes a batch may have: a sender splits what it holds to fit. */
  maxBatchBytes: number
  /** Batches are rare and short-lived: a few at once per connection is plenty. */
  maxStreamsPerConnection: number
  /** A sequence further ahead of our clock than this is refused, so one record cannot outrank every later one. */
  maxClockAheadMs: number
  /** Records verified per neighbour: a burst, then a rate per second (RecordAllowance). */
  allowance: { burst: number, perSecond: number }
  /** Decodes and checks the shape of a signed record from anyone (throws the kind's typed error). */
  open: (signed: Uint8Array) => PendingRecord<V>
  /** The sequence a held record claims, read without its key: what a sender orders by, newest first. */
  sequence: (signed: Uint8Array) => number
  /** Keeps a verified record of a trusted publisher; true when it was news to pass on. */
  keep: (record: V, from: string) => Promise<boolean>
  /** Every record this node holds, as signed: what a new neighbour is sent. */
  held: () => Promise<Uint8Array[]>
  /**
   * When set, a record from an untrusted publisher is warned about with this advice the first
   * time per publisher, then logged at debug; when not, always at debug.
   */
  untrustedAdvice?: string
}

export interface RecordSyncComponents {
  /** Publishers whose records count: `--trust`, and this node. */
  trusted: ReadonlySet<string>
  connections: () => Connection[]
  log: {
    debug: (msg: string, fields?: Record<string, unknown>) => void
    warn: (msg: string, fields?: Record<string, unknown>) => void
  }
}

export interface RecordSyncInit {
  /** A neighbour sent an invalid record or too many: the swarm charges it (peer-score.ts). */
  onInvalid?: (peer: string, why: string) => void
  /**
   * A neighbour sent a record that does not even decode: a broken message, charged as a
   * protocol violation (a flood of garbage records banned only after ten of them).
   * Without it, `onInvalid` is told.
   */
  onMalformed?: (peer: string, why: string) => void
  /** Sending our records to a new neighbour failed (the store may be closing). */
  onSendAllFailed?: (err: unknown) => void
  /** When a neighbour that did not take a batch is sent everything held again (defaults: RECORD_RESYNC_*). */
  resync?: { firstDelayMs?: number, maxDelayMs?: number, maxTries?: number }
  now?: () => number
}

/** What inbound records cost: how many were verified, and how many were turned away before. */
export interface RecordSyncStats {
  /** Ed25519 verifies done (records from trusted publishers within their sender's allowance). */
  verified: number
  /** Records naming a publisher outside --trust: dropped after decoding, never verified. */
  untrusted: number
  /** Records that did not decode, were malformed, or whose signature failed. */
  invalid: number
  /** Records beyond their sender's allowance: dropped unread. */
  overAllowance: number
  /** Batches that went past their sender's allowance (each charged once). */
  overAllowanceCharges: number
}

/** Neighbours whose record allowance is remembered; beyond this the oldest is forgotten. */
const MAX_ALLOWANCES = 4096
/** Untrusted publishers remembered for the warn-once rule. */
const MAX_WARNED_PUBLISHERS = 1024

/** A neighbour owed everything held: a batch to it failed while it stayed connected. */
interface Resync {
  /** Resends tried so far. */
  tries: number
  /** Set while waiting for the next try; unset while one is under way. */
  timer: NodeJS.Timeout | undefined
  /** Another send failed while a resend was under way: it may have missed that record, so once more. */
  again: boolean
}

/** Bytes a batch's encoding adds around its records, counted generously (a field tag and length each, and some to spare). */
const BATCH_OVERHEAD_BYTES = 16
const RECORD_OVERHEAD_BYTES = 6

/**
 * The sync every signed-record protocol shares (/shoal/ref/1.0.0, /shoal/preheat/1.0.0): a
 * node sends every record it holds to a neighbour when they connect (so a node that joins
 * late, or restarts, learns them all) and passes on each record it accepts (gossip). Every
 * send is paced by the neighbour's allowance as the sender reckons it and split to fit its
 * batch size, newest records first: an honest node is never charged for what it holds,
 * however many records that is and however soon the neighbour reconnects. A record
 * counts only when its publisher is trusted, its signature checks out, its sequence is not far
 * ahead of our clock, and the kind keeps it (newer than what it holds, so an old record
 * replayed cannot roll anything back). Trust is checked before the signature: a stranger's
 * record costs a decode, not an Ed25519 verify; and each neighbour has an allowance of records
 * per second, past which they are dropped unread and the neighbour charged.
 *
 * A batch a neighbour did not take (the stream could not open, its stream limit for the
 * protocol was full, it reset the stream) while it stays connected is made good: the neighbour
 * is owed a resync, everything held sent again after a growing delay (RECORD_RESYNC_*). One per
 * neighbour: later failures join it, and it sends what is current, so a record that arrived
 * meanwhile goes with it and an older one never follows a newer in its place. It is paced as
 * every send is, and is dropped when the neighbour disconnects (it
 * gets everything on reconnect) and when the sync stops.
 */
export class RecordSync<V extends SyncedRecord> {
  private readonly allowance: RecordAllowance
  /**
   * Each neighbour's allowance for our records as we reckon it (the same bucket it keeps for
   * us, charged as we send, kept across its reconnects as it keeps ours): every batch waits
   * until it fits, or the neighbour would drop the rest unread and charge us (an honest
   * sender banned after ten such batches).
   */
  private readonly theirAllowance: RecordAllowance
  private readonly warned = new Set<string>()
  private readonly now: () => number
  private readonly counts: RecordSyncStats = { verified: 0, untrusted: 0, invalid: 0, overAllowance: 0, overAllowanceCharges: 0 }
  /** Connected neighbours owed everything held, by peer ID: at most one entry each. */
  private readonly resyncs = new Map<string, Resync>()
  private readonly resyncPolicy: { firstDelayMs: number, maxDelayMs: number, maxTries: number }
  /** Aborted by `stop`: sends under way end, and no resync is owed any more. */
  private controller = new AbortController()

  constructor (
    private readonly components: RecordSyncComponents,
    private readonly kind: RecordKind<V>,
    private readonly init: RecordSyncInit = {},
  ) {
    this.now = init.now ?? Date.now
    this.allowance = new RecordAllowance({ ...kind.allowance, maxPeers: MAX_ALLOWANCES, now: this.now })
    // Emptied now: a restart forgets what was sent before it, and a neighbour that took a batch
    // from us seconds before still has its bucket drained (a restart within ~8 s of a batch was
    // charged once); it refills in burst / perSecond (8 s for refs), after which no send waits.
    this.theirAllowance = new RecordAllowance({ ...kind.allowance, maxPeers: MAX_ALLOWANCES, now: this.now, emptiedAt: this.now() })
    this.resyncPolicy = {
      firstDelayMs: init.resync?.firstDelayMs ?? RECORD_RESYNC_FIRST_DELAY_MS,
      maxDelayMs: init.resync?.maxDelayMs ?? RECORD_RESYNC_MAX_DELAY_MS,
      maxTries: init.resync?.maxTries ?? RECORD_RESYNC_MAX_TRIES,
    }
  }

  /** Before the node starts: the handler, and the topology that hands a new neighbour every record held. */
  async attach (node: Pick<Libp2p, 'handle' | 'register'>): Promise<void> {
    this.controller = new AbortController()
    const streams = this.kind.maxStreamsPerConnection
    await node.handle(this.kind.protocol, (stream, connection) => { void this.handle(stream, connection) }, {
      maxInboundStreams: streams, maxOutboundStreams: streams,
    })
    await node.register(this.kind.protocol, {
      onConnect: (_peerId, connection) => { this.sendAll(connection).catch((err: unknown) => { this.init.onSendAllFailed?.(err) }) },
      // Its last connection closed: it is sent everything when it connects again.
      onDisconnect: (peerId) => { this.forget(peerId.toString()) },
    })
  }

  /** Ends sends under way and drops every owed resync with its timer (the node is stopping). */
  stop (): void {
    this.controller.abort(new Error(`the ${this.kind.name} record sync stopped`))
    for (const peer of [...this.resyncs.keys()]) this.forget(peer)
  }

  /** Neighbours owed a resync (tests; bounded by the connected neighbours). */
  pendingResyncs (): number {
    return this.resyncs.size
  }

  /** Inbound stream: one batch, then the sender closes. */
  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const from = connection.remotePeer.toString()
    try {
      const { records } = await receiveBatch(stream, { maxBytes: this.kind.maxBatchBytes, decode: (frame) => RecordBatch.decode(frame) })
      await this.receive(records, from)
    } catch (err) {
      this.components.log.debug(`${this.kind.name} records from a neighbour not applied`, { from, err })
    }
  }

  /** Hands every record this node holds to one neighbour (on connect), newest first. */
  async sendAll (connection: Connection): Promise<void> {
    const records = await this.held()
    if (records.length > 0) await this.send(connection, records)
  }

  /** Sends records (signed, as they travel) to every neighbour but `except`. */
  async broadcast (records: Uint8Array[], except?: string): Promise<void> {
    await Promise.allSettled(this.components.connections()
      .filter(c => c.remotePeer.toString() !== except && c.status === 'open')
      .map(async c => { await this.send(c, records) }))
  }

  /** Inbound record counters (tests, and what a flood cost). */
  stats (): RecordSyncStats {
    return { ...this.counts }
  }

  private async receive (records: Uint8Array[], from: string): Promise<void> {
    const allowed = this.allowance.take(from, records.length)
    if (allowed < records.length) {
      this.counts.overAllowance += records.length - allowed
      this.counts.overAllowanceCharges++
      this.init.onInvalid?.(from, `sent ${records.length} ${this.kind.name} records, more than its allowance of ${allowed}`)
    }
    const accepted: Uint8Array[] = []
    for (let i = 0; i < allowed; i++) {
      const outcome = await this.apply(records[i] as Uint8Array, from)
      if (outcome === 'refused') {
        // An honest neighbour passes on only records it verified itself: one that fails came
        // from a broken or hostile sender, and the rest of its batch is dropped unread (a
        // flood of invalid records cost a decode, an error and a charge per record).
        this.counts.invalid += allowed - i - 1
        break
      }
      if (outcome !== undefined) accepted.push(outcome.signed)
    }
    if (accepted.length > 0) await this.broadcast(accepted, from)
  }

  /** The record if it is news to keep and pass on; 'refused' when it was invalid (charged). */
  private async apply (signed: Uint8Array, from: string): Promise<V | 'refused' | undefined> {
    let pending: PendingRecord<V>
    let record: V
    try {
      pending = this.kind.open(signed)
    } catch (err) {
      this.refused(from, err, true)
      return 'refused'
    }
    if (!this.components.trusted.has(pending.publisher)) {
      // Not charged: a neighbour with a wider --trust list relays such records honestly.
      this.counts.untrusted++
      this.untrusted(from, pending)
      return undefined
    }
    try {
      this.counts.verified++
      record = await pending.verify()
    } catch (err) {
      this.refused(from, err, false)
      return 'refused'
    }
    if (record.sequence > this.now() + this.kind.maxClockAheadMs) {
      // A trusted publisher whose clock (or key) went wrong: refused, and worth a warning.
      this.components.log.warn(`${this.kind.name} record refused: its sequence is ahead of this node's clock`, {
        from, ...pending.subject, publisher: record.publisher, sequence: record.sequence, maxAheadMs: this.kind.maxClockAheadMs,
      })
      return undefined
    }
    return await this.kind.keep(record, from) ? record : undefined
  }

  private untrusted (from: string, pending: PendingRecord<V>): void {
    const message = `${this.kind.name} record from an untrusted publisher ignored`
    const fields = { from, publisher: pending.publisher, ...pending.subject }
    const advice = this.kind.untrustedAdvice
    // Once per publisher at warn, when the kind asks for it: an operator wants to know a
    // stranger tries to steer their nodes, but not a line per gossip round.
    if (advice !== undefined && !this.warned.has(pending.publisher) && this.warned.size < MAX_WARNED_PUBLISHERS) {
      this.warned.add(pending.publisher)
      this.components.log.warn(`${message} (further ones from it at debug); ${advice}`, fields)
    } else {
      this.components.log.debug(message, fields)
    }
  }

  private refused (from: string, err: unknown, malformed: boolean): void {
    this.counts.invalid++
    // Logged by the swarm's penalty (once per peer at warn), not once per record.
    this.components.log.debug(`${this.kind.name} record refused`, { from, err })
    const why = err instanceof Error ? err.message : String(err)
    if (malformed && this.init.onMalformed !== undefined) this.init.onMalformed(from, why)
    else this.init.onInvalid?.(from, why)
  }

  /** Sends records, paced; a batch the neighbour did not take is made good by a resync (never throws). */
  private async send (connection: Connection, records: Uint8Array[]): Promise<void> {
    try {
      await this.sendPaced(connection, records)
    } catch (err) {
      const peer = connection.remotePeer.toString()
      if (this.controller.signal.aborted) return
      if (err instanceof UnsupportedProtocolError) {
        // A neighbour that does not speak the protocol (an older version) is not asked again.
        this.components.log.debug(`a neighbour does not take ${this.kind.name} records`, { peer })
        return
      }
      // Once per resync owed: later failures join it, and it tells how it ends.
      if (!this.resyncs.has(peer)) this.components.log.debug(`could not send ${this.kind.name} records; sending them all again shortly`, { peer, err })
      this.owe(peer)
    }
  }

  /** Everything held, newest first: what matters most arrives first when it takes several batches. */
  private async held (): Promise<Uint8Array[]> {
    const records = await this.kind.held()
    return records.map(signed => ({ signed, sequence: claimedSequence(this.kind, signed) }))
      .sort((a, b) => b.sequence - a.sequence)
      .map(({ signed }) => signed)
  }

  /**
   * Sends records in batches the neighbour takes whole: each waits until its allowance (as we
   * reckon it) holds the batch and a second's refill to spare (its bucket's clock started when
   * our batches reached it, after ours), and is no larger than its batch limit. What does not
   * fit goes as the allowance refills (kind.allowance.perSecond records a second). Ends quietly
   * when the connection closes: the neighbour is sent everything held when it connects again.
   */
  private async sendPaced (connection: Connection, records: Uint8Array[]): Promise<void> {
    const peer = connection.remotePeer.toString()
    const spare = this.kind.allowance.perSecond
    // Never more than the burst less the spare, so the spare fits beside it.
    const most = Math.max(1, this.kind.allowance.burst - spare)
    let next = 0
    while (next < records.length) {
      if (connection.status !== 'open') return
      const left = records.length - next
      // Batches of at least a second's refill (or what is left): not one stream per record.
      const waitMs = this.theirAllowance.msUntil(peer, Math.min(left, spare) + spare)
      if (waitMs > 0) {
        await sleep(waitMs, this.controller.signal)
        continue
      }
      const count = Math.min(left, most, Math.floor(this.theirAllowance.available(peer)) - spare)
      const batch = fitting(records, next, count, this.kind.maxBatchBytes)
      next += batch.length
      await this.sendBatch(connection, batch)
    }
  }

  private async sendBatch (connection: Connection, records: Uint8Array[]): Promise<void> {
    this.theirAllowance.take(connection.remotePeer.toString(), records.length)
    // protons types bytes fields as ArrayBuffer-backed; the encoder only copies them out.
    const batch = RecordBatch.encode({ records: records as Array<Uint8Array<ArrayBuffer>> })
    await sendBatch(connection, this.kind.protocol, batch, { signal: this.controller.signal, acknowledged: true })
  }

  /** The neighbour is owed everything held: a resync is scheduled unless one is owed already. */
  private owe (peer: string): void {
    const owed = this.resyncs.get(peer)
    if (owed !== undefined) {
      // One waiting sends what is current when it runs; one under way may have read it before.
      if (owed.timer === undefined) owed.again = true
      return
    }
    // Never for a peer no longer connected: the map holds connected neighbours only.
    if (this.controller.signal.aborted || this.openConnection(peer) === undefined) return
    this.schedule(peer, { tries: 0, timer: undefined, again: false })
  }

  /** The next try after the delay its tries so far earn. */
  private schedule (peer: string, owed: Resync): void {
    const { firstDelayMs, maxDelayMs } = this.resyncPolicy
    owed.timer = setTimeout(() => {
      owed.timer = undefined
      void this.resync(peer, owed)
    }, Math.min(firstDelayMs * 2 ** owed.tries, maxDelayMs))
    owed.timer.unref()
    this.resyncs.set(peer, owed)
  }

  /** One try of a resync: everything held, as on connect. */
  private async resync (peer: string, owed: Resync): Promise<void> {
    const connection = this.openConnection(peer)
    if (connection === undefined) {
      this.forget(peer)
      return
    }
    owed.tries++
    owed.again = false
    try {
      const records = await this.held()
      if (this.resyncs.get(peer) !== owed) return
      if (records.length > 0) await this.sendPaced(connection, records)
    } catch (err) {
      // Forgotten meanwhile: the neighbour left, or the sync stopped.
      if (this.resyncs.get(peer) !== owed) return
      if (owed.tries >= this.resyncPolicy.maxTries || err instanceof UnsupportedProtocolError) {
        this.resyncs.delete(peer)
        this.components.log.warn(`a neighbour did not take this node's ${this.kind.name} records after ${owed.tries} tries; it is sent them all when it next connects (restarting either daemon does that)`, { peer, err })
        return
      }
      this.components.log.debug(`could not send ${this.kind.name} records again; trying later`, { peer, tries: owed.tries, err })
      this.schedule(peer, owed)
      return
    }
    if (this.resyncs.get(peer) !== owed) return
    if (owed.again) {
      owed.tries = 0
      this.schedule(peer, owed)
    } else {
      this.resyncs.delete(peer)
      this.components.log.debug(`sent every ${this.kind.name} record again to a neighbour that missed some`, { peer, tries: owed.tries })
    }
  }

  private forget (peer: string): void {
    clearTimeout(this.resyncs.get(peer)?.timer)
    this.resyncs.delete(peer)
  }

  private openConnection (peer: string): Connection | undefined {
    return this.components.connections().find(c => c.status === 'open' && c.remotePeer.toString() === peer)
  }
}

/** The sequence a held record claims, to order by; one that does not decode (never, for what we hold) goes last. */
function claimedSequence<V extends SyncedRecord> (kind: RecordKind<V>, signed: Uint8Array): number {
  try {
    return kind.sequence(signed)
  } catch {
    return -Infinity
  }
}

/** The records from `from` on, at most `count` (and at least one), whose batch fits `maxBytes`. */
function fitting (records: Uint8Array[], from: number, count: number, maxBytes: number): Uint8Array[] {
  let bytes = BATCH_OVERHEAD_BYTES
  let end = from
  while (end < records.length && end - from < count) {
    bytes += (records[end] as Uint8Array).byteLength + RECORD_OVERHEAD_BYTES
    if (bytes > maxBytes && end > from) break
    end++
  }
  return records.slice(from, end)
}
