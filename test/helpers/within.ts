/**
 * `promise`, or a failure naming `what` once `ms` passed: a bound for a test that would
 * otherwise hang until its own timeout and say nothing, not a timing. `what` may be a function,
 * to say what was seen by then.
 */
export async function within<T> (promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`${typeof what === 'string' ? what : what()} within ${ms} ms`)) }, Math.max(0, ms))
  })
  try {
    return await Promise.race([promise, late])
  } finally {
    clearTimeout(timer)
  }
}
