/**
 * A response body's pieces in groups of about `bytes`: a group is handed on once it holds
 * `bytes`, once `waitMs` passed since its first piece with no more arriving, or at the body's
 * end. undici hands a body on in 64 KiB pieces, and a staging file written piece by piece did
 * one positional write per piece and woke its readers for each (8,192 times per 512 MiB layer),
 * so every reader downstream read, framed, sent, received and wrote again in 64 KiB steps: a
 * pool job, a frame and a socket write per step on both sides of a cold-fleet pull. `waitMs`
 * bounds what a group adds to the first byte's latency when the registry is slow.
 */
export async function * bodyBatches (body: AsyncIterable<Uint8Array>, options: { bytes: number, waitMs: number }): AsyncGenerator<Uint8Array[]> {
  const iterator = body[Symbol.asyncIterator]()
  let group: Uint8Array[] = []
  let groupBytes = 0
  let deadline = 0
  let next: Promise<IteratorResult<Uint8Array>> | undefined
  let ended = false
  try {
    for (;;) {
      next ??= iterator.next()
      const result = group.length === 0 ? await next : await beforeDeadline(next, deadline)
      if (result === undefined) {
        // The group waited long enough: hand it on; the piece on its way joins the next one.
        yield group
        group = []
        groupBytes = 0
        continue
      }
      next = undefined
      if (result.done === true) {
        ended = true
        break
      }
      if (group.length === 0) deadline = performance.now() + options.waitMs
      group.push(result.value)
      groupBytes += result.value.byteLength
      if (groupBytes >= options.bytes) {
        yield group
        group = []
        groupBytes = 0
      }
    }
    if (group.length > 0) yield group
  } finally {
    if (!ended) {
      // Abandoned mid-body (the consumer failed): a read under way settles unobserved, and the
      // body is cancelled without waiting for it, which a stalled upstream would never end.
      next?.catch(() => undefined)
      void iterator.return?.().catch(() => undefined)
    }
  }
}

/** `next`'s result, or undefined when `deadline` (performance.now()) passes first. */
async function beforeDeadline<T> (next: Promise<T>, deadline: number): Promise<T | undefined> {
  const ms = Math.max(0, deadline - performance.now())
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([next, new Promise<undefined>(resolve => { timer = setTimeout(resolve, ms, undefined) })])
  } finally {
    clearTimeout(timer)
  }
}
