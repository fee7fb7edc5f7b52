import type { Connection } from '@libp2p/interface'
import { StatusBatch } from './pb/swarm-status.pb.js'
import { RecordAllowance } from './record-allowance.js'
import { RecentMap } from '../recent/index.js'
import { ABSENCE_NOTICE_WIRE_BYTES, MAX_KNOWN_NODES, MAX_STATUS_BATCH_BYTES, STATUS_FANOUT, STATUS_REFRESH_WIRE_BYTES, URGENT_FLUSH_DELAY_MS } from './status-constants.js'
import type { StatusGossipContext } from './status-options.js'
import { pickTargets, statusFlushDelayMs } from './status-pace.js'

/** What a neighbour is known to hold of one publisher. */
export interface Known { sequence: number, bodyHash: string }

/** A notice to pass on: which node was lost, by which witness. */
export interface NoticeRef { subject: string, witness: string }

/**
 * What goes to which neighbour: statuses and absence notices are queued per neighbour, left out
 * where the neighbour is known to hold them already, and sent in batches at the next flush — a
 * third of the period later, or URGENT_FLUSH_DELAY_MS for notices and refutations. A status the
 * neighbour holds the body of travels as a refresh.
 */
export class StatusOutbox {
  /** neighbour → publisher → what that neighbour is known to hold (it sent it, or we did). */
  private readonly knows = new Map<string, RecentMap<string, Known>>()
  /** neighbour → publishers to send it at the next flush. */
  private readonly pending = new Map<string, Set<string>>()
  /** neighbour → absence notices to send it at the next flush, by `subject witness`. */
  private readonly pendingNotices = new Map<string, Map<string, NoticeRef>>()
  /** Neighbours whose digest the next flush answers (its last batch says so). */
  private readonly pendingAnswers = new Set<string>()
  /** Of those, neighbours whose digest named only themselves: the answer is their first view, not introductions. */
  private readonly firstViews = new Set<string>()
  /**
   * Nodes each neighbour is not known to hold that we may still send it: its allowance of
   * introductions as it keeps it (status-protocol.ts), nine tenths of it so that batches a flush
   * held back and then sent close together never overdraw it. Past it a status waits for a
   * later flush: relaying what two strangers introduced here must not get this node charged.
   */
  private readonly introductions: RecordAllowance
  private flushTimer: NodeJS.Timeout | undefined
  private flushAt = Infinity

  constructor (private readonly ctx: StatusGossipContext) {
    this.introductions = new RecordAllowance({ burst: ctx.newPublishers.burst * 0.9, perSecond: ctx.newPublishers.perSecond * 0.9, maxPeers: MAX_KNOWN_NODES, now: ctx.now })
  }

  stop (): void {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    this.flushAt = Infinity
  }

  noteKnown (neighbour: string, publisher: string, known: Known): void {
    let map = this.knows.get(neighbour)
    if (map === undefined) {
      map = new RecentMap(MAX_KNOWN_NODES)
      this.knows.set(neighbour, map)
    }
    if ((map.get(publisher)?.sequence ?? -1) < known.sequence) map.set(publisher, known)
  }

  /** Queues a status for STATUS_FANOUT random neighbours (or all) that are not known to hold it. */
  spread (publisher: string, except?: string, options: { everyone?: boolean, urgent?: boolean, also?: ReadonlySet<string> } = {}): void {
    const held = this.ctx.book.get(publisher)
    if (held === undefined) return
    const candidates = this.ctx.neighbours().filter(n => n !== except && (this.knows.get(n)?.get(publisher)?.sequence ?? -1) < held.sequence)
    const targets = options.everyone === true ? candidates : pickTargets(candidates, STATUS_FANOUT, this.ctx.random)
    for (const n of candidates) if (options.also?.has(n) === true && !targets.includes(n)) targets.push(n)
    for (const n of targets) this.queue(n, publisher, options.urgent === true)
  }

