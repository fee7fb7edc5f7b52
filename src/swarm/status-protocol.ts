import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { ProtocolViolationError } from './errors.js'
import { addressPrefix } from './peer-score.js'
import { StatusBatch, type SignedStatus, type StatusRefresh } from './pb/swarm-status.pb.js'
import { RecordAllowance } from './record-allowance.js'
import { StatusBook, type FleetNode, type HeldStatus } from './status-book.js'
import {
  ABSENCE_GRACE_INTERVALS, DEFAULT_STATUS_INTERVAL_MS, DROP_AFTER_INTERVALS, MAX_KNOWN_NODES, MAX_STATUS_CLOCK_AHEAD_MS,
  MAX_STATUS_INTERVAL_MS, MAX_STATUS_STREAMS_PER_CONNECTION, MIN_STATUS_INTERVAL_MS, NEW_PUBLISHERS_BURST, NEW_PUBLISHERS_PER_SECOND, STATUS_PROTOCOL, STATUS_RECORDS_BURST, STATUS_STREAM_PROTOCOL, STATUS_RECORDS_PER_SECOND,
} from './status-constants.js'
import type { StatusGossipComponents, StatusGossipContext, StatusGossipInit } from './status-options.js'
import { StatusOutbox } from './status-outbox.js'
import { statusIntervalMs } from './status-pace.js'
import { type Bytes, decodeStatusBody, encodeStatusBody, signStatus, stampPublisherTail, verifyStatus, verifyStatusRefresh } from './status-record.js'
import { StatusStreams } from './status-streams.js'
import { StatusSync } from './status-sync.js'
import { StatusWitness } from './status-witness.js'

/**
 * /shoal/status/2.0.0 (and 1.0.0): each node signs a small status about itself every period and the fleet
 * passes it on (push gossip, STATUS_FANOUT neighbours per new status, a refresh instead of the
 * body when the neighbour holds it); `view()` is every node this one has heard of. Design and
 * cost: docs/architecture.md, "Fleet view".
 *
 * This class owns the heartbeat and what comes in; its parts own the rest: what goes to which
 * neighbour (status-outbox.ts), the first swap of views with a new neighbour (status-sync.ts),
 * and absence notices (status-witness.ts).
 */
export class StatusGossip {
  readonly book: StatusBook
  readonly peerId: string
  private readonly publisherKey: Bytes
  private readonly now: () => number
  private readonly random: () => number
  private readonly allowance: RecordAllowance
  /** What one neighbour may introduce (StatusGossipContext.newPublishers), resolved once here. */
  private readonly newPublishers: { burst: number, perSecond: number }
  /** Per neighbour: how many nodes this one never heard of it may still introduce. */
  private readonly introductions: RecordAllowance
  /**
   * Per address group (bans' grouping: the /24 or /64, none for loopback): how many new nodes
   * all its neighbours together may still introduce. A key costs nothing, so without it a
   * stranger with N identities on one network introduced N allowances.
   */
  private readonly groupIntroductions: RecordAllowance
  private readonly outbox: StatusOutbox
  private readonly sync: StatusSync
  private readonly witness: StatusWitness
  private readonly streams = new StatusStreams()
  private heartbeatTimer: NodeJS.Timeout | undefined
  /** New nodes dropped unread, past their neighbour's allowance of introductions (tests, and what a flood cost). */
  dropped = 0
  /** Of those, dropped past their address group's shared allowance while the neighbour was within its own (not charged). */
  droppedForGroup = 0
  /** Times a neighbour was charged for what it sent (forged, malformed, too many, too many new nodes). */
  charges = 0
  private controller = new AbortController()
  private topology: string | undefined
  private node: Pick<Libp2p, 'handle' | 'register' | 'unregister'> | undefined

  private readonly init: StatusGossipInit

