/**
 * How far this node trusts each peer, from what the peer did, not what it says. Pure: an
 * injected clock, no I/O. The swarm reports offences and good deliveries; when a peer's score
 * falls below the threshold the verdict says to drop it, hang up and ban it, for a time that
 * doubles with each ban of the same peer, and for the peer's whole address prefix once
 * several identities from it were banned (a new key costs an attacker nothing; a new address
 * costs more).
 */

import { RecentMap } from '../recent/index.js'

export type OffenceKind =
  /** A chunk or manifest that failed verification: proof of malice, banned at once. */
  | 'bad-data'
  /** Malformed, oversized, unsolicited or half-sent messages: a broken or hostile peer. */
  | 'violation'
  /** A signed record that failed verification, or came too often. */
  | 'invalid-record'
  /** Requests outstanding, nothing delivered for the stall timeout. */
  | 'stall'
  /** A request that waited far longer than the peer's rate allowed while others could serve it. */
  | 'slow'
  /** Refused (deferred, cancelled unasked) far more requests than it served. */
  | 'refusal'
  /** Did not read what it asked for. */
  | 'slow-reader'

/**
 * What each offence costs, as "banned after this many in a row": the threshold is -100 and a
 * score recovers with time, so each cost is a little over 100 / n (n offences close together
 * ban; spread over minutes they do not).
 */
const banAfter = (n: number): number => 100 / n + 1
export const OFFENCE_COST: Record<OffenceKind, number> = {
  'bad-data': banAfter(1),
  violation: banAfter(2),
  'invalid-record': banAfter(10),
  stall: banAfter(3),
  slow: banAfter(5),
  refusal: banAfter(2),
  'slow-reader': banAfter(4),
}

/** Offences no honest peer commits however loaded it is: only these lead to bans by address prefix. */
const MALICE: ReadonlySet<OffenceKind> = new Set<OffenceKind>(['bad-data', 'violation', 'invalid-record'])

export interface PeerScoreInit {
  now?: () => number
  /** At or below this score a peer is banned. */
  threshold?: number
  /** The first ban of a peer; each later one doubles, up to maxBanMs. */
  baseBanMs?: number
  maxBanMs?: number
  /** Score points a peer earns back per minute without offences (never above zero by time alone). */
  recoveryPerMinute?: number
  /** Score points per chunk delivered (or other served request), up to maxScore. */
  rewardPerServe?: number
  maxScore?: number
  /** Refusals before the refusal pattern is judged at all… */
  refusalMinimum?: number
  /** …and the ratio of refusals to serves that is an offence. */
  refusalRatio?: number
  /** Bans of distinct peers from one address prefix before the prefix itself is banned. */
  prefixBanAfter?: number
}

export interface BanVerdict {
  peer: string
  reason: string
  durationMs: number
  /** The address prefix to refuse too (repeat offenders), else undefined. */
  prefix?: string
}

interface PeerRecord {
  score: number
  updatedAt: number
  /** Refusals and serves, halved every REFUSAL_HALF_LIFE_MS, so the ratio follows recent behaviour. */
  refused: number
  served: number
  countsAt: number
  lastOffence?: string
  /** Banned now (until this time); a peer is banned at most once per offence streak. */
  bannedUntil: number
}

const REFUSAL_HALF_LIFE_MS = 30_000
/** Records of peers not seen for this long are forgotten (their ban counts stay). */
const FORGET_AFTER_MS = 60 * 60_000
/** Peers remembered at most: a flood of identities cannot grow the table without bound. */
const MAX_PEERS = 4096
/** Ban counts kept at most: as many as the ban list keeps bans (ban-list.ts MAX_PEER_BANS). */
export const MAX_BAN_COUNTS = 16_384

