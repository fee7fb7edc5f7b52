import type { Bytes, NodeStatusFields } from './status-record.js'
import { DROP_AFTER_INTERVALS, MAX_ABSENCE_WITNESSES, MAX_KNOWN_NODES, STALE_AFTER_INTERVALS } from './status-constants.js'
import { RecentSet } from '../recent/index.js'

/** One neighbour's signed word that it lost a node (status-absence.ts). */
export interface AbsenceWitness {
  witness: string
  /** Kept to pass the notice on: the stamp is rebuilt from the two keys. */
  witnessKey: Bytes
  signature: Bytes
  /** Local clock when the witness signed it (less the age its relays reported). */
  signedAt: number
}

/** Neighbours that lost a node since its sequence `subjectSequence`: it is stale unless it speaks again. */
export interface Absence {
  subjectSequence: number
  /** When the first witness signed (local clock): the node is marked stale a grace after this. */
  since: number
  witnesses: AbsenceWitness[]
  /** Neighbours this node exchanged these notices with: a refutation goes back to them first. */
  peers: Set<string>
}

/** One node's latest status as this node holds it. */
export interface HeldStatus {
  publisher: string
  /** The publisher's key, protobuf-encoded: refreshes are checked against it. */
  publisherKey: Bytes
  sequence: number
  bodyHash: string
  fields: NodeStatusFields
  body: Bytes
  stamp: Bytes
  signature: Bytes
  /** Local clock when this sequence was first heard here (less the age its sender reported). */
  heardAt: number
  /** Set when neighbours reported losing it after this sequence; a higher sequence clears it. */
  absence?: Absence
}

/** A row of the fleet view. */
export interface FleetNode extends NodeStatusFields {
  peerId: string
  self: boolean
  stale: boolean
  /** Milliseconds since this node last heard from it. */
  lastSeenMs: number
  sequence: number
  /** Neighbours that reported losing this node since its last status (0 when none did). */
  lostBy: number
}

/** How this node came to know a node: what protects it from eviction at the cap. */
interface Origin {
  /** Neighbours it was heard through (at most two are kept: one, or more than one, is what counts). */
  via: string[]
  /** It is, or was while held here, a neighbour of this node (its own status came straight from it). */
  direct: boolean
}

/** Neighbours whose introductions go first at the cap (charged or banned here); the most recent kept. */
const MAX_DISTRUSTED = 1024

export type AcceptVerdict = 'accepted' | 'older' | 'too-soon'

/** What an absence notice would do here, before its signature is checked (that costs a verify). */
export type AbsenceVerdict = 'new' | 'unknown' | 'outdated' | 'known' | 'full'

/**
 * Every node's latest status, by publisher: bounded in count, each judged stale and then
 * forgotten by its own promised heartbeat period. Pure: an injected clock, no I/O.
 */
export class StatusBook {
  private readonly byPublisher = new Map<string, HeldStatus>()
  /** Last 8 key bytes (hex) → publisher, to find the status a refresh is for. */
  private readonly byTail = new Map<string, string>()
  private readonly origins = new Map<string, Origin>()
  private readonly distrusted = new RecentSet<string>(MAX_DISTRUSTED)

  /**
   * `absenceGraceMs`: how long after a witness signs that it lost a node the node is marked
   * stale, so a node that is alive (the connection dropped, not the node) refutes it first.
   */
  constructor (private readonly self: string, private readonly now: () => number, private readonly maxNodes = MAX_KNOWN_NODES, private readonly absenceGraceMs = Infinity) {}

  get size (): number { return this.byPublisher.size }

  get (publisher: string): HeldStatus | undefined { return this.byPublisher.get(publisher) }

  byKeyTail (tail: Uint8Array): HeldStatus | undefined {
    const publisher = this.byTail.get(Buffer.from(tail).toString('hex'))
    return publisher === undefined ? undefined : this.byPublisher.get(publisher)
  }

  all (): IterableIterator<HeldStatus> { return this.byPublisher.values() }

  /**
   * Keeps a status newer than the one held. A publisher's heartbeats closer together than
   * half its own promised period are refused, so one node cannot make the fleet relay a flood.
   */
  accept (status: HeldStatus, from?: string): AcceptVerdict {
    const held = this.byPublisher.get(status.publisher)
    if (held !== undefined) {
      if (from !== undefined) this.heardVia(status.publisher, from)
      if (status.sequence <= held.sequence) return 'older'
      // A node reported lost answers at once, however soon after its last heartbeat: that is its refutation.
      const refutes = held.absence !== undefined && status.sequence > held.absence.subjectSequence
      if (status.publisher !== this.self && !refutes && status.sequence - held.sequence < held.fields.intervalMs / 2) return 'too-soon'
      // The very status a witness had when it lost the node (it overtook that status here) refutes nothing.
      if (held.absence !== undefined && status.sequence <= held.absence.subjectSequence) status.absence = held.absence
      else delete status.absence
    } else {
      this.sweep()
      if (this.byPublisher.size >= this.maxNodes) this.forgetOne()
      this.byTail.set(Buffer.from(status.publisherKey.subarray(-8)).toString('hex'), status.publisher)
      this.origins.set(status.publisher, { via: [], direct: false })
      if (from !== undefined) this.heardVia(status.publisher, from)
    }
    this.byPublisher.set(status.publisher, status)
    return 'accepted'
  }