  constructor (private readonly components: StatusGossipComponents, init: StatusGossipInit = {}) {
    // A neighbour charged here (by any part of the gossip): the nodes only it introduced go first at the cap.
    this.init = { ...init, onInvalid: (peer, why) => { this.charges++; this.book.distrust(peer); init.onInvalid?.(peer, why) } }
    this.now = init.now ?? Date.now
    this.random = init.random ?? Math.random
    this.peerId = peerIdFromPublicKey(components.privateKey.publicKey).toString()
    this.publisherKey = Uint8Array.from(publicKeyToProtobuf(components.privateKey.publicKey))
    this.book = new StatusBook(this.peerId, this.now, init.maxKnownNodes ?? MAX_KNOWN_NODES, init.absenceGraceMs ?? ABSENCE_GRACE_INTERVALS * this.baseIntervalMs)
    this.allowance = new RecordAllowance({ burst: STATUS_RECORDS_BURST, perSecond: STATUS_RECORDS_PER_SECOND, maxPeers: MAX_KNOWN_NODES, now: this.now })
    this.newPublishers = { burst: init.newPublishersBurst ?? NEW_PUBLISHERS_BURST, perSecond: init.newPublishersPerSecond ?? NEW_PUBLISHERS_PER_SECOND }
    this.introductions = new RecordAllowance({ ...this.newPublishers, maxPeers: MAX_KNOWN_NODES, now: this.now })
    this.groupIntroductions = new RecordAllowance({ ...this.newPublishers, maxPeers: MAX_KNOWN_NODES, now: this.now })
    const ctx = this.context()
    this.outbox = new StatusOutbox(ctx)
    this.sync = new StatusSync(ctx, this.outbox)
    this.witness = new StatusWitness(ctx, this.outbox, async (after) => {
      // The refutation is this period's heartbeat: the next one comes a whole period later, so
      // receivers do not drop it as too soon after this one.
      clearTimeout(this.heartbeatTimer)
      await this.heartbeat({ after, urgent: true })
    })
  }

  /**
   * The configured period, before the fleet lengthens it: absence notices are timed by it, since
   * they must stay quick however large the fleet (the adaptive period is hours at 5,000 nodes).
   */
  get baseIntervalMs (): number {
    return Math.max(MIN_STATUS_INTERVAL_MS, this.init.intervalMs ?? DEFAULT_STATUS_INTERVAL_MS)
  }

  /** The current heartbeat period (it grows with the fleet). */
  get intervalMs (): number {
    return statusIntervalMs(this.book.size, this.init.intervalMs)
  }

  /** Before the node starts: the handler and the topology that hands a new neighbour the view. */
  async attach (node: Pick<Libp2p, 'handle' | 'register' | 'unregister'>): Promise<void> {
    this.controller = new AbortController()
    this.node = node
    await node.handle([STATUS_STREAM_PROTOCOL, STATUS_PROTOCOL], (stream, connection) => { this.handle(stream, connection) }, {
      maxInboundStreams: MAX_STATUS_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_STATUS_STREAMS_PER_CONNECTION,
    })
    // A new neighbour gets our digest and answers with what we lack; after that only what
    // changes travels. A neighbour that goes may have stopped: after the witness delay, this
    // node may say it lost it.
    this.topology = await node.register(STATUS_PROTOCOL, {
      onConnect: (peerId) => {
        this.book.markDirect(peerId.toString())
        this.sync.enqueue(peerId.toString())
      },
      onDisconnect: (peerId) => {
        this.sync.answered(peerId.toString())
        this.witness.lost(peerId.toString())
      },
    })
  }

  /** Once the node runs: the first heartbeat now, the next ones every period. */
  async start (): Promise<void> {
    await this.heartbeat()
  }

  stop (): void {
    this.controller.abort(new Error('the status gossip is stopping'))
    clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = undefined
    this.outbox.stop()
    this.streams.stop()
    this.witness.stop()
    this.sync.stop()
    if (this.topology !== undefined) this.node?.unregister(this.topology)
    this.topology = undefined
  }

  view (): FleetNode[] {
    return this.book.view()
  }

  /** A neighbour banned here: the nodes only it introduced go first at the cap. */
  distrust (peer: string): void {
    this.book.distrust(peer)
  }

  /**
   * Signs this node's status now (a heartbeat; also after a change worth telling at once, or to
   * refute a neighbour's notice that it lost this node: then past the sequence the notice names).
   */
  async publish (options: { after?: number, urgent?: boolean } = {}): Promise<void> {
    const signal = this.controller.signal
    const fields = { ...await this.components.source({ signal }), intervalMs: this.intervalMs }
    const body = encodeStatusBody(fields)
    const held = this.book.get(this.peerId)
    // The clock, but always past the last: two heartbeats in one millisecond still order.
    const sequence = Math.max(this.now(), (held?.sequence ?? 0) + 1, (options.after ?? 0) + 1)
    const signed = await signStatus(this.components.privateKey, body, sequence)
    signal.throwIfAborted()
    this.book.accept({
      publisher: this.peerId, publisherKey: this.publisherKey, sequence, bodyHash: signed.bodyHash,
      fields: decodeStatusBody(body, signed.bodyHash), body, stamp: signed.stamp, signature: signed.signature, heardAt: this.now(),
    })
    this.init.onAccepted?.(this.peerId, sequence)
    // Every neighbour gets this node's own heartbeats (the fanout is for relays): a neighbour
    // that later loses this node then names its latest sequence in its absence notice.
    this.outbox.spread(this.peerId, undefined, { everyone: true, urgent: options.urgent })
  }

