import { wakeOrTimeout } from '../wait/index.js'
import { StatusBatch } from './pb/swarm-status.pb.js'
import { DIGEST_ANSWER_MIN_INTERVAL_MS, MAX_KNOWN_NODES, STATUS_SYNC_TIMEOUT_MS } from './status-constants.js'
import { encodeDigest, readDigest } from './status-digest.js'
import type { StatusGossipContext } from './status-options.js'
import type { StatusOutbox } from './status-outbox.js'
import { RecentMap } from '../recent/index.js'

/** How long a neighbour's answer to our digest naming only this node may take and still count as our first view. */
const FIRST_VIEW_MAX_MS = 10 * STATUS_SYNC_TIMEOUT_MS

/**
 * A new neighbour and this node swap views once, by digest (status-digest.ts): each says what it
 * holds, and the other answers with what it lacks or holds older. After that only what changes
 * travels (the outbox).
 */
export class StatusSync {
  /** New neighbours to send our digest to, one at a time. */
  private readonly queue: string[] = []
  private syncing = false
  /** neighbour → wakes the sync when its answer to our digest arrived (or it left). */
  private readonly waiters = new Map<string, () => void>()
  /** When each neighbour's digest was last answered: a whole view is not sent again on demand. */
  private readonly answeredAt = new RecentMap<string, number>(MAX_KNOWN_NODES)
  /**
   * Neighbours whose answer is this node's first view (our digest named only this node) → until
   * when: till the answer is complete, or FIRST_VIEW_MAX_MS (a slow link's answer may outlast
   * the sync's wait, and is still the fleet; one that never answers keeps it no longer).
   */
  private readonly firstViews = new Map<string, number>()

  constructor (private readonly ctx: StatusGossipContext, private readonly outbox: StatusOutbox) {}

  /** A new neighbour: it gets our digest when those before it answered. */
  enqueue (peer: string): void {
    if (!this.queue.includes(peer)) this.queue.push(peer)
    void this.pump()
  }

  /** The neighbour's answer to our digest is complete (its statuses applied), or it left: the next one's turn. */
  answered (peer: string): void {
    this.firstViews.delete(peer)
    this.waiters.get(peer)?.()
  }

  /**
   * Whether `peer`'s statuses are the answer to a digest that named only this node (it just
   * joined, or lost its whole view): they are the fleet, not introductions to count.
   */
  isFirstView (peer: string): boolean {
    const until = this.firstViews.get(peer)
    if (until === undefined) return false
    if (this.ctx.now() < until) return true
    this.firstViews.delete(peer)
    return false
  }

  stop (): void {
    this.firstViews.clear()
    for (const wake of this.waiters.values()) wake()
    this.queue.length = 0
  }

  /**
   * A new neighbour told us what it holds: note it (later heartbeats then go as refreshes) and
   * send what it lacks or holds older, ending with a batch that says the answer is complete.
   * Once per neighbour per DIGEST_ANSWER_MIN_INTERVAL_MS: asking again gets an empty answer, so
   * a digest cannot be used to make this node send its whole view over and over.
   */
  answerDigest (from: string, digest: NonNullable<StatusBatch['digest']>): void {
    let entries
    try {
      entries = readDigest(digest)
    } catch (err) {
      this.ctx.init.onInvalid?.(from, `status digest: ${err instanceof Error ? err.message : String(err)}`)
      return
    }
    const now = this.ctx.now()
    const last = this.answeredAt.get(from)
    if (last === undefined || now - last >= DIGEST_ANSWER_MIN_INTERVAL_MS) {
      this.answeredAt.set(from, now)
      for (const entry of entries) {
        const held = this.ctx.book.byKeyTail(entry.tail)
        if (held !== undefined) this.outbox.noteKnown(from, held.publisher, { sequence: entry.sequence, bodyHash: held.bodyHash.startsWith(entry.bodyPrefix) ? held.bodyHash : '' })
      }
      this.outbox.queueAll(from)
    }
    // A digest that names only its sender: a node that just joined, whose first view this answer is.
    this.outbox.answerDigest(from, entries.length <= 1)
  }

  /**
   * Sends our digest to one new neighbour at a time and waits for its answer before the next:
   * a joining node takes the fleet's view from its first neighbour, and from the others only
   * what that one lacked (a new node on 20 neighbours took 20 whole views before: ~60 MiB at 5,000 nodes).
   */
  private async pump (): Promise<void> {
    if (this.syncing) return
    this.syncing = true
    const signal = this.ctx.signal
    try {
      while (this.queue.length > 0 && !signal.aborted) {
        const peer = this.queue.shift() as string
        const connection = this.ctx.components.connections().find(c => c.status === 'open' && c.remotePeer.toString() === peer)
        if (connection === undefined) continue
        // Waiting starts before the digest goes: the answer may come before the send returns.
        // A neighbour that never answers (an older version, a stalled one) holds up the others
        // STATUS_SYNC_TIMEOUT_MS at most; `stop()` wakes it.
        const done = new AbortController()
        const answered = wakeOrTimeout(wake => {
          this.waiters.set(peer, wake)
          return () => { this.waiters.delete(peer) }
        }, { timeoutMs: STATUS_SYNC_TIMEOUT_MS, signal: done.signal })
        if (this.ctx.book.size <= 1) this.firstViews.set(peer, this.ctx.now() + FIRST_VIEW_MAX_MS)
        try {
          await this.ctx.send(connection, { statuses: [], refreshes: [], notices: [], answersDigest: false, digest: encodeDigest(this.ctx.book.all()) })
          await answered
        } catch (err) {
          this.ctx.components.log.debug('could not send a status digest', { peer, err })
        } finally {
          done.abort()
        }
      }
    } finally {
      this.syncing = false
    }
  }
}