export class PeerScores {
  private readonly peers = new Map<string, PeerRecord>()
  /** peer → bans so far (doubles the next ban's length), the most recently banned last; at most MAX_BAN_COUNTS. */
  private readonly banCounts = new RecentMap<string, number>(MAX_BAN_COUNTS)
  /** address prefix → distinct peers banned from it. */
  private readonly prefixOffenders = new Map<string, Set<string>>()
  private readonly now: () => number
  private readonly threshold: number
  private readonly baseBanMs: number
  private readonly maxBanMs: number
  private readonly recoveryPerMinute: number
  private readonly rewardPerServe: number
  private readonly maxScore: number
  private readonly refusalMinimum: number
  private readonly refusalRatio: number
  private readonly prefixBanAfter: number

  constructor (init: PeerScoreInit = {}) {
    this.now = init.now ?? Date.now
    this.threshold = init.threshold ?? -100
    this.baseBanMs = init.baseBanMs ?? 10 * 60_000
    this.maxBanMs = init.maxBanMs ?? 24 * 60 * 60_000
    this.recoveryPerMinute = init.recoveryPerMinute ?? 10
    this.rewardPerServe = init.rewardPerServe ?? 0.5
    this.maxScore = init.maxScore ?? 50
    this.refusalMinimum = init.refusalMinimum ?? 32
    this.refusalRatio = init.refusalRatio ?? 8
    this.prefixBanAfter = init.prefixBanAfter ?? 3
  }

  /** The peer's score now (0 for a stranger). */
  score (peer: string): number {
    const record = this.peers.get(peer)
    if (record === undefined) return 0
    this.recover(record)
    return record.score
  }

  /** The last offence recorded against the peer, for `shoal peers`. */
  lastOffence (peer: string): string | undefined {
    return this.peers.get(peer)?.lastOffence
  }

  /**
   * Charges an offence. Returns a ban verdict the first time the score falls to the
   * threshold (not again while that ban lasts), otherwise undefined.
   */
  offend (peer: string, kind: OffenceKind, detail: string, address?: string): BanVerdict | undefined {
    const record = this.record(peer)
    this.recover(record)
    record.score -= OFFENCE_COST[kind]
    record.lastOffence = `${kind}: ${detail}`
    if (record.score > this.threshold || record.bannedUntil > this.now()) return undefined
    const bans = (this.banCounts.get(peer) ?? 0) + 1
    // Latest last, and bounded as the ban list is: every identity of a flood is banned, and
    // each kept a count here for as long as the daemon ran.
    this.banCounts.set(peer, bans)
    const durationMs = Math.min(this.maxBanMs, this.baseBanMs * 2 ** (bans - 1))
    record.bannedUntil = this.now() + durationMs
    // After the ban the peer starts over just above the threshold: one more offence bans it again.
    record.score = this.threshold + 1
    const verdict: BanVerdict = { peer, reason: record.lastOffence, durationMs }
    // Only proof of malice counts toward a prefix ban: slow, stalled or refusing peers are what
    // a CPU-starved honest fleet looks like, and edges of one site share a /24 (a 16-host run
    // banned its own subnet after three honest edges were banned as slow).
    const prefix = address === undefined || !MALICE.has(kind) ? undefined : addressPrefix(address)
    if (prefix !== undefined) {
      let offenders = this.prefixOffenders.get(prefix)
      if (offenders === undefined) {
        offenders = new Set()
        if (this.prefixOffenders.size >= MAX_PEERS) this.prefixOffenders.clear()
        this.prefixOffenders.set(prefix, offenders)
      }
      offenders.add(peer)
      if (offenders.size >= this.prefixBanAfter) verdict.prefix = prefix
    }
    return verdict
  }

  /** The peer served a request (a verified chunk, a manifest): earns a little back. */
  served (peer: string): void {
    const record = this.record(peer)
    this.recover(record)
    this.decayCounts(record)
    record.served++
    record.score = Math.min(this.maxScore, record.score + this.rewardPerServe)
  }

