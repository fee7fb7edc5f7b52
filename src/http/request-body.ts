import type { IncomingMessage } from 'node:http'
import { RequestTimeoutError, type RegistryError } from './errors.js'

export interface BodyLimits {
  maxBytes: number
  idleTimeoutMs: number
  signal: AbortSignal
  /** The error a body over `maxBytes` gets (its code depends on what the body is). */
  tooLarge: () => RegistryError
}

/**
 * Hands each piece of a request body to `sink`, one at a time (the for-await pauses the
 * socket while `sink` works, so a slow disk never makes us buffer). The body is cut off
 * past `maxBytes`, after `idleTimeoutMs` without a byte, or when `signal` aborts.
 * Returns the bytes received.
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
    for await (const piece of req as AsyncIterable<Buffer>) {
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

/** A small body (a manifest) read whole into memory, within the same limits. */
export async function readBody (req: IncomingMessage, limits: BodyLimits): Promise<Buffer> {
  const pieces: Buffer[] = []
  const length = await consumeBody(req, limits, async piece => { pieces.push(piece) })
  return Buffer.concat(pieces, length)
}
