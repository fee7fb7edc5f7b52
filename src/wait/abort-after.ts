/**
 * A signal that aborts after `ms`, or when `signal` does: what `AbortSignal.any([signal,
 * AbortSignal.timeout(ms)])` promises, kept. On Node 20 the timeout inside `any` is held only
 * weakly (its timer holds a WeakRef, the composite a weak set of sources), so a garbage
 * collection before it fires loses it and the composite never times out (nodejs/node#57736;
 * a daemon with 1 MiB semi-spaces collects every few milliseconds). On the 16-host bed lanes
 * given 2 s came up after 4-11 s and offers aged past their TTL; any other deadline built that
 * way (a stream's open, a message's send, a peer's answer) could be lost the same way, and a
 * peer that never answers would hold what waits on it for good.
 *
 * Here the timer holds its controller strongly. It is unref'd, like AbortSignal.timeout's, and
 * ends `ms` after the call whatever happened: nothing outlives `ms`. The parent is joined with
 * `AbortSignal.any`, which adds no listener to it, so a long-lived parent (a node's lifetime)
 * does not collect one listener per deadline.
 */
export function abortAfter (ms: number, signal?: AbortSignal): AbortSignal {
  const controller = new AbortController()
  setTimeout(() => {
    // The reason AbortSignal.timeout gives, so messages and `name` checks read the same.
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
  }, Math.max(0, ms)).unref()
  return signal === undefined ? controller.signal : AbortSignal.any([signal, controller.signal])
}
