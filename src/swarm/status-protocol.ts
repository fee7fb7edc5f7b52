import type { Connection, Libp2p, PrivateKey, Stream } from '@libp2p/interface'
import { publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { receiveBatch, sendBatch } from './batch-stream.js'
import { MessageTooLargeError, ProtocolViolationError } from './errors.js'
import { StatusBatch, type AbsenceNotice, type SignedStatus, type StatusRefresh } from './pb/swarm-status.pb.js'
import { RecordAllowance } from './record-allowance.js'
import { signAbsence, verifyAbsence } from './status-absence.js'
import { encodeDigest, readDigest } from './status-digest.js'
import { StatusBook, type FleetNode, type HeldStatus } from './status-book.js'
import {
  ABSENCE_GRACE_INTERVALS, ABSENCE_NOTICE_WIRE_BYTES, ABSENCE_NOTICES_BURST, ABSENCE_NOTICES_PER_SECOND, ABSENCE_QUORUM, ABSENCE_WITNESS_DELAY_INTERVALS,
  DEFAULT_STATUS_INTERVAL_MS, DROP_AFTER_INTERVALS, MAX_KNOWN_NODES, MAX_PENDING_WITNESS, MAX_STATUS_BATCH_BYTES, MAX_STATUS_CLOCK_AHEAD_MS,
  MAX_STATUS_FLUSH_DELAY_MS, MAX_STATUS_INTERVAL_MS, MAX_STATUS_STREAMS_PER_CONNECTION, MIN_STATUS_INTERVAL_MS,
  STATUS_BUDGET_BYTES_PER_SECOND, STATUS_FANOUT, STATUS_RECORDS_BURST, STATUS_RECORDS_PER_SECOND, STATUS_REFRESH_WIRE_BYTES, URGENT_FLUSH_DELAY_MS,
  DIGEST_ANSWER_MIN_INTERVAL_MS, STATUS_SYNC_TIMEOUT_MS,
} from './status-constants.js'
import { type Bytes, decodeStatusBody, encodeStatusBody, signStatus, verifyStatus, verifyStatusRefresh, type NodeStatusFields } from './status-record.js'

export const STATUS_PROTOCOL = '/shoal/status/1.0.0'

/** What the node says about itself each heartbeat (the period is the gossip's to fill in). */
export type StatusSource = (options: { signal?: AbortSignal }) => Promise<Omit<NodeStatusFields, 'intervalMs'>>

export interface StatusGossipComponents {
  privateKey: PrivateKey
  connections: () => Connection[]
  source: StatusSource
  /**
   * Whether a neighbour whose connection dropped still answers a dial (or is not ours to judge,
   * e.g. banned here). Without it a lost connection is taken as a lost node.
   */
  probe?: (peer: string, options: { signal: AbortSignal }) => Promise<boolean>
  log: { debug: (msg: string, fields?: Record<string, unknown>) => void, warn: (msg: string, fields?: Record<string, unknown>) => void }
}

export interface StatusGossipInit {
  /** The heartbeat period of a small fleet (DEFAULT_STATUS_INTERVAL_MS); it grows with the fleet (statusIntervalMs). */
  intervalMs?: number
  /** A neighbour sent a forged or malformed status, or too many: the swarm charges it (peer-score.ts). */
  onInvalid?: (peer: string, why: string) => void
  /** A status entered the view (a new node, a heartbeat or a change). */
  onAccepted?: (publisher: string, sequence: number) => void
  /** A neighbour's notice that it lost a node entered the view (this node's own too). */
  onAbsence?: (subject: string, witness: string) => void
  /**
   * Absence notices' timing, by default from the configured period (ABSENCE_GRACE_INTERVALS,
   * ABSENCE_WITNESS_DELAY_INTERVALS); tests set them apart from the heartbeat period.
   */
  absenceGraceMs?: number
  witnessDelayMs?: number
  now?: () => number
  random?: () => number
}

/** Each step of the adaptive period is a quarter longer than the last (see statusIntervalMs). */
const INTERVAL_STEP = 1.25

/**
 * The heartbeat period for a fleet of `knownNodes`: the configured one, lengthened in steps of
 * a quarter until this node's share of everyone's refreshes (each received about STATUS_FANOUT
 * times) fits STATUS_BUDGET_BYTES_PER_SECOND. In steps, not an exact fit, so a fleet whose size
 * wobbles does not change each node's promised period (its body) at every heartbeat. Shared
 * with scripts/simulate-gossip.ts.
 */
export function statusIntervalMs (knownNodes: number, configuredMs = DEFAULT_STATUS_INTERVAL_MS): number {
  const neededMs = knownNodes * STATUS_FANOUT * STATUS_REFRESH_WIRE_BYTES * 1000 / STATUS_BUDGET_BYTES_PER_SECOND
  let interval = Math.max(MIN_STATUS_INTERVAL_MS, configuredMs)
  while (interval < neededMs && interval * INTERVAL_STEP <= MAX_STATUS_INTERVAL_MS) interval *= INTERVAL_STEP
  return Math.round(interval)
}

/**
 * Up to `fanout` of `candidates`, chosen at random (a partial Fisher–Yates shuffle): push
 * gossip reaches everyone with high probability only when targets are random. Shared with the simulator.
 */
export function pickTargets<T> (candidates: T[], fanout: number, random: () => number): T[] {
  const pool = [...candidates]
  const picked: T[] = []
  while (picked.length < fanout && pool.length > 0) {
    const i = Math.floor(random() * pool.length)
    picked.push(pool[i] as T)
    pool[i] = pool[pool.length - 1] as T
    pool.pop()
  }
  return picked
}

interface Known { sequence: number, bodyHash: string }

/** A notice to pass on: which node was lost, by which witness. */
interface NoticeRef { subject: string, witness: string }

/**
 * /shoal/status/1.0.0: each node signs a small status about itself every period and the fleet
 * passes it on (push gossip, STATUS_FANOUT neighbours per new status, a refresh instead of the
 * body when the neighbour holds it); `view()` is every node this one has heard of. Design and
 * cost: docs/architecture.md, "Fleet view".
 */
export class StatusGossip {
  readonly book: StatusBook
  readonly peerId: string
  private readonly publisherKey: Bytes
  private readonly now: () => number
  private readonly random: () => number
  /** neighbour → publisher → what that neighbour is known to hold (it sent it, or we did). */
  private readonly knows = new Map<string, Map<string, Known>>()
  /** neighbour → publishers to send it at the next flush. */
  private readonly pending = new Map<string, Set<string>>()
  /** neighbour → absence notices to send it at the next flush, by `subject witness`. */
  private readonly pendingNotices = new Map<string, Map<string, NoticeRef>>()
  private readonly allowance: RecordAllowance
  /** Per witness (not per sender): how many of its absence notices this node still accepts. */
  private readonly noticeAllowance: RecordAllowance
  /** Lost neighbours waiting out their witness delay. */
  private readonly witnessTimers = new Map<string, NodeJS.Timeout>()
  private lastRefutedAt = -Infinity
  /** New neighbours to send our digest to, one at a time (status-digest.ts). */
  private readonly syncQueue: string[] = []
  private syncing = false
  /** neighbour → resolves when its answer to our digest arrived (or it left). */
  private readonly syncWaiters = new Map<string, () => void>()
  /** Neighbours whose digest the next flush answers (its last batch says so). */
  private readonly pendingAnswers = new Set<string>()
  /** When each neighbour's digest was last answered: a whole view is not sent again on demand. */
  private readonly answeredAt = new Map<string, number>()
  private heartbeatTimer: NodeJS.Timeout | undefined
  private flushTimer: NodeJS.Timeout | undefined
  private flushAt = Infinity
  private controller = new AbortController()
  private topology: string | undefined
  private node: Pick<Libp2p, 'handle' | 'register' | 'unregister'> | undefined

  constructor (private readonly components: StatusGossipComponents, private readonly init: StatusGossipInit = {}) {
    this.now = init.now ?? Date.now
    this.random = init.random ?? Math.random
    this.peerId = peerIdFromPublicKey(components.privateKey.publicKey).toString()
    this.publisherKey = Uint8Array.from(publicKeyToProtobuf(components.privateKey.publicKey))
    this.book = new StatusBook(this.peerId, this.now, MAX_KNOWN_NODES, init.absenceGraceMs ?? ABSENCE_GRACE_INTERVALS * this.baseIntervalMs)
    this.allowance = new RecordAllowance({ burst: STATUS_RECORDS_BURST, perSecond: STATUS_RECORDS_PER_SECOND, maxPeers: MAX_KNOWN_NODES, now: this.now })
    this.noticeAllowance = new RecordAllowance({ burst: ABSENCE_NOTICES_BURST, perSecond: ABSENCE_NOTICES_PER_SECOND, maxPeers: MAX_KNOWN_NODES, now: this.now })
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
    await node.handle(STATUS_PROTOCOL, (stream, connection) => { void this.handle(stream, connection) }, {
      maxInboundStreams: MAX_STATUS_STREAMS_PER_CONNECTION, maxOutboundStreams: MAX_STATUS_STREAMS_PER_CONNECTION,
    })
    // A new neighbour gets our digest and answers with what we lack; after that only what
    // changes travels. A neighbour that goes may have stopped: after the witness delay, this
    // node may say it lost it.
    this.topology = await node.register(STATUS_PROTOCOL, {
      onConnect: (peerId) => { this.enqueueSync(peerId.toString()) },
      onDisconnect: (peerId) => {
        this.syncWaiters.get(peerId.toString())?.()
        this.lost(peerId.toString())
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
    clearTimeout(this.flushTimer)
    for (const timer of this.witnessTimers.values()) clearTimeout(timer)
    this.witnessTimers.clear()
    for (const wake of this.syncWaiters.values()) wake()
    this.syncQueue.length = 0
    this.heartbeatTimer = undefined
    this.flushTimer = undefined
    this.flushAt = Infinity
    if (this.topology !== undefined) this.node?.unregister(this.topology)
    this.topology = undefined
  }

  view (): FleetNode[] {
    return this.book.view()
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
    this.spread(this.peerId, undefined, { everyone: true, urgent: options.urgent })
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

  /** Inbound stream: one batch, then the sender closes. */
  readonly handle = async (stream: Stream, connection: Connection): Promise<void> => {
    const from = connection.remotePeer.toString()
    let batch: StatusBatch
    try {
      batch = await receiveBatch(stream, { maxBytes: MAX_STATUS_BATCH_BYTES, decode: decodeBatch })
    } catch (err) {
      // Only what the sender got wrong is charged: a reset or a timeout is what a loaded,
      // honest node's stream does, and charging it banned whole honest fleets under load.
      if (err instanceof ProtocolViolationError || err instanceof MessageTooLargeError) this.init.onInvalid?.(from, `status batch: ${err.message}`)
      else this.components.log.debug('status batch not received', { from, err })
      return
    }
    const count = batch.statuses.length + batch.refreshes.length + batch.notices.length
    let allowed = this.allowance.take(from, count)
    if (allowed < count) this.init.onInvalid?.(from, `sent ${count} statuses, more than its allowance of ${allowed}`)
    for (const signed of batch.statuses) {
      if (allowed-- <= 0) break
      await this.applyStatus(signed, from)
    }
    for (const refresh of batch.refreshes) {
      if (allowed-- <= 0) break
      await this.applyRefresh(refresh, from)
    }
    for (const notice of batch.notices) {
      if (allowed-- <= 0) break
      await this.applyNotice(notice, from)
    }
    if (batch.digest !== undefined) this.answerDigest(from, batch.digest)
    // After its statuses are applied, so our next digest already names them.
    if (batch.answersDigest) this.syncWaiters.get(from)?.()
  }

  /**
   * A new neighbour told us what it holds: note it (later heartbeats then go as refreshes) and
   * send what it lacks or holds older, ending with a batch that says the answer is complete.
   * Once per neighbour per DIGEST_ANSWER_MIN_INTERVAL_MS: asking again gets an empty answer, so
   * a digest cannot be used to make this node send its whole view over and over.
   */
  private answerDigest (from: string, digest: NonNullable<StatusBatch['digest']>): void {
    let entries
    try {
      entries = readDigest(digest)
    } catch (err) {
      this.init.onInvalid?.(from, `status digest: ${err instanceof Error ? err.message : String(err)}`)
      return
    }
    const now = this.now()
    const last = this.answeredAt.get(from)
    if (last === undefined || now - last >= DIGEST_ANSWER_MIN_INTERVAL_MS) {
      this.answeredAt.delete(from)
      this.answeredAt.set(from, now)
      if (this.answeredAt.size > MAX_KNOWN_NODES) this.answeredAt.delete(this.answeredAt.keys().next().value as string)
      for (const entry of entries) {
        const held = this.book.byKeyTail(entry.tail)
        if (held !== undefined) this.noteKnown(from, held.publisher, { sequence: entry.sequence, bodyHash: held.bodyHash.startsWith(entry.bodyPrefix) ? held.bodyHash : '' })
      }
      this.queueAll(from)
    }
    this.pendingAnswers.add(from)
    this.scheduleFlush(true)
  }

  private enqueueSync (peer: string): void {
    if (!this.syncQueue.includes(peer)) this.syncQueue.push(peer)
    void this.pumpSync()
  }

  /**
   * Sends our digest to one new neighbour at a time and waits for its answer before the next:
   * a joining node takes the fleet's view from its first neighbour, and from the others only
   * what that one lacked (a new node on 20 neighbours took 20 whole views before: ~60 MiB at 5,000 nodes).
   */
  private async pumpSync (): Promise<void> {
    if (this.syncing) return
    this.syncing = true
    const signal = this.controller.signal
    try {
      while (this.syncQueue.length > 0 && !signal.aborted) {
        const peer = this.syncQueue.shift() as string
        const connection = this.components.connections().find(c => c.status === 'open' && c.remotePeer.toString() === peer)
        if (connection === undefined) continue
        let timer: NodeJS.Timeout | undefined
        const answered = new Promise<void>(resolve => {
          this.syncWaiters.set(peer, resolve)
          // A neighbour that never answers (an older version, a stalled one) holds up the others this long at most.
          timer = setTimeout(resolve, STATUS_SYNC_TIMEOUT_MS)
        })
        try {
          await sendBatch(connection, STATUS_PROTOCOL, StatusBatch.encode({ digest: encodeDigest(this.book.all()) }), { signal })
          await answered
        } catch (err) {
          this.components.log.debug('could not send a status digest', { peer, err })
        } finally {
          clearTimeout(timer)
          this.syncWaiters.delete(peer)
        }
      }
    } finally {
      this.syncing = false
    }
  }

  /**
   * A witness's signed word that it lost a node: recorded (the node shows stale after the grace
   * unless it speaks again) and passed on. About this node itself: refuted with a heartbeat.
   */
  private async applyNotice (notice: AbsenceNotice, from: string): Promise<void> {
    const witness = this.book.byKeyTail(notice.witnessTail)
    const subject = this.book.byKeyTail(notice.subjectTail)
    const subjectSequence = Number(notice.subjectSequence)
    // Nodes this one never heard of, or a sequence from the future (it would outlive a refutation).
    if (witness === undefined || subject === undefined || subjectSequence > this.now()) return
    if (subject.publisher === this.peerId) {
      if (witness.publisher === this.peerId || this.now() - this.lastRefutedAt < this.baseIntervalMs / 2) return
      if (!await verifyAbsence({ witnessKey: witness.publisherKey, subjectKey: subject.publisherKey, subjectSequence }, notice.signature)) return
      this.lastRefutedAt = this.now()
      this.components.log.debug('a neighbour reported losing this node: refuting with a heartbeat', { witness: witness.publisher, from })
      // The refutation is this period's heartbeat: the next one comes a whole period later, so
      // receivers do not drop it as too soon after this one.
      clearTimeout(this.heartbeatTimer)
      await this.heartbeat({ after: subjectSequence, urgent: true })
      return
    }
    if (this.book.absenceVerdict(subject.publisher, witness.publisher, subjectSequence) !== 'new') return
    if (this.noticeAllowance.take(witness.publisher, 1) < 1) return
    const signature = notice.signature
    if (!await verifyAbsence({ witnessKey: witness.publisherKey, subjectKey: subject.publisherKey, subjectSequence }, signature)) {
      this.components.log.debug('absence notice refused: its signature is not the witness\'s', { from, witness: witness.publisher })
      this.init.onInvalid?.(from, 'an absence notice whose signature is not its witness\'s')
      return
    }
    // Checked again: another notice may have landed while this one verified.
    if (this.book.absenceVerdict(subject.publisher, witness.publisher, subjectSequence) !== 'new') return
    this.book.addAbsence(subject.publisher, subjectSequence, { witness: witness.publisher, witnessKey: witness.publisherKey, signature, signedAt: this.heardAt(notice.ageMs) })
    this.book.get(subject.publisher)?.absence?.peers.add(from)
    this.init.onAbsence?.(subject.publisher, witness.publisher)
    this.spreadNotice({ subject: subject.publisher, witness: witness.publisher }, from)
  }

  /** A neighbour's last connection closed: after a random delay, say so unless it came back or others did. */
  private lost (peer: string): void {
    const held = this.book.get(peer)
    if (this.controller.signal.aborted || held === undefined || this.witnessTimers.has(peer) || this.witnessTimers.size >= MAX_PENDING_WITNESS) return
    const delay = this.random() * (this.init.witnessDelayMs ?? ABSENCE_WITNESS_DELAY_INTERVALS * this.baseIntervalMs)
    const timer = setTimeout(() => {
      this.witnessTimers.delete(peer)
      void this.witness(peer, held.sequence).catch((err: unknown) => {
        if (!this.controller.signal.aborted) this.components.log.debug('could not report a lost neighbour', { peer, err })
      })
    }, delay)
    timer.unref()
    this.witnessTimers.set(peer, timer)
  }

  private async witness (peer: string, sequenceAtLoss: number): Promise<void> {
    const signal = this.controller.signal
    const held = this.book.get(peer)
    // Heard from since (through others), back as a neighbour, or enough witnesses spoke already.
    if (held === undefined || held.sequence > sequenceAtLoss || this.neighbours().includes(peer)) return
    if ((held.absence?.subjectSequence ?? -1) >= held.sequence && (held.absence?.witnesses.length ?? 0) >= ABSENCE_QUORUM) return
    if (await this.components.probe?.(peer, { signal }) === true) return
    signal.throwIfAborted()
    // A node that lost every neighbour is more likely cut off itself than surrounded by the dead.
    if (this.neighbours().length === 0) return
    const now = this.book.get(peer)
    if (now === undefined || now.sequence !== held.sequence || this.book.absenceVerdict(peer, this.peerId, held.sequence) !== 'new') return
    const signature = await signAbsence(this.components.privateKey, held.publisherKey, held.sequence)
    signal.throwIfAborted()
    this.components.log.debug('reporting a lost neighbour', { peer, sequence: held.sequence })
    this.book.addAbsence(peer, held.sequence, { witness: this.peerId, witnessKey: this.publisherKey, signature, signedAt: this.now() })
    this.init.onAbsence?.(peer, this.peerId)
    this.spreadNotice({ subject: peer, witness: this.peerId })
  }

  private async applyStatus (signed: SignedStatus, from: string): Promise<void> {
    let status
    try {
      status = await verifyStatus(signed)
    } catch (err) {
      // A status signed by another key than the node it names lands here: charged to the sender.
      this.components.log.debug('node status refused', { from, err })
      this.init.onInvalid?.(from, err instanceof Error ? err.message : String(err))
      return
    }
    this.noteKnown(from, status.publisher, { sequence: status.sequence, bodyHash: status.bodyHash })
    if (!this.plausible(status.publisher, status.sequence, from)) return
    this.keep({
      publisher: status.publisher, publisherKey: status.publisherKey, sequence: status.sequence, bodyHash: status.bodyHash,
      fields: status.fields, body: status.body, stamp: status.stamp, signature: status.signature, heardAt: this.heardAt(signed.ageMs),
    }, from)
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
    this.noteKnown(from, held.publisher, { sequence, bodyHash: held.bodyHash })
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
    if (this.book.accept(status) !== 'accepted') return
    this.init.onAccepted?.(status.publisher, status.sequence)
    const refuted = absence !== undefined && this.book.get(status.publisher)?.absence === undefined
    // A heartbeat that refutes an absence notice travels as fast as the notice did, and back
    // along every link the notice took here, so it reaches every node that holds the notice.
    this.spread(status.publisher, from, { urgent: refuted, also: refuted ? absence.peers : undefined })
  }

  private heardAt (ageMs: number): number {
    // Relayed a long time after it was heard first: as old as its relays say, at most until dropped.
    return this.now() - Math.min(ageMs, DROP_AFTER_INTERVALS * MAX_STATUS_INTERVAL_MS)
  }

  private noteKnown (neighbour: string, publisher: string, known: Known): void {
    let map = this.knows.get(neighbour)
    if (map === undefined) {
      map = new Map()
      this.knows.set(neighbour, map)
    }
    if ((map.get(publisher)?.sequence ?? -1) < known.sequence) map.set(publisher, known)
    if (map.size > MAX_KNOWN_NODES) {
      const first = map.keys().next().value
      if (first !== undefined) map.delete(first)
    }
  }

  /** Queues a status for STATUS_FANOUT random neighbours (or all) that are not known to hold it. */
  private spread (publisher: string, except?: string, options: { everyone?: boolean, urgent?: boolean, also?: ReadonlySet<string> } = {}): void {
    const held = this.book.get(publisher)
    if (held === undefined) return
    const candidates = this.neighbours().filter(n => n !== except && (this.knows.get(n)?.get(publisher)?.sequence ?? -1) < held.sequence)
    const targets = options.everyone === true ? candidates : pickTargets(candidates, STATUS_FANOUT, this.random)
    for (const n of candidates) if (options.also?.has(n) === true && !targets.includes(n)) targets.push(n)
    for (const n of targets) this.queue(n, publisher, options.urgent === true)
  }

  /**
   * Queues an absence notice for STATUS_FANOUT random neighbours other than its sender, and for
   * the node it is about when that is a neighbour here: alive, it refutes the notice at once.
   */
  private spreadNotice (notice: NoticeRef, except?: string): void {
    const neighbours = this.neighbours()
    const candidates = neighbours.filter(n => n !== except && n !== notice.subject)
    const targets = pickTargets(candidates, STATUS_FANOUT, this.random)
    if (notice.subject !== except && neighbours.includes(notice.subject)) targets.push(notice.subject)
    const peers = this.book.get(notice.subject)?.absence?.peers
    for (const n of targets) {
      peers?.add(n)
      this.queueNotice(n, notice)
    }
  }

  private queueAll (neighbour: string): void {
    for (const held of this.book.all()) {
      this.queue(neighbour, held.publisher, false)
      // What this node holds against a node travels with it, so a newcomer marks it stale too.
      for (const w of held.absence?.witnesses ?? []) this.queueNotice(neighbour, { subject: held.publisher, witness: w.witness })
    }
  }

  private queue (neighbour: string, publisher: string, urgent: boolean): void {
    let set = this.pending.get(neighbour)
    if (set === undefined) {
      set = new Set()
      this.pending.set(neighbour, set)
    }
    set.add(publisher)
    this.scheduleFlush(urgent)
  }

  private queueNotice (neighbour: string, notice: NoticeRef): void {
    let map = this.pendingNotices.get(neighbour)
    if (map === undefined) {
      map = new Map()
      this.pendingNotices.set(neighbour, map)
    }
    map.set(`${notice.subject} ${notice.witness}`, notice)
    this.scheduleFlush(true)
  }

  /** Batches for a tenth of the period (at most MAX_STATUS_FLUSH_DELAY_MS), or URGENT_FLUSH_DELAY_MS for notices and refutations. */
  private scheduleFlush (urgent: boolean): void {
    if (this.controller.signal.aborted) return
    const delay = Math.min(MAX_STATUS_FLUSH_DELAY_MS, this.intervalMs / 10, urgent ? URGENT_FLUSH_DELAY_MS : Infinity)
    const at = this.now() + delay
    if (this.flushTimer !== undefined && this.flushAt <= at) return
    clearTimeout(this.flushTimer)
    this.flushAt = at
    this.flushTimer = setTimeout(() => { this.flushTimer = undefined; this.flushAt = Infinity; void this.flush() }, delay)
    this.flushTimer.unref()
  }

  private neighbours (): string[] {
    const peers = new Set<string>()
    for (const c of this.components.connections()) if (c.status === 'open') peers.add(c.remotePeer.toString())
    return [...peers]
  }

  private async flush (): Promise<void> {
    const connections = new Map<string, Connection>()
    for (const c of this.components.connections()) if (c.status === 'open') connections.set(c.remotePeer.toString(), c)
    // Forget what departed neighbours held: their knowledge is the only per-neighbour state.
    for (const n of this.knows.keys()) if (!connections.has(n)) this.knows.delete(n)
    const work = new Map<string, { publishers: Set<string>, notices: NoticeRef[] }>()
    for (const neighbour of this.pendingAnswers) work.set(neighbour, { publishers: new Set(), notices: [] })
    for (const [neighbour, publishers] of this.pending) work.set(neighbour, { publishers, notices: [] })
    for (const [neighbour, notices] of this.pendingNotices) {
      const entry = work.get(neighbour) ?? { publishers: new Set<string>(), notices: [] }
      entry.notices = [...notices.values()]
      work.set(neighbour, entry)
    }
    const answers = new Set(this.pendingAnswers)
    this.pending.clear()
    this.pendingNotices.clear()
    this.pendingAnswers.clear()
    await Promise.allSettled([...work].map(async ([neighbour, { publishers, notices }]) => {
      const connection = connections.get(neighbour)
      if (connection !== undefined) await this.sendTo(connection, neighbour, publishers, notices, answers.has(neighbour))
    }))
  }

  private async sendTo (connection: Connection, neighbour: string, publishers: Set<string>, notices: NoticeRef[], answersDigest = false): Promise<void> {
    const batches: StatusBatch[] = []
    let batch: StatusBatch = { statuses: [], refreshes: [], notices: [], answersDigest: false }
    let bytes = 0
    const now = this.now()
    for (const publisher of publishers) {
      const held = this.book.get(publisher)
      if (held === undefined) continue
      const known = this.knows.get(neighbour)?.get(publisher)
      if (known !== undefined && known.sequence >= held.sequence) continue
      const ageMs = Math.min(0xffffffff, Math.max(0, now - held.heardAt))
      if (known?.bodyHash === held.bodyHash) {
        batch.refreshes.push({ publisherTail: Uint8Array.from(held.publisherKey.subarray(-8)), sequence: BigInt(held.sequence), signature: held.signature, ageMs })
        bytes += STATUS_REFRESH_WIRE_BYTES
      } else {
        batch.statuses.push({ stamp: held.stamp, signature: held.signature, body: held.body, ageMs })
        bytes += held.stamp.byteLength + held.signature.byteLength + held.body.byteLength + 16
      }
      this.noteKnown(neighbour, publisher, { sequence: held.sequence, bodyHash: held.bodyHash })
      if (bytes > MAX_STATUS_BATCH_BYTES - 16 * 1024) {
        batches.push(batch)
        batch = { statuses: [], refreshes: [], notices: [], answersDigest: false }
        bytes = 0
      }
    }
    // Notices after the statuses they name, so a newcomer holds both keys when it reads them.
    for (const { subject, witness } of notices) {
      const held = this.book.get(subject)
      const w = held?.absence?.witnesses.find(x => x.witness === witness)
      if (held?.absence === undefined || w === undefined) continue
      batch.notices.push({
        witnessTail: Uint8Array.from(w.witnessKey.subarray(-8)), subjectTail: Uint8Array.from(held.publisherKey.subarray(-8)),
        subjectSequence: BigInt(held.absence.subjectSequence), signature: w.signature, ageMs: Math.min(0xffffffff, Math.max(0, now - w.signedAt)),
      })
      bytes += ABSENCE_NOTICE_WIRE_BYTES
      if (bytes > MAX_STATUS_BATCH_BYTES - 16 * 1024) {
        batches.push(batch)
        batch = { statuses: [], refreshes: [], notices: [], answersDigest: false }
        bytes = 0
      }
    }
    if (batch.statuses.length + batch.refreshes.length + batch.notices.length > 0 || answersDigest) batches.push(batch)
    batch.answersDigest = answersDigest
    for (const b of batches) {
      try {
        await sendBatch(connection, STATUS_PROTOCOL, StatusBatch.encode(b), { signal: this.controller.signal })
      } catch (err) {
        // Lost with the connection; the next heartbeat (or the next connect's full view) repairs it.
        this.components.log.debug('could not send node statuses', { peer: neighbour, err })
        this.knows.delete(neighbour)
        return
      }
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
