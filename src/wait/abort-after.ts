/**
 * A signal that aborts after `ms`, or when `signal` does: what `AbortSignal.any([signal,
 * AbortSignal.timeout(ms)])` promises, kept. On Node 20 the timeout inside `any` is held only
 * weakly (its timer holds a WeakRef, the composite a weak set of sources), so a garbage
 * collection before it fires loses it and the composite never times out (nodejs/node#57736;
 * a daemon with 1 MiB semi-spaces collects every few milliseconds). On the 16-host bed lanes
 * given 2 s came up after 4-11 s and offers aged past their TTL. Here the timer holds the
 * controller strongly; it is unref'd, like AbortSignal.timeout's, and the listener on `signal`
 * goes when either fires, so nothing outlives `ms`.
 */
export function abortAfter (ms: number, signal?: AbortSignal): AbortSignal {
  const controller = new AbortController()
  if (signal?.aborted === true) {
    controller.abort(signal.reason)
    return controller.signal
  }
  const onAbort = (): void => {
    clearTimeout(timer)
    controller.abort(signal?.reason)
  }
  const timer = setTimeout(() => {
    signal?.removeEventListener('abort', onAbort)
    // The reason AbortSignal.timeout gives, so messages and `name` checks read the same.
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
  }, Math.max(0, ms))
  timer.unref()
  signal?.addEventListener('abort', onAbort, { once: true })
  return controller.signal
}