  /** `publisher`'s status came (also) through neighbour `from`; from the publisher itself, it is a neighbour. */
  heardVia (publisher: string, from: string): void {
    const origin = this.origins.get(publisher)
    if (origin === undefined) return
    if (from === publisher) origin.direct = true
    else if (origin.via.length < 2 && !origin.via.includes(from)) origin.via.push(from)
  }

  /** A node held here is now a neighbour: it is never evicted before what one neighbour alone introduced. */
  markDirect (publisher: string): void {
    const origin = this.origins.get(publisher)
    if (origin !== undefined) origin.direct = true
  }

  /** A neighbour charged or banned here: the nodes only it introduced go first at the cap. */
  distrust (peer: string): void {
    this.distrusted.add(peer)
  }

  /**
   * Whether a witness's notice that it lost `subject` at `subjectSequence` would add anything:
   * about a node held here, not older than what is held, from a witness not yet counted.
   */
  absenceVerdict (subject: string, witness: string, subjectSequence: number): AbsenceVerdict {
    const held = this.byPublisher.get(subject)
    if (held === undefined || !this.byPublisher.has(witness) || witness === subject) return 'unknown'
    if (subjectSequence < held.sequence) return 'outdated'
    const absence = held.absence
    if (absence === undefined || subjectSequence > absence.subjectSequence) return 'new'
    if (subjectSequence < absence.subjectSequence) return 'outdated'
    if (absence.witnesses.some(w => w.witness === witness)) return 'known'
    return absence.witnesses.length >= MAX_ABSENCE_WITNESSES ? 'full' : 'new'
  }

  /** Records a verified notice (absenceVerdict said 'new'). */
  addAbsence (subject: string, subjectSequence: number, witness: AbsenceWitness): void {
    const held = this.byPublisher.get(subject)
    if (held === undefined) return
    if (held.absence === undefined || subjectSequence > held.absence.subjectSequence) {
      held.absence = { subjectSequence, since: witness.signedAt, witnesses: [], peers: new Set() }
    }
    held.absence.witnesses.push(witness)
    held.absence.since = Math.min(held.absence.since, witness.signedAt)
  }

  /** Drops what was silent for DROP_AFTER_INTERVALS of its own periods. */
  sweep (): void {
    const now = this.now()
    for (const held of this.byPublisher.values()) {
      if (held.publisher !== this.self && now - held.heardAt > DROP_AFTER_INTERVALS * held.fields.intervalMs) this.forget(held)
    }
  }

  view (): FleetNode[] {
    this.sweep()
    const now = this.now()
    return [...this.byPublisher.values()].map(held => {
      const lastSeenMs = held.publisher === this.self ? 0 : Math.max(0, now - held.heardAt)
      const lost = held.absence !== undefined && now - held.absence.since >= this.absenceGraceMs
      return {
        peerId: held.publisher,
        self: held.publisher === this.self,
        stale: lost || lastSeenMs > STALE_AFTER_INTERVALS * held.fields.intervalMs,
        lastSeenMs,
        sequence: held.sequence,
        lostBy: held.absence?.witnesses.length ?? 0,
        ...held.fields,
      }
    }).sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  /**
   * At the cap, who goes: first what only a charged or banned neighbour introduced, then what
   * only one neighbour introduced, and only then a node that is or was a neighbour or was heard
   * through more than one; the longest silent first within each. Any identity can sign a status,
   * so a stranger can introduce any number of nodes, but it cannot push out a node this node
   * saw itself or heard of twice.
   */
  private forgetOne (): void {
    let chosen: HeldStatus | undefined
    let chosenRank = Infinity
    for (const held of this.byPublisher.values()) {
      if (held.publisher === this.self) continue
      const rank = this.evictionRank(held.publisher)
      if (rank < chosenRank || (rank === chosenRank && chosen !== undefined && held.heardAt < chosen.heardAt)) {
        chosen = held
        chosenRank = rank
      }
    }
    if (chosen !== undefined) this.forget(chosen)
  }

  /** 0: only a distrusted neighbour introduced it; 1: only one neighbour did; 2: protected. */
  private evictionRank (publisher: string): number {
    const origin = this.origins.get(publisher)
    if (origin === undefined) return 1
    if (origin.direct || origin.via.length > 1) return 2
    const only = origin.via[0]
    return only !== undefined && this.distrusted.has(only) ? 0 : 1
  }

  private forget (held: HeldStatus): void {
    this.byPublisher.delete(held.publisher)
    this.origins.delete(held.publisher)
    this.byTail.delete(Buffer.from(held.publisherKey.subarray(-8)).toString('hex'))
  }
}
