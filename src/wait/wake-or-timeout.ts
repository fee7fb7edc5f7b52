/**
 * The one wait that readers of something still arriving need: until they are woken (a chunk
 * stored, a frame came, a neighbour joined), or a timeout passes, or their signal aborts —
 * whichever comes first. It always removes its timer, its abort listener and its waker, so a
 * loop of waits leaks nothing and a late wake-up finds nobody.
 */

/** How a wait ended. */
export type WaitOutcome = 'woken' | 'timed-out' | 'aborted'

/** Registers `wake` with whatever will call it; returns how to unregister it. */
export type Subscribe = (wake: () => void) => () => void

export interface WaitOptions {
  /** Without one, only a wake or the signal ends the wait. */
  timeoutMs?: number
  signal?: AbortSignal
}

export interface WaitOrThrowOptions extends WaitOptions {
  timeoutMs: number
  /** What a timeout rejects with (the caller names what did not arrive). */
  timeoutError: () => Error
}

/** Resolves with how the wait ended; never rejects. An already aborted signal ends it at once. */
export async function wakeOrTimeout (subscribe: Subscribe | undefined, options: WaitOptions): Promise<WaitOutcome> {
  const { signal } = options
  if (signal?.aborted === true) return 'aborted'
  return await new Promise<WaitOutcome>(resolve => {
    let settled = false
    const subscription: { unsubscribe?: () => void } = {}
    const done = (outcome: WaitOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      subscription.unsubscribe?.()
      resolve(outcome)
    }
    const onAbort = (): void => { done('aborted') }
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => { done('timed-out') }, Math.max(0, options.timeoutMs))
    signal?.addEventListener('abort', onAbort, { once: true })
    subscription.unsubscribe = subscribe?.(() => { done('woken') })
    // Woken while subscribing: `done` ran before it could know how to unsubscribe.
    if (settled) subscription.unsubscribe?.()
  })
}

/**
 * Resolves when woken; rejects with `timeoutError()` when the timeout passes first and with the
 * signal's reason when it aborts (as `signal.throwIfAborted()` would).
 */
export async function wakeOrThrow (subscribe: Subscribe, options: WaitOrThrowOptions): Promise<void> {
  const outcome = await wakeOrTimeout(subscribe, options)
  if (outcome === 'timed-out') throw options.timeoutError()
  if (outcome === 'aborted') options.signal?.throwIfAborted()
}

/**
 * Waits while `holds()` is true, looking again at each wake, for at most `timeoutMs` in all:
 * true once it no longer holds, false when the time ran out first; rejects with the signal's
 * reason when it aborts.
 */
export async function waitWhile (holds: () => boolean, subscribe: Subscribe, options: { timeoutMs: number, signal?: AbortSignal }): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs
  while (holds()) {
    const outcome = await wakeOrTimeout(subscribe, { timeoutMs: deadline - Date.now(), signal: options.signal })
    if (outcome === 'aborted') options.signal?.throwIfAborted()
    if (outcome === 'timed-out') return !holds()
  }
  return true
}

/** Waits `ms`; rejects with the signal's reason if it aborts first. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (await wakeOrTimeout(undefined, { timeoutMs: ms, signal }) === 'aborted') signal?.throwIfAborted()
}

/**
 * Everyone waiting on one owner's changes. `subscribe` suits `wakeOrTimeout`; `wakeAll` lets
 * each waiter look again (a waiter that finds nothing new simply waits again).
 */
export class Wakers {
  private readonly waiting = new Set<() => void>()

  readonly subscribe: Subscribe = (wake) => {
    this.waiting.add(wake)
    return () => { this.waiting.delete(wake) }
  }

  wakeAll (): void {
    // A copy: a woken waiter unsubscribes (and may subscribe again) while we iterate.
    for (const wake of [...this.waiting]) wake()
  }

  get size (): number { return this.waiting.size }
}