  private async heartbeat (options: { after?: number, urgent?: boolean } = {}): Promise<void> {
    try {
      await this.publish(options)
    } catch (err) {
      if (this.controller.signal.aborted) return
      this.components.log.warn('could not publish this node\'s status', { err })
    }
    if (this.controller.signal.aborted) return
    this.book.sweep()
    // One chain of heartbeats, also when a refutation ran while a heartbeat was signing.
    clearTimeout(this.heartbeatTimer)
    this.heartbeatTimer = setTimeout(() => { void this.heartbeat() }, this.intervalMs)
    this.heartbeatTimer.unref()
  }

  /** Inbound stream of either version: its batches are applied in order (status-streams.ts). */
  readonly handle = (stream: Stream, connection: Connection): void => {
    const from = connection.remotePeer.toString()
    const group = (this.init.addressGroup ?? addressPrefix)(connection.remoteAddr.toString())
    this.streams.receive(stream, connection, {
      decode: decodeBatch,
      apply: async (batch) => { await this.applyBatch(batch, from, group) },
      // Only what the sender got wrong is charged: a reset or a timeout is what a loaded,
      // honest node's stream does, and charging it banned whole honest fleets under load.
      onInvalid: (err) => { this.init.onInvalid?.(from, `status batch: ${err.message}`) },
      onFailed: (err) => { this.components.log.debug('status batch not received', { from, err }) },
    })
  }

  private async applyBatch (batch: StatusBatch, from: string, group: string | undefined): Promise<void> {
    const count = batch.statuses.length + batch.refreshes.length + batch.notices.length
    let allowed = this.allowance.take(from, count)
    if (allowed < count) this.init.onInvalid?.(from, `sent ${count} statuses, more than its allowance of ${allowed}`)
    let unintroduced = 0
    let overGroup = 0
    for (const signed of batch.statuses) {
      if (allowed-- <= 0) break
      const verdict = this.mayIntroduce(signed, from, group)
      if (verdict === 'neighbour') unintroduced++
      else if (verdict === 'group') overGroup++
      else await this.applyStatus(signed, from)
    }
    if (unintroduced > 0) {
      this.dropped += unintroduced
      this.init.onInvalid?.(from, `introduced ${unintroduced} more nodes than its allowance of new nodes (${this.newPublishers.burst}, then ${this.newPublishers.perSecond} a second)`)
    }
    if (overGroup > 0) {
      // Not charged: an honest node on the same network as a flood's identities relays within
      // its own allowance and cannot know the group's; charging it would ban the network.
      this.dropped += overGroup
      this.droppedForGroup += overGroup
      this.components.log.debug('new nodes dropped: the neighbour\'s address group used its shared allowance of introductions', { from, group, dropped: overGroup })
    }
    for (const refresh of batch.refreshes) {
      if (allowed-- <= 0) break
      await this.applyRefresh(refresh, from)
    }
    for (const notice of batch.notices) {
      if (allowed-- <= 0) break
      await this.witness.applyNotice(notice, from)
    }
    if (batch.digest !== undefined) this.sync.answerDigest(from, batch.digest)
    // After its statuses are applied, so our next digest already names them.
    if (batch.answersDigest) {
      this.sync.answered(from)
      this.init.onSynced?.(from)
    }
  }

  private async applyStatus (signed: SignedStatus, from: string): Promise<void> {
    // Where neighbours share neighbours, a status arrives from several of them: bytes this node
    // verified already need no second signature check (the gateway spent ~100 ms a pull on
    // such repeats), only the note that the sender holds them.
    const held = this.heldCopy(signed)
    if (held !== undefined) {
      this.outbox.noteKnown(from, held.publisher, { sequence: held.sequence, bodyHash: held.bodyHash })
      this.book.heardVia(held.publisher, from)
      return
    }
    let status
    try {
      status = await verifyStatus(signed)
    } catch (err) {
      // A status signed by another key than the node it names lands here: charged to the sender.
      this.components.log.debug('node status refused', { from, err })
      this.init.onInvalid?.(from, err instanceof Error ? err.message : String(err))
      return
    }
    this.outbox.noteKnown(from, status.publisher, { sequence: status.sequence, bodyHash: status.bodyHash })
    if (!this.plausible(status.publisher, status.sequence, from)) return
    this.keep({
      publisher: status.publisher, publisherKey: status.publisherKey, sequence: status.sequence, bodyHash: status.bodyHash,
      fields: status.fields, body: status.body, stamp: status.stamp, signature: status.signature, heardAt: this.heardAt(signed.ageMs),
    }, from)
  }

