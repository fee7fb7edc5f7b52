import { ADVERTISE_GRACE_MS, TAKER_AFTER_CHUNKS } from './constants.js'

/**
 * Gateway seeding, the serving half (DESIGN.md: each chunk leaves the gateway about once):
 * a chunk the gateway just sent one neighbour is left to that neighbour, and other askers
 * are told to wait (DEFERRED) while it spreads. Pure and clock-injected: the chunk server
 * (chunk-protocol.ts) and the simulator (scripts/simulate) run this same code.
 */

/** What the gateway knows from its neighbours' have-lists (HaveList in the daemon). */
export interface SeedingView {
  /** The peer told us something about this object: it advertises what it holds. */
  advertises: (peer: string, object: string) => boolean
  /** Neighbours other than `except` that advertise this chunk. */
  holderCount: (object: string, index: number, except: string) => number
}

export interface SeedingPolicy {
  /**
   * A request for a chunk sent another neighbour less than this long ago is deferred: that
   * neighbour advertises it within a have-list batch and serves it. Later than this, an
   * asker that still comes to the gateway likely cannot reach the copy, and is served.
   */
  deferRecentUploadMs: number
  /** A recipient has this long after its first chunk of an object to advertise it, or nobody is deferred for it. */
  advertiseGraceMs: number
  /**
   * …and at most this many chunks of it: one sent more that still advertises none of the
   * object takes and does not pass on, whatever the time. A leech asking every chunk at once
   * got the whole object within the grace, and the edges were told to wait for all of it.
   */
  advertiseGraceChunks: number
  /** Times one asker is told to wait for one chunk (it asks a gateway again after GATEWAY_DEFER_MS). */
  maxDeferralsPerAsker: number
  /**
   * Serve an asker already deferred once another neighbour advertises the chunk (it may not
   * reach that copy); false keeps deferring for the whole window, as the chunk is on its way
   * to the asker's own neighbours too.
   */
  servesAdvertised: boolean
  /**
   * DEFERRED answers one asker may get, all chunks together, counted with a half-life of
   * `deferralHalfLifeMs`: the asker's peer score (peer-score.ts) charges a peer that refused
   * 32 or more requests and 8 times what it served, with a 30 s half-life, so a gateway that
   * stays under 32 is never charged for its own policy. Past the budget the asker is served.
   * Infinity turns the budget off (what-ifs only: an honest edge would then charge its gateway).
   */
  deferralBudgetPerAsker: number
  /**
   * Past the budget, an asker the gateway is also serving is still deferred while its DEFERRED
   * answers stay under this many times the chunks sent it lately, plus one (decayed alike): the
   * score charges only past 8 times what the peer served, and half of that leaves room for
   * chunks in flight. Without it, on fast links four edges spent their budgets in the first
   * second and were then sent a second copy of everything (test/e2e/swarm-fleet.test.ts: the
   * gateway sent 1.8-1.9 bundles instead of at most 1.5).
   */
  deferralsPerChunkSent: number
  deferralHalfLifeMs: number
  /**
   * A chunk already sent once waits while another asker's stream has a chunk never sent
   * queued, for at most this long after it was asked (0: streams take turns whatever they send).
   */
  secondCopyWaitMs: number
}

/**
 * The daemon's policy (the simulator's what-ifs vary it; docs/architecture.md "Gateway
 * seeding" has the figures). A deferral budget of 24, 8 under the asker's refusal pattern
 * (32) to leave room for its other refusals: without one the gateway told one asker DEFERRED
 * 42-50 times in a 5000-node pull, and two such charges ban, so an honest edge could ban its
 * own gateway. Past the budget an asker the gateway serves too is deferred within 4 per chunk
 * sent it; one it does not serve is served whatever it asks.
 */
export const GATEWAY_SEEDING_POLICY: Readonly<SeedingPolicy> = {
  deferRecentUploadMs: 10_000,
  advertiseGraceMs: ADVERTISE_GRACE_MS,
  advertiseGraceChunks: TAKER_AFTER_CHUNKS,
  maxDeferralsPerAsker: 4,
  servesAdvertised: true,
  deferralBudgetPerAsker: 24,
  deferralsPerChunkSent: 4,
  deferralHalfLifeMs: 30_000,
  secondCopyWaitMs: 5_000,
}

/**
 * Why a chunk left the gateway again (a copy after the first), as the gateway saw it when it
 * sent: to the neighbour it went to before; after the deferral window; after the asker's
 * deferrals for it ran out; to a deferred asker once another neighbour advertised it; to an
 * asker whose deferral budget and allowance were spent; to an asker never deferred for it
 * (its first copy went to one that does not advertise); or otherwise.
 */
