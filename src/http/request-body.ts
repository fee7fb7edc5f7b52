import type { IncomingMessage } from 'node:http'
import { REFUSED_BODY_DRAIN_BYTES, REFUSED_BODY_DRAIN_MS } from './constants.js'
import { RequestTimeoutError } from './errors.js'

export interface BodyLimits {
  maxBytes: number
  idleTimeoutMs: number
  signal: AbortSignal
  /** The error a body over `maxBytes` gets (its code depends on what the body is). */
  tooLarge: () => Error
}

/**
 * Hands each piece of a request body to `sink`, one at a time (the for-await pauses the
 * socket while `sink` works, so a slow disk never makes us buffer). The body is cut off
 * past `maxBytes`, after `idleTimeoutMs` without a byte, or when `signal` aborts.
 * Returns the bytes received. A body refused (too large, or `sink` failed) is left unread,
 * not destroyed, so the answer can still reach the client (drainRefusedBody).
 */
export async function consumeBody (req: IncomingMessage, limits: BodyLimits, sink: (piece: Buffer) => Promise<void>): Promise<number> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limits.maxBytes) throw limits.tooLarge()
  let received = 0
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => { req.destroy(new RequestTimeoutError('request body', limits.idleTimeoutMs)) }, limits.idleTimeoutMs)
  }
  const onAbort = (): void => { req.destroy(limits.signal.reason instanceof Error ? limits.signal.reason : undefined) }
  limits.signal.addEventListener('abort', onAbort, { once: true })
  try {
    limits.signal.throwIfAborted()
    arm()
    for await (const piece of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      received += piece.length
      if (received > limits.maxBytes) throw limits.tooLarge()
      clearTimeout(timer)
      await sink(piece)
      arm()
    }
    return received
  } finally {
    clearTimeout(timer)
    limits.signal.removeEventListener('abort', onAbort)
  }
}

/** A small body (a manifest, a control request) read whole into memory, within the same limits. */
export async function readBody (req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const pieces: Buffer[] = []
  const length = await consumeBody(req, limits, async piece => { pieces.push(piece) })
  return Buffer.concat(pieces, length)
}

/**
 * After answering a request whose body was not taken: reads the rest of the body and throws it
 * away, up to REFUSED_BODY_DRAIN_BYTES or REFUSED_BODY_DRAIN_MS, then closes the connection if
 * the body has not ended. Not closed at once: the client is still sending, and a socket closed
 * with bytes arriving answers them with a reset, which can reach the client before it reads
 * the answer (RFC 9112 §9.6): skopeo then reported "broken pipe", not why it was refused. A
 * body drained to its end leaves the connection open for the client's next request.
 */
export function drainRefusedBody (req: IncomingMessage): void {
  if (req.complete || req.destroyed) return
  let drained = 0
  const cut = (): void => { req.socket.destroy() }
  const timer = setTimeout(cut, REFUSED_BODY_DRAIN_MS)
  timer.unref()
  req.on('data', (piece: Buffer) => {
    drained += piece.length
    if (drained > REFUSED_BODY_DRAIN_BYTES) cut()
  })
  req.once('close', () => { clearTimeout(timer) })
}
