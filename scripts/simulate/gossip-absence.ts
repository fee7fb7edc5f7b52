// Absence notices at scale (issue 11, "a node that stopped is marked stale within a bounded
// time"): how long after a node stops every other node marks it stale, what that costs, and
// how a node whose connection dropped (alive) refutes a notice before anyone marks it.
// Driven by scripts/simulate-gossip.ts; the rules are the daemon's (status-witness.ts,
// status-outbox.ts, status-constants.ts): witnesses are the stopped node's neighbours, each waits a random time
// up to ABSENCE_WITNESS_DELAY_INTERVALS configured periods and stays silent once it holds
// ABSENCE_QUORUM notices; a node keeps and passes on at most MAX_ABSENCE_WITNESSES notices per
// node, each to STATUS_FANOUT random neighbours other than its sender (and to the subject when
// it is a neighbour); a node is marked stale ABSENCE_GRACE_INTERVALS configured periods after
// a witness signed. A hop waits for the batch (at most URGENT_FLUSH_DELAY_MS) plus a latency.
import { pickTargets, statusLimits } from '../../src/swarm/index.js'
import { EventQueue } from './event-queue.js'

export interface AbsenceOptions {
  /** The configured heartbeat period (--status-interval), which times the notices. */
  baseIntervalMs: number
  /** One hop's network and processing time besides the batch wait. */
  hopLatencyMs: number
  /** How long a witness's dial of the lost node takes to fail (refused at once; 10 s when the host is gone). */
  probeMs: number
}

export interface Spread { median: number, p99: number, max: number }

export interface DepartureResult {
  /** Seconds from the node stopping to each other node marking it stale (nodes without a notice excluded). */
  staleAfterS: Spread
  /** Share of the other nodes that got a notice (the rest fall back to silent periods). */
  coverage: number
  noticesSigned: number
  /** Notice bytes each node received, mean over nodes. */
  bytesPerNode: number
}

export interface RefutationResult {
  /** Seconds from the (false) notice to each node holding the refuting heartbeat. */
  refutedAfterS: Spread
  /** Share of nodes that marked the live node stale before its refutation arrived. */
  falseStaleShare: number
  bytesPerNode: number
}

type Event =
  | { kind: 'fire', node: number }
  | { kind: 'notice', to: number, from: number, witness: number, signedAt: number }
  | { kind: 'refute', to: number, from: number }

function spread (values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
  return { median: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? NaN }
}

function pick (list: number[], fanout: number, random: () => number, skip: (n: number) => boolean): number[] {
  return pickTargets(list.filter(n => !skip(n)), fanout, random)
}

/**
 * What each node holds about the subject: the witnesses it counted, when it first could mark
 * the subject stale. Shared by both scenarios.
 */
class NoticeState {
  readonly witnesses: Array<Set<number> | undefined>
  readonly staleAt: Float64Array
  readonly recv: Float64Array
  signed = 0

  constructor (readonly nodes: number, readonly graceMs: number) {
    this.witnesses = new Array(nodes)
    this.staleAt = new Float64Array(nodes).fill(Infinity)
    this.recv = new Float64Array(nodes)
  }

  count (node: number): number { return this.witnesses[node]?.size ?? 0 }

  /** True when the node keeps (and passes on) this notice. */
  accept (node: number, witness: number, signedAt: number, now: number): boolean {
    let set = this.witnesses[node]
    if (set === undefined) set = this.witnesses[node] = new Set()
    if (set.has(witness) || set.size >= statusLimits.MAX_ABSENCE_WITNESSES) return false
    set.add(witness)
    this.staleAt[node] = Math.min(this.staleAt[node] ?? Infinity, Math.max(now, signedAt + this.graceMs))
    return true
  }
}

/** One node stops at time 0: its neighbours witness it. */
export function simulateDeparture (neighbours: number[][], subject: number, options: AbsenceOptions, random: () => number): DepartureResult {
  const nodes = neighbours.length
  const urgent = Math.min(statusLimits.URGENT_FLUSH_DELAY_MS, options.baseIntervalMs / 10)
  const state = new NoticeState(nodes, statusLimits.ABSENCE_GRACE_INTERVALS * options.baseIntervalMs)
  const queue = new EventQueue<Event>()
  const hop = (): number => random() * urgent + options.hopLatencyMs
  for (const w of neighbours[subject] ?? []) queue.push(random() * statusLimits.ABSENCE_WITNESS_DELAY_INTERVALS * options.baseIntervalMs + options.probeMs, { kind: 'fire', node: w })
  const forward = (node: number, except: number, witness: number, signedAt: number, now: number): void => {
    for (const to of pick(neighbours[node] ?? [], statusLimits.STATUS_FANOUT, random, n => n === except || n === subject)) {
      queue.push(now + hop(), { kind: 'notice', to, from: node, witness, signedAt })
    }
  }
  for (let now = queue.peekTime(); queue.size > 0; now = queue.peekTime()) {
    const event = queue.pop() as Event
    if (event.kind === 'fire') {
      // Suppressed: enough witnesses spoke already.
      if (state.count(event.node) >= statusLimits.ABSENCE_QUORUM) continue
      state.signed++
      state.accept(event.node, event.node, now, now)
      forward(event.node, -1, event.node, now, now)
    } else if (event.kind === 'notice') {
      state.recv[event.to] = (state.recv[event.to] ?? 0) + statusLimits.ABSENCE_NOTICE_WIRE_BYTES
      if (state.accept(event.to, event.witness, event.signedAt, now)) forward(event.to, event.from, event.witness, event.signedAt, now)
    }
  }
  const times: number[] = []
  let covered = 0
  let bytes = 0
  for (let n = 0; n < nodes; n++) {
    if (n === subject) continue
    bytes += state.recv[n] ?? 0
    const at = state.staleAt[n] ?? Infinity
    if (Number.isFinite(at)) {
      covered++
      times.push(at / 1000)
    }
  }
  return { staleAfterS: spread(times), coverage: covered / (nodes - 1), noticesSigned: state.signed, bytesPerNode: bytes / (nodes - 1) }
}