  /**
   * The peer refused a request (deferred it, or cancelled one we did not cancel). A gateway
   * defers some requests by design, so only a pattern is an offence: many refusals and far
   * more than it served lately. Returns what to charge (offend(peer, 'refusal', …)), if anything.
   */
  refused (peer: string): string | undefined {
    const record = this.record(peer)
    this.decayCounts(record)
    record.refused++
    if (record.refused < this.refusalMinimum || record.refused < this.refusalRatio * (record.served + 1)) return undefined
    const detail = `refused ${Math.round(record.refused)} requests while serving ${Math.round(record.served)}`
    record.refused = 0
    record.served = 0
    return detail
  }

  /** Peers below zero, worst first, for `shoal peers` and the status page. */
  suspects (): Array<{ peer: string, score: number, lastOffence?: string }> {
    const out: Array<{ peer: string, score: number, lastOffence?: string }> = []
    for (const [peer, record] of this.peers) {
      this.recover(record)
      if (record.score < 0) out.push({ peer, score: record.score, lastOffence: record.lastOffence })
    }
    return out.sort((a, b) => a.score - b.score)
  }

  private record (peer: string): PeerRecord {
    let record = this.peers.get(peer)
    if (record === undefined) {
      if (this.peers.size >= MAX_PEERS) this.forgetIdle()
      const now = this.now()
      record = { score: 0, updatedAt: now, refused: 0, served: 0, countsAt: now, bannedUntil: 0 }
      this.peers.set(peer, record)
    }
    return record
  }

  private recover (record: PeerRecord): void {
    const now = this.now()
    const elapsed = Math.max(0, now - record.updatedAt)
    record.updatedAt = now
    if (record.score < 0) record.score = Math.min(0, record.score + elapsed / 60_000 * this.recoveryPerMinute)
  }

  private decayCounts (record: PeerRecord): void {
    const now = this.now()
    const halves = (now - record.countsAt) / REFUSAL_HALF_LIFE_MS
    if (halves > 0) {
      const factor = 0.5 ** halves
      record.refused *= factor
      record.served *= factor
    }
    record.countsAt = now
  }

  /** Drops records of peers that have been quiet a long time, then the oldest, to stay bounded. */
  private forgetIdle (): void {
    const now = this.now()
    for (const [peer, record] of this.peers) {
      if (now - record.updatedAt > FORGET_AFTER_MS && record.bannedUntil < now) this.peers.delete(peer)
    }
    if (this.peers.size < MAX_PEERS) return
    // Not a RecentMap: the quiet go first, whenever they came, and only then the oldest.
    const oldest = this.peers.keys().next().value
    if (oldest !== undefined) this.peers.delete(oldest)
  }
}

/**
 * The network a peer's address belongs to, for bans that outlive a change of identity: the
 * /24 of an IPv4 address, the /64 of an IPv6 one. Loopback addresses share no prefix (every
 * local test peer would otherwise ban the others). Accepts a multiaddr or a bare IP.
 */
export function addressPrefix (address: string): string | undefined {
  const ip = ipOf(address)
  if (ip === undefined) return undefined
  if (ip.includes(':')) {
    if (ip === '::1') return undefined
    const groups = expandIpv6(ip)
    return groups === undefined ? undefined : `${groups.slice(0, 4).join(':')}::/64`
  }
  if (ip.startsWith('127.')) return undefined
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  return `${parts.slice(0, 3).join('.')}.0/24`
}

/** The IP of a multiaddr (`/ip4/1.2.3.4/tcp/…`) or a bare address. */
export function ipOf (address: string): string | undefined {
  const match = /^\/ip[46]\/([^/]+)/.exec(address)
  if (match !== null) return match[1]
  if (address.startsWith('/')) return undefined
  return address
}

function expandIpv6 (ip: string): string[] | undefined {
  const [head = '', tail] = ip.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const missing = 8 - left.length - right.length
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined
  return [...left, ...Array<string>(missing).fill('0'), ...right].map(g => g.toLowerCase())
}
