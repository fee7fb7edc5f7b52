/**
 * Resolves as `promise` does, or rejects with the signal's reason when it aborts first.
 * `promise` runs on either way: what becomes of it after the race is settled is not the caller's
 * concern (its rejection is handled here, so a late failure is not an unhandled rejection).
 */
export async function raceAbort<V> (promise: Promise<V>, signal: AbortSignal): Promise<V> {
  promise.catch(() => {})
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