  /**
   * Queues an absence notice for STATUS_FANOUT random neighbours other than its sender, and for
   * the node it is about when that is a neighbour here: alive, it refutes the notice at once.
   */
  spreadNotice (notice: NoticeRef, except?: string): void {
    const neighbours = this.ctx.neighbours()
    const candidates = neighbours.filter(n => n !== except && n !== notice.subject)
    const targets = pickTargets(candidates, STATUS_FANOUT, this.ctx.random)
    if (notice.subject !== except && neighbours.includes(notice.subject)) targets.push(notice.subject)
    const peers = this.ctx.book.get(notice.subject)?.absence?.peers
    for (const n of targets) {
      peers?.add(n)
      this.queueNotice(n, notice)
    }
  }

  /** Queues the whole view for a neighbour (its digest's answer; what it holds is left out at the flush). */
  queueAll (neighbour: string): void {
    for (const held of this.ctx.book.all()) {
      this.queue(neighbour, held.publisher, false)
      // What this node holds against a node travels with it, so a newcomer marks it stale too.
      for (const w of held.absence?.witnesses ?? []) this.queueNotice(neighbour, { subject: held.publisher, witness: w.witness })
    }
  }

  /** The neighbour's digest is answered: its last batch of the next flush says so (an empty one if need be). */
  answerDigest (neighbour: string, firstView = false): void {
    this.pendingAnswers.add(neighbour)
    if (firstView) this.firstViews.add(neighbour)
    this.scheduleFlush(true)
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

  /** Batches for a third of the period (statusFlushDelayMs), or URGENT_FLUSH_DELAY_MS for notices and refutations. */
  private scheduleFlush (urgent: boolean): void {
    if (this.ctx.signal.aborted) return
    const delay = Math.min(statusFlushDelayMs(this.ctx.intervalMs), urgent ? URGENT_FLUSH_DELAY_MS : Infinity)
    const at = this.ctx.now() + delay
    if (this.flushTimer !== undefined && this.flushAt <= at) return
    clearTimeout(this.flushTimer)
    this.flushAt = at
    this.flushTimer = setTimeout(() => { this.flushTimer = undefined; this.flushAt = Infinity; void this.flush() }, delay)
    this.flushTimer.unref()
  }

  private async flush (): Promise<void> {
    const connections = new Map<string, Connection>()
    for (const c of this.ctx.components.connections()) if (c.status === 'open') connections.set(c.remotePeer.toString(), c)
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
    const firstViews = new Set(this.firstViews)
    this.firstViews.clear()
    this.pending.clear()
    this.pendingNotices.clear()
    this.pendingAnswers.clear()
    await Promise.allSettled([...work].map(async ([neighbour, { publishers, notices }]) => {
      const connection = connections.get(neighbour)
      if (connection !== undefined) await this.sendTo(connection, neighbour, publishers, notices, answers.has(neighbour), firstViews.has(neighbour))
    }))
  }

  private async sendTo (connection: Connection, neighbour: string, publishers: Set<string>, notices: NoticeRef[], answersDigest = false, firstView = false): Promise<void> {
    const batches: StatusBatch[] = []
    const heldBack: string[] = []
    let batch: StatusBatch = { statuses: [], refreshes: [], notices: [], answersDigest: false }
    let bytes = 0
    const now = this.ctx.now()
    for (const publisher of publishers) {
      const held = this.ctx.book.get(publisher)
      if (held === undefined) continue
      const known = this.knows.get(neighbour)?.get(publisher)
      if (known !== undefined && known.sequence >= held.sequence) continue
      if (known === undefined && !firstView && this.introductions.take(neighbour, 1) < 1) {
        heldBack.push(publisher)
        continue
      }
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
      const held = this.ctx.book.get(subject)
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
    for (const publisher of heldBack) this.queue(neighbour, publisher, false)
    if (batch.statuses.length + batch.refreshes.length + batch.notices.length > 0 || answersDigest) batches.push(batch)
    batch.answersDigest = answersDigest
    for (const b of batches) {
      try {
        await this.ctx.send(connection, b)
      } catch (err) {
        // Lost with the connection; the next heartbeat (or the next connect's full view) repairs it.
        this.ctx.components.log.debug('could not send node statuses', { peer: neighbour, err })
        this.knows.delete(neighbour)
        return
      }
    }
  }
}
