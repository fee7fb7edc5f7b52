import type { AbsenceNotice } from './pb/swarm-status.pb.js'
import { RecordAllowance } from './record-allowance.js'
import { signAbsence, verifyAbsence } from './status-absence.js'
import { ABSENCE_NOTICES_BURST, ABSENCE_NOTICES_PER_SECOND, ABSENCE_QUORUM, ABSENCE_WITNESS_DELAY_INTERVALS, MAX_KNOWN_NODES, MAX_PENDING_WITNESS } from './status-constants.js'
import type { StatusGossipContext } from './status-options.js'
import type { StatusOutbox } from './status-outbox.js'

/**
 * Absence notices (status-absence.ts): this node says, signed, when it lost a neighbour that
 * nobody else heard from since, and records and passes on what other witnesses say. A notice
 * about this node itself is refuted with a heartbeat.
 */
export class StatusWitness {
  /** Per witness (not per sender): how many of its absence notices this node still accepts. */
  private readonly noticeAllowance: RecordAllowance
  /** Lost neighbours waiting out their witness delay. */
  private readonly witnessTimers = new Map<string, NodeJS.Timeout>()
  private lastRefutedAt = -Infinity

  /** `refute` publishes a heartbeat past the sequence a notice about this node names. */
  constructor (private readonly ctx: StatusGossipContext, private readonly outbox: StatusOutbox, private readonly refute: (after: number) => Promise<void>) {
    this.noticeAllowance = new RecordAllowance({ burst: ABSENCE_NOTICES_BURST, perSecond: ABSENCE_NOTICES_PER_SECOND, maxPeers: MAX_KNOWN_NODES, now: ctx.now })
  }

  stop (): void {
    for (const timer of this.witnessTimers.values()) clearTimeout(timer)
    this.witnessTimers.clear()
  }

  /**
   * A witness's signed word that it lost a node: recorded (the node shows stale after the grace
   * unless it speaks again) and passed on. About this node itself: refuted with a heartbeat.
   */
  async applyNotice (notice: AbsenceNotice, from: string): Promise<void> {
    const witness = this.ctx.book.byKeyTail(notice.witnessTail)
    const subject = this.ctx.book.byKeyTail(notice.subjectTail)
    const subjectSequence = Number(notice.subjectSequence)
    // Nodes this one never heard of, or a sequence from the future (it would outlive a refutation).
    if (witness === undefined || subject === undefined || subjectSequence > this.ctx.now()) return
    if (subject.publisher === this.ctx.peerId) {
      if (witness.publisher === this.ctx.peerId || this.ctx.now() - this.lastRefutedAt < this.ctx.baseIntervalMs / 2) return
      if (!await verifyAbsence({ witnessKey: witness.publisherKey, subjectKey: subject.publisherKey, subjectSequence }, notice.signature)) return
      this.lastRefutedAt = this.ctx.now()
      this.ctx.components.log.debug('a neighbour reported losing this node: refuting with a heartbeat', { witness: witness.publisher, from })
      await this.refute(subjectSequence)
      return
    }
    if (this.ctx.book.absenceVerdict(subject.publisher, witness.publisher, subjectSequence) !== 'new') return
    if (this.noticeAllowance.take(witness.publisher, 1) < 1) return
    const signature = notice.signature
    if (!await verifyAbsence({ witnessKey: witness.publisherKey, subjectKey: subject.publisherKey, subjectSequence }, signature)) {
      this.ctx.components.log.debug('absence notice refused: its signature is not the witness\'s', { from, witness: witness.publisher })
      this.ctx.init.onInvalid?.(from, 'an absence notice whose signature is not its witness\'s')
      return
    }
    // Checked again: another notice may have landed while this one verified.
    if (this.ctx.book.absenceVerdict(subject.publisher, witness.publisher, subjectSequence) !== 'new') return
    this.ctx.book.addAbsence(subject.publisher, subjectSequence, { witness: witness.publisher, witnessKey: witness.publisherKey, signature, signedAt: this.ctx.heardAt(notice.ageMs) })
    this.ctx.book.get(subject.publisher)?.absence?.peers.add(from)
    this.ctx.init.onAbsence?.(subject.publisher, witness.publisher)
    this.outbox.spreadNotice({ subject: subject.publisher, witness: witness.publisher }, from)
  }

  /** A neighbour's last connection closed: after a random delay, say so unless it came back or others did. */
  lost (peer: string): void {
    const held = this.ctx.book.get(peer)
    if (this.ctx.signal.aborted || held === undefined || this.witnessTimers.has(peer) || this.witnessTimers.size >= MAX_PENDING_WITNESS) return
    const delay = this.ctx.random() * (this.ctx.init.witnessDelayMs ?? ABSENCE_WITNESS_DELAY_INTERVALS * this.ctx.baseIntervalMs)
    const timer = setTimeout(() => {
      this.witnessTimers.delete(peer)
      void this.witness(peer, held.sequence).catch((err: unknown) => {
        if (!this.ctx.signal.aborted) this.ctx.components.log.debug('could not report a lost neighbour', { peer, err })
      })
    }, delay)
    timer.unref()
    this.witnessTimers.set(peer, timer)
  }

  private async witness (peer: string, sequenceAtLoss: number): Promise<void> {
    const signal = this.ctx.signal
    const held = this.ctx.book.get(peer)
    // Heard from since (through others), back as a neighbour, or enough witnesses spoke already.
    if (held === undefined || held.sequence > sequenceAtLoss || this.ctx.neighbours().includes(peer)) return
    if ((held.absence?.subjectSequence ?? -1) >= held.sequence && (held.absence?.witnesses.length ?? 0) >= ABSENCE_QUORUM) return
    if (await this.ctx.components.probe?.(peer, { signal }) === true) return
    signal.throwIfAborted()
    // A node that lost every neighbour is more likely cut off itself than surrounded by the dead.
    if (this.ctx.neighbours().length === 0) return
    const now = this.ctx.book.get(peer)
    if (now === undefined || now.sequence !== held.sequence || this.ctx.book.absenceVerdict(peer, this.ctx.peerId, held.sequence) !== 'new') return
    const signature = await signAbsence(this.ctx.components.privateKey, held.publisherKey, held.sequence)
    signal.throwIfAborted()
    this.ctx.components.log.debug('reporting a lost neighbour', { peer, sequence: held.sequence })
    this.ctx.book.addAbsence(peer, held.sequence, { witness: this.ctx.peerId, witnessKey: this.ctx.publisherKey, signature, signedAt: this.ctx.now() })
    this.ctx.init.onAbsence?.(peer, this.ctx.peerId)
    this.outbox.spreadNotice({ subject: peer, witness: this.ctx.peerId })
  }
}
