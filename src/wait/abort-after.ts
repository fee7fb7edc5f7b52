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

/**
 * Runs `work` under a signal that aborts after `ms` or when `signal` does, and ends the deadline
 * as soon as `work` settles: for a deadline that is nearly always met and made once a message
 * (a chunk's send). abortAfter's timer runs its whole `ms` whatever happens, then builds a
 * TimeoutError and aborts a signal nobody reads any more, and joins the parent with
 * `AbortSignal.any`: ~80 us of CPU a call where this takes ~10 (a tight loop of calls, node 20
 * here), and on a holder the deadlines of one pull's chunks went off during the next, 30 s later.
 * The parent gets a listener only while `work` runs. When the deadline, not `signal`, ended the
 * work and `expired` is given, its error is thrown instead of the work's.
 */
export async function withinDeadline<T> (ms: number, signal: AbortSignal | undefined, work: (within: AbortSignal) => Promise<T>, expired?: () => Error): Promise<T> {
  const controller = new AbortController()
  const onAbort = (): void => { controller.abort(signal?.reason) }
  if (signal?.aborted === true) onAbort()
  else signal?.addEventListener('abort', onAbort, { once: true })
  const timer = setTimeout(() => {
    controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))
  }, Math.max(0, ms))
  timer.unref()
  try {
    return await work(controller.signal)
  } catch (err) {
    if (expired !== undefined && controller.signal.aborted && signal?.aborted !== true) throw expired()
    throw err
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}