  /**
   * Whether a status may be read ('yes'): one about a node this node holds, or a new node within
   * both the sender's allowance of introductions and its address group's; else whose allowance
   * it is past. Judged by the key the stamp names, before any verify: a dropped flood costs no
   * signature check and is neither kept nor relayed.
   */
  private mayIntroduce (signed: SignedStatus, from: string, group: string | undefined): 'yes' | 'neighbour' | 'group' {
    const tail = stampPublisherTail(signed.stamp)
    if (tail !== undefined && this.book.byKeyTail(tail) !== undefined) return 'yes'
    if (this.sync.isFirstView(from)) return 'yes'
    if (this.introductions.available(from) < 1) return 'neighbour'
    if (group !== undefined && this.groupIntroductions.take(group, 1) < 1) return 'group'
    this.introductions.take(from, 1)
    return 'yes'
  }

  /** The status held here when `signed` is that very status, byte for byte. */
  private heldCopy (signed: SignedStatus): HeldStatus | undefined {
    const tail = stampPublisherTail(signed.stamp)
    const held = tail === undefined ? undefined : this.book.byKeyTail(tail)
    if (held === undefined) return undefined
    const same = Buffer.compare(held.stamp, signed.stamp) === 0 && Buffer.compare(held.signature, signed.signature) === 0 && Buffer.compare(held.body, signed.body) === 0
    return same ? held : undefined
  }

  private async applyRefresh (refresh: StatusRefresh, from: string): Promise<void> {
    const held = this.book.byKeyTail(refresh.publisherTail)
    const sequence = Number(refresh.sequence)
    // Unknown body or nothing new: the sender's knowledge of us was out of date, not a fault.
    if (held === undefined || sequence <= held.sequence) return
    const stamp = await verifyStatusRefresh(held, sequence, refresh.signature)
    if (stamp === undefined) {
      this.components.log.debug('node status refresh did not verify against the held body', { from, publisher: held.publisher })
      return
    }
    this.outbox.noteKnown(from, held.publisher, { sequence, bodyHash: held.bodyHash })
    if (!this.plausible(held.publisher, sequence, from)) return
    this.keep({ ...held, sequence, stamp, signature: refresh.signature, heardAt: this.heardAt(refresh.ageMs) }, from)
  }

  /** Never another's word about this node, and no sequence far ahead of our clock. */
  private plausible (publisher: string, sequence: number, from: string): boolean {
    if (publisher === this.peerId) return false
    if (sequence > this.now() + MAX_STATUS_CLOCK_AHEAD_MS) {
      this.components.log.debug('node status refused: its sequence is ahead of this node\'s clock', { from, publisher, sequence })
      return false
    }
    return true
  }

  private keep (status: HeldStatus, from: string): void {
    const absence = this.book.get(status.publisher)?.absence
    if (this.book.accept(status, from) !== 'accepted') return
    this.init.onAccepted?.(status.publisher, status.sequence)
    const refuted = absence !== undefined && this.book.get(status.publisher)?.absence === undefined
    // A heartbeat that refutes an absence notice travels as fast as the notice did, and back
    // along every link the notice took here, so it reaches every node that holds the notice.
    this.outbox.spread(status.publisher, from, { urgent: refuted, also: refuted ? absence.peers : undefined })
  }

  private heardAt (ageMs: number): number {
    // Relayed a long time after it was heard first: as old as its relays say, at most until dropped.
    return this.now() - Math.min(ageMs, DROP_AFTER_INTERVALS * MAX_STATUS_INTERVAL_MS)
  }

  private neighbours (): string[] {
    const peers = new Set<string>()
    for (const c of this.components.connections()) if (c.status === 'open') peers.add(c.remotePeer.toString())
    return [...peers]
  }

  /** What the parts see of this gossip: live, so a new attach's signal and a grown fleet's period show through. */
  private context (): StatusGossipContext {
    const signal = (): AbortSignal => this.controller.signal
    const baseIntervalMs = (): number => this.baseIntervalMs
    const intervalMs = (): number => this.intervalMs
    return {
      components: this.components,
      init: this.init,
      book: this.book,
      newPublishers: this.newPublishers,
      peerId: this.peerId,
      publisherKey: this.publisherKey,
      get signal () { return signal() },
      get baseIntervalMs () { return baseIntervalMs() },
      get intervalMs () { return intervalMs() },
      now: this.now,
      random: this.random,
      neighbours: () => this.neighbours(),
      send: async (connection, batch) => { await this.streams.send(connection, StatusBatch.encode(batch), { signal: this.controller.signal }) },
      heardAt: (ageMs) => this.heardAt(ageMs),
    }
  }
}

/** A batch as received; an undecodable one is the sender's fault. */
function decodeBatch (frame: Uint8Array): StatusBatch {
  try {
    return StatusBatch.decode(frame, { limits: { statuses: STATUS_RECORDS_BURST, refreshes: STATUS_RECORDS_BURST, notices: STATUS_RECORDS_BURST } })
  } catch (err) {
    throw new ProtocolViolationError(`a status batch does not decode: ${err instanceof Error ? err.message : String(err)}`)
  }
}
