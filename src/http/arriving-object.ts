import { CodedError } from '../errors/index.js'
import type { KeepBytes, Store, StoreEvents } from '../store/index.js'
import { Wakers, wakeOrThrow } from '../wait/index.js'
import { RequestTimeoutError } from './errors.js'
import type { BlobSource } from './sources.js'

export interface ArrivingObjectInit {
  store: Store
  source: BlobSource
  bundleId: string
  object: string
  /** The request's signal: a client that leaves stops the fetch it started. */
  signal: AbortSignal
}

/** The source resolved, yet the object is not complete: a broken source, reported as such. */
export class SourceIncompleteError extends CodedError<'SOURCE_INCOMPLETE'> {
  override readonly name = 'SourceIncompleteError'
  constructor (object: string) { super('SOURCE_INCOMPLETE', `the blob source finished without object ${object} being complete`) }
}

/**
 * An object the store is still filling, as a reader that wants its chunks in order.
 * It asks the blob source for the object and listens to the store's `chunk:stored` and
 * `object:complete` events; a chunk already in the partial object is read at once.
 * Events seen since it started are remembered, and a version number is bumped on each,
 * so an event that fires while we look in the store is never missed.
 */
export class ArrivingObject {
  private readonly stored = new Set<number>()
  /**
   * The other objects of the bundle: their chunks arriving mean the pull is making progress,
   * so a wait for ours (queued behind a big layer the swarm fetches first) is not silence.
   */
  private siblings: ReadonlySet<string> = new Set()
  private complete = false
  private sourceDone = false
  private failure: unknown
  private version = 0
  private readonly wakers = new Wakers()
  private readonly controller = new AbortController()

  /**
   * Given each verified chunk of the object as it goes to the store (its bytes valid during the
   * call only, or until a `keep`'s release), when the response serves from verified chunks;
   * returns whether it kept the chunk, which wakes a wait for it.
   */
  catcher: ((index: number, bytes: Uint8Array, keep?: KeepBytes) => boolean) | undefined

  constructor (private readonly init: ArrivingObjectInit) {
    init.store.on('chunk:stored', this.onChunk)
    init.store.on('chunk:verified', this.onVerified)
    init.store.on('object:complete', this.onComplete)
    // Until the bundle's description is read only our own chunks count (a missing bundle: the source says why).
    init.store.requireBundle(init.bundleId).then(
      loaded => { this.siblings = new Set([...loaded.objectSizes.keys()].filter(hash => hash !== init.object)) },
      () => {},
    )
    const signal = AbortSignal.any([init.signal, this.controller.signal])
    init.source.fetchObject(init.bundleId, init.object, { signal }).then(
      () => { this.sourceDone = true; this.notify() },
      (err: unknown) => { this.failure = err; this.notify() },
    )
  }

  /**
   * Resolves once chunk `index` is held; rejects if the source fails, `signal` aborts, or for
   * `timeoutMs` no chunk of the bundle arrives: a pull busy with another of its objects first
   * (a 512 MiB layer ahead of a small one) is making progress, not a reason for a 404 (issue 8).
   * `caught`, when given, also ends the wait: the response holds a copy of the chunk (`catcher`).
   */
  async waitForChunk (index: number, timeoutMs: number, signal: AbortSignal, caught?: () => boolean): Promise<void> {
    await this.waitUntil(async () => caught?.() === true || this.complete || this.stored.has(index) || await this.heldInStore(index), timeoutMs, signal)
  }

  /**
   * Resolves once the whole object is held. Only silence fails it: `stallMs` without a chunk
   * of this object or of its bundle arriving, so a transfer that is making progress is never cut by a clock.
   */
  async waitForComplete (stallMs: number, signal: AbortSignal): Promise<void> {
    await this.waitUntil(async () => this.complete || (await this.init.store.objectState(this.init.object)).state === 'complete', stallMs, signal)
  }

  /** Bytes of a held chunk (into `into` when given); a chunk can move from partial/ to objects/ between two looks, so a miss is retried. */
  async readChunk (index: number, signal: AbortSignal, into?: Uint8Array): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.init.store.readChunk(this.init.object, index, { signal, into })
      } catch (err) {
        const code = (err as { code?: unknown }).code
        if (attempt >= 2 || (code !== 'CHUNK_NOT_PRESENT' && code !== 'ENOENT')) throw err
      }
    }
  }

  /** Stops listening and stops the fetch if it is still running (the loser of the race is aborted). */
  close (): void {
    this.init.store.off('chunk:stored', this.onChunk)
    this.init.store.off('chunk:verified', this.onVerified)
    this.init.store.off('object:complete', this.onComplete)
    this.controller.abort()
    this.notify()
  }

  private readonly onChunk = (detail: StoreEvents['chunk:stored']): void => {
    if (detail.object !== this.init.object) {
      // Progress of the same pull: wakes the wait (which looks again and restarts its clock).
      if (this.siblings.has(detail.object)) this.wakers.wakeAll()
      return
    }
    this.stored.add(detail.index)
    this.notify()
  }

  private readonly onVerified = (detail: StoreEvents['chunk:verified']): void => {
    if (detail.object !== this.init.object || this.catcher === undefined) return
    if (this.catcher(detail.index, detail.bytes, detail.keep)) this.notify()
  }

  private readonly onComplete = (detail: StoreEvents['object:complete']): void => {
    if (detail.object !== this.init.object) return
    this.complete = true
    this.notify()
  }

  private notify (): void {
    this.version++
    this.wakers.wakeAll()
  }

  private async heldInStore (index: number): Promise<boolean> {
    const state = await this.init.store.objectState(this.init.object)
    if (state.state === 'complete') return true
    return state.state === 'partial' && state.bitmap.has(index)
  }

  /** Waits until `held` says yes, looking again after every event; each wait for one is bounded by `timeoutMs`. */
  private async waitUntil (held: () => Promise<boolean>, timeoutMs: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const seen = this.version
      if (await held()) return
      // The source may have finished while the store was being asked, with an answer read
      // before the object completed: look again before calling the source broken.
      if (this.version !== seen) continue
      if (this.failure !== undefined) throw this.failure
      if (this.sourceDone) throw new SourceIncompleteError(this.init.object)
      await wakeOrThrow(this.wakers.subscribe, { timeoutMs, signal, timeoutError: () => new RequestTimeoutError(`object ${this.init.object}`, timeoutMs) })
    }
  }
}