/**
 * One connection drops at time 0 while both ends live on: the witness's dial fails anyway (a
 * NAT, a firewall) and it signs. The subject hears the notice from a neighbour and refutes with
 * a heartbeat to every neighbour; nodes that held the notice pass the heartbeat on at the urgent
 * pace, others at the ordinary batch delay (a tenth of the adaptive period, at most 30 s), and
 * every node sends it back along the links the notice took, so it reaches every node that holds
 * the notice.
 */
export function simulateRefutation (neighbours: number[][], subject: number, witness: number, periodMs: number, refreshBytes: number, options: AbsenceOptions, random: () => number): RefutationResult {
  const nodes = neighbours.length
  const urgent = Math.min(statusLimits.URGENT_FLUSH_DELAY_MS, options.baseIntervalMs / 10)
  const ordinary = Math.min(statusLimits.MAX_STATUS_FLUSH_DELAY_MS, periodMs / 10)
  const state = new NoticeState(nodes, statusLimits.ABSENCE_GRACE_INTERVALS * options.baseIntervalMs)
  const refutedAt = new Float64Array(nodes).fill(Infinity)
  // Who each node exchanged the notice with: the refutation goes back along those links.
  const noticePeers: Array<Set<number> | undefined> = new Array(nodes)
  const link = (a: number, b: number): void => {
    (noticePeers[a] ??= new Set()).add(b);
    (noticePeers[b] ??= new Set()).add(a)
  }
  const refuteRecv = new Float64Array(nodes)
  const queue = new EventQueue<Event>()
  const hop = (delay: number): number => random() * delay + options.hopLatencyMs
  const cut = (a: number, b: number): boolean => (a === subject && b === witness) || (a === witness && b === subject)
  const forwardNotice = (node: number, except: number, now: number, signedAt: number): void => {
    const targets = pick(neighbours[node] ?? [], statusLimits.STATUS_FANOUT, random, n => n === except || n === subject)
    if (node !== witness && except !== subject && (neighbours[node] ?? []).includes(subject)) targets.push(subject)
    for (const to of targets) {
      link(node, to)
      queue.push(now + hop(urgent), { kind: 'notice', to, from: node, witness, signedAt })
    }
  }
  let refuted = false
  state.signed++
  state.accept(witness, witness, 0, 0)
  forwardNotice(witness, -1, 0, 0)
  for (let now = queue.peekTime(); queue.size > 0; now = queue.peekTime()) {
    const event = queue.pop() as Event
    if (event.kind === 'notice') {
      state.recv[event.to] = (state.recv[event.to] ?? 0) + statusLimits.ABSENCE_NOTICE_WIRE_BYTES
      if (event.to === subject) {
        if (refuted) continue
        refuted = true
        refutedAt[subject] = now
        for (const to of neighbours[subject] ?? []) if (!cut(subject, to)) queue.push(now + hop(urgent), { kind: 'refute', to, from: subject })
        continue
      }
      // A node that already holds the refutation drops an older notice.
      if (refutedAt[event.to] !== Infinity) continue
      if (state.accept(event.to, event.witness, event.signedAt, now)) forwardNotice(event.to, event.from, now, event.signedAt)
    } else if (event.kind === 'refute') {
      refuteRecv[event.to] = (refuteRecv[event.to] ?? 0) + refreshBytes
      if (refutedAt[event.to] !== Infinity) continue
      refutedAt[event.to] = now
      const delay = state.count(event.to) > 0 ? urgent : ordinary
      const targets = new Set(pick(neighbours[event.to] ?? [], statusLimits.STATUS_FANOUT, random, n => n === event.from || cut(event.to, n)))
      for (const n of noticePeers[event.to] ?? []) if (n !== event.from && !cut(event.to, n)) targets.add(n)
      for (const to of targets) queue.push(now + hop(noticePeers[event.to]?.has(to) === true ? urgent : delay), { kind: 'refute', to, from: event.to })
    }
  }
  const times: number[] = []
  let falseStale = 0
  let bytes = 0
  for (let n = 0; n < nodes; n++) {
    if (n === subject) continue
    bytes += (state.recv[n] ?? 0) + (refuteRecv[n] ?? 0)
    const at = refutedAt[n] ?? Infinity
    if (Number.isFinite(at)) times.push(at / 1000)
    if ((state.staleAt[n] ?? Infinity) < at) falseStale++
  }
  return { refutedAfterS: spread(times), falseStaleShare: falseStale / (nodes - 1), bytesPerNode: bytes / (nodes - 1) }
}
