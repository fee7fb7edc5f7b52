/**
 * Which of a gateway's chunk streams have a chunk queued that the gateway never sent
 * (gateway-seeding.ts secondCopyWaitMs: a second copy waits while another asker that passes
 * chunks on has one). Kept as counts updated when a request is queued, leaves the queue or its
 * chunk first goes out, so the question costs nothing per pick: the chunk server used to scan
 * every other stream's whole queue on each pick of a held copy, and woke every held copy on
 * every request queued anywhere.
 */
export class FirstCopyQueues<Session> {
  /** chunk key → the sessions that have it queued, while it was never sent. */
  private readonly byChunk = new Map<string, Set<Session>>()
  /** session → never-sent chunks it has queued (only sessions with at least one). */
  private readonly counts = new Map<Session, number>()

  /** `session` queued `key`, a chunk never sent. */
  queued (session: Session, key: string): void {
    let sessions = this.byChunk.get(key)
    if (sessions === undefined) {
      sessions = new Set()
      this.byChunk.set(key, sessions)
    }
    if (sessions.has(session)) return
    sessions.add(session)
    this.counts.set(session, (this.counts.get(session) ?? 0) + 1)
  }

  /** `key` left `session`'s queue (picked or cancelled). True when that was its last never-sent chunk. */
  unqueued (session: Session, key: string): boolean {
    const sessions = this.byChunk.get(key)
    if (sessions?.delete(session) !== true) return false
    if (sessions.size === 0) this.byChunk.delete(key)
    return this.decrement(session)
  }

  /** `key`'s first copy went out: it is a second copy wherever else it is queued. Returns the sessions left with none. */
  sent (key: string): Session[] {
    const sessions = this.byChunk.get(key)
    if (sessions === undefined) return []
    this.byChunk.delete(key)
    const emptied: Session[] = []
    for (const session of sessions) if (this.decrement(session)) emptied.push(session)
    return emptied
  }

  /** The session closed. True when it had never-sent chunks queued. */
  closed (session: Session): boolean {
    if (!this.counts.delete(session)) return false
    for (const [key, sessions] of this.byChunk) {
      if (sessions.delete(session) && sessions.size === 0) this.byChunk.delete(key)
    }
    return true
  }

  /** Forget everything (the gateway's memory of what it sent started over: the caller counts again). */
  clear (): void {
    this.byChunk.clear()
    this.counts.clear()
  }

  /** The sessions with a never-sent chunk queued. */
  sessions (): IterableIterator<Session> {
    return this.counts.keys()
  }

  private decrement (session: Session): boolean {
    const count = (this.counts.get(session) ?? 0) - 1
    if (count > 0) {
      this.counts.set(session, count)
      return false
    }
    this.counts.delete(session)
    return true
  }
}
