import type { PullProgress } from './swarm-events.js'

/**
 * One caller waiting for a bundle: which of its objects are still incomplete, how far it
 * got, and the promise it waits on. Several jobs may share objects (a base layer); the
 * scheduler fetches each chunk once for all of them.
 */
export class PullJob {
  readonly remaining = new Set<string>()
  readonly progress: PullProgress
  lastProgressAt: number
  private readonly settled: Promise<void>
  private resolveJob!: () => void
  private rejectJob!: (err: Error) => void
  private done = false

  constructor (
    readonly bundleId: string, private readonly busyPeers: () => number, private readonly onProgress?: (progress: PullProgress) => void,
    private readonly now: () => number = Date.now,
  ) {
    this.lastProgressAt = now()
    this.progress = { bundleId, totalBytes: 0, presentBytes: 0, totalChunks: 0, presentChunks: 0, peers: 0 }
    this.settled = new Promise<void>((resolve, reject) => {
      this.resolveJob = resolve
      this.rejectJob = reject
    })
    // The swarm awaits `wait()`; a job rejected before anyone waits must not be "unhandled".
    this.settled.catch(() => {})
  }

  get isDone (): boolean {
    return this.done
  }

  /** Accounts for an object at the start: its size, and what of it is already present. */
  addObject (object: string, init: { bytes: number, chunks: number, presentBytes: number, presentChunks: number, complete: boolean }): void {
    this.progress.totalBytes += init.bytes
    this.progress.totalChunks += init.chunks
    this.progress.presentBytes += init.presentBytes
    this.progress.presentChunks += init.presentChunks
    if (!init.complete) this.remaining.add(object)
  }

  chunkStored (bytes: number): void {
    this.progress.presentBytes += bytes
    this.progress.presentChunks++
    this.lastProgressAt = this.now()
    this.progress.peers = this.busyPeers()
    this.onProgress?.({ ...this.progress })
  }

  /** Returns true when this completed the job. */
  objectComplete (object: string): boolean {
    if (!this.remaining.delete(object) || this.remaining.size > 0) return false
    this.finish()
    return true
  }

  finish (): void {
    if (this.done) return
    this.done = true
    this.progress.presentBytes = this.progress.totalBytes
    this.progress.presentChunks = this.progress.totalChunks
    this.resolveJob()
  }

  fail (err: Error): void {
    if (this.done) return
    this.done = true
    this.rejectJob(err)
  }

  async wait (signal?: AbortSignal): Promise<void> {
    if (signal === undefined) return await this.settled
    signal.throwIfAborted()
    let onAbort = (): void => {}
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')) }
      signal.addEventListener('abort', onAbort, { once: true })
    })
    aborted.catch(() => {})
    try {
      await Promise.race([this.settled, aborted])
    } finally {
      // A long-lived signal (the daemon's) outlives many pulls: do not leave a listener per pull on it.
      signal.removeEventListener('abort', onAbort)
    }
  }
}
