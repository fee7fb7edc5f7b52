/**
 * Polls `check` (a store read: an accepted record or a bundle sets no event a test can wait on
 * first) until it answers, or fails naming `what` after `timeoutMs`: a bound, not a timing.
 */
export async function until<T> (what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const found = await check()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