export type ExtraCopyReason = 'same-asker' | 'window-over' | 'deferrals-spent' | 'advertised' | 'budget-spent' | 'never-deferred' | 'other'

/** Chunks (and asker-chunk pairs) remembered; beyond this the memory starts over. */
const MAX_REMEMBERED = 65_536

interface LastCopy { copies: number, at: number, peer: string }
/** What one peer was sent of one object: when its first chunk left, and how many chunks. */
interface Recipient { firstAt: number, chunks: number }
/** Deferrals told one asker, decayed to `at`. */
interface Decayed { count: number, at: number }

export class GatewaySeeding {
  /** object:index → copies sent and when and to whom the last left. */
  private readonly sent = new Map<string, LastCopy>()
  /** asker|object:index → times that asker was told to wait for that chunk. */
  private readonly deferrals = new Map<string, number>()
  /** peer|object → when that peer was first sent a chunk of the object, and how many since. */
  private readonly recipients = new Map<string, Recipient>()
  /** asker → DEFERRED answers it got, all chunks, decayed (the budget). */
  private readonly told = new Map<string, Decayed>()
  /** peer → chunks sent it, decayed as `told` (an asker being served may be deferred more). */
  private readonly given = new Map<string, Decayed>()
  /**
   * object:index → the copy picked for a peer and on its way out, not yet sent. The chunk server
   * picks a request, reads the chunk and hands it down paced: a chunk time can pass before
   * recordSent, and another asker's stream that picked the same never-sent chunk meanwhile was
   * sent a second copy (the 8-host bed: every one of a run's 9 extra copies, all "never
   * deferred"). The simulator sends as it picks.
   */
  private readonly picking = new Map<string, { peer: string, at: number }>()
  /** Copies after a chunk's first, by why: the fleet bed and the simulator explain the gateway's upload with them. */
  private readonly extras: Partial<Record<ExtraCopyReason, number>> = {}
  /** Times the memory of chunks sent started over (every chunk then counts as never sent). */
  private sentForgotten = 0

