import { raceAbort } from '../wait/index.js'

/**
 * Concurrent callers asking for the same key share one run of the work. The work runs under
 * the owner's lifetime signal, not a caller's: a client that leaves stops waiting but does not
 * cancel what others wait on (or what would be wasted half-done). A failed run is forgotten
 * at once, so the next caller tries again.
 */
export class SingleFlight<V> {
  private readonly running = new Map<string, Promise<V>>()

  constructor (private readonly lifetime: AbortSignal) {}

  async run (key: string, work: (signal: AbortSignal) => Promise<V>, signal: AbortSignal): Promise<V> {
    let shared = this.running.get(key)
    if (shared === undefined) {
      shared = work(this.lifetime).finally(() => { this.running.delete(key) })
      this.running.set(key, shared)
      // Waiters may all leave; the run's failure must not become an unhandled rejection.
      shared.catch(() => undefined)
    }
    return await raceAbort(shared, signal)
  }

  has (key: string): boolean {
    return this.running.has(key)
  }

  /** Resolves once every run in flight has ended, however (for a close that must not leave writers behind). */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.running.values()])
  }
}