  constructor (
    private readonly view: SeedingView,
    readonly policy: Readonly<SeedingPolicy> = GATEWAY_SEEDING_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  /** Copies sent, and one picked and on its way out. */
  copiesSent (object: string, index: number): number {
    const key = `${object}:${index}`
    return (this.sent.get(key)?.copies ?? 0) + (this.picking.has(key) ? 1 : 0)
  }

  /** A chunk was picked for `peer` and is on its way out: until recordSent or dropped, other askers wait for it as for a copy sent. */
  picked (peer: string, object: string, index: number): void {
    if (this.picking.size >= MAX_REMEMBERED) this.picking.clear()
    this.picking.set(`${object}:${index}`, { peer, at: this.now() })
  }

  /** A chunk picked for `peer` was not sent after all (cancelled, unreadable, the stream died). */
  dropped (peer: string, object: string, index: number): void {
    const key = `${object}:${index}`
    if (this.picking.get(key)?.peer === peer) this.picking.delete(key)
  }

  /** Changes whenever the memory of chunks sent starts over: what counted never-sent chunks counts again. */
  get forgotten (): number {
    return this.sentForgotten
  }

  /** The last copy of a chunk that left, if any (the simulator explains extra copies with it). */
  lastCopy (object: string, index: number): Readonly<LastCopy> | undefined {
    return this.sent.get(`${object}:${index}`)
  }

  /** Times this asker was told to wait for this chunk. */
  deferralsOf (asker: string, object: string, index: number): number {
    return this.deferrals.get(`${asker}|${object}:${index}`) ?? 0
  }

  /** DEFERRED answers this asker got lately, all chunks, decayed as its peer score decays them. */
  deferralsTold (asker: string): number {
    return this.decayed(this.told.get(asker))
  }

  /** Chunks sent this peer lately, decayed as its DEFERRED answers are. */
  chunksGiven (peer: string): number {
    return this.decayed(this.given.get(peer))
  }

  private decayed (value: Decayed | undefined): number {
    if (value === undefined) return 0
    return value.count * 0.5 ** ((this.now() - value.at) / this.policy.deferralHalfLifeMs)
  }

  /** Copies after a chunk's first, by why (a copy). */
  extraCopies (): Partial<Record<ExtraCopyReason, number>> {
    return { ...this.extras }
  }

  /** A chunk left for `peer`. */
  recordSent (peer: string, object: string, index: number): void {
    const now = this.now()
    const key = `${object}:${index}`
    if (this.picking.get(key)?.peer === peer) this.picking.delete(key)
    const last = this.sent.get(key)
    if (last !== undefined) {
      const why = this.whyAgain(peer, object, index, last, now)
      this.extras[why] = (this.extras[why] ?? 0) + 1
    }
    if (this.recipients.size >= MAX_REMEMBERED) this.recipients.clear()
    const recipient = this.recipients.get(`${peer}|${object}`)
    if (recipient === undefined) this.recipients.set(`${peer}|${object}`, { firstAt: now, chunks: 1 })
    else recipient.chunks++
    if (this.sent.size >= MAX_REMEMBERED) {
      this.sent.clear()
      this.sentForgotten++
    }
    this.sent.set(key, { copies: (last?.copies ?? 0) + 1, at: now, peer })
    const given = this.chunksGiven(peer)
    if (this.given.size >= MAX_REMEMBERED) this.given.clear()
    this.given.set(peer, { count: given + 1, at: now })
  }

  private whyAgain (peer: string, object: string, index: number, last: LastCopy, now: number): ExtraCopyReason {
    if (last.peer === peer) return 'same-asker'
    if (now - last.at > this.policy.deferRecentUploadMs) return 'window-over'
    const times = this.deferralsOf(peer, object, index)
    if (times === 0) return this.overBudget(peer) ? 'budget-spent' : 'never-deferred'
    if (times >= this.policy.maxDeferralsPerAsker) return 'deferrals-spent'
    if (this.policy.servesAdvertised && this.view.holderCount(object, index, peer) > 0) return 'advertised'
    return this.overBudget(peer) ? 'budget-spent' : 'other'
  }

  /** Another DEFERRED answer would pass the asker's budget and its served-asker allowance: it is served. */
  private overBudget (asker: string): boolean {
    const told = this.deferralsTold(asker) + 1
    return told > this.policy.deferralBudgetPerAsker && told > this.policy.deferralsPerChunkSent * (this.chunksGiven(asker) + 1)
  }

  /**
   * How much longer a request for this chunk, asked at `askedAt`, waits while another asker
   * has a chunk never sent queued (0: it goes now). The gateway's uplink is the swarm's only
   * source of chunks nobody else holds: a second copy sent mid-seeding delays every edge by a
   * chunk time, and while it waits the asker often finds the chunk at an edge and cancels.
   */
  secondCopyWaitMs (object: string, index: number, askedAt: number): number {
    const wait = this.policy.secondCopyWaitMs
    if (wait <= 0 || this.copiesSent(object, index) === 0) return 0
    return Math.max(0, askedAt + wait - this.now())
  }

  /**
   * Whether to answer DEFERRED: the chunk went to another neighbour within the window and
   * is still on its way to being advertised. Counts the deferral when it says yes.
   */
  shouldDefer (asker: string, object: string, index: number): boolean {
    const now = this.now()
    const key = `${object}:${index}`
    // A copy on its way out to another peer counts as just sent.
    const pick = this.picking.get(key)
    const last = pick !== undefined && pick.peer !== asker ? pick : this.sent.get(key)
    if (last === undefined || last.peer === asker || now - last.at > this.policy.deferRecentUploadMs) return false
    // Only for a recipient that tells its neighbours what it holds (or has had a moment and a
    // chunk or two to start): a leech that never advertises would otherwise make the gateway
    // hold honest askers back for chunks nobody will pass on (an honest pull went from 0.75 s
    // to 6.4 s; with the time limit alone, a leech that took all 24 chunks in its first 0.4 s
    // had two edges wait 2-3 s for them, hostile row 10).
    if (!this.view.advertises(last.peer, object)) {
      const recipient = this.recipients.get(`${last.peer}|${object}`)
      // A first chunk of the object on its way out: the recipient's grace starts when it is sent.
      if (recipient === undefined ? last !== pick : now - recipient.firstAt > this.policy.advertiseGraceMs || recipient.chunks > this.policy.advertiseGraceChunks) return false
    }
    const asked = `${asker}|${key}`
    const times = this.deferrals.get(asked) ?? 0
    if (times >= this.policy.maxDeferralsPerAsker) return false
    if (times > 0 && this.policy.servesAdvertised && this.view.holderCount(object, index, asker) > 0) return false
    if (this.overBudget(asker)) return false
    const told = this.deferralsTold(asker)
    if (this.deferrals.size >= MAX_REMEMBERED) this.deferrals.clear()
    this.deferrals.set(asked, times + 1)
    if (this.told.size >= MAX_REMEMBERED) this.told.clear()
    this.told.set(asker, { count: told + 1, at: now })
    return true
  }
}
