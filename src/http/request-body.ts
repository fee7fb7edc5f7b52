import type { IncomingMessage, ServerResponse } from 'node:http'
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
 * not destroyed, so the answer can still reach the client (endRefused).
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

/** Refusals whose whole answer is out while their body still drains (see endRefused). */
const answeredWhileDraining = new WeakSet<ServerResponse>()

/**
 * Ends the answer to a request whose body was not taken (refused: over the quota, not allowed,
 * a bad tar), after `writeHead`. The answer goes out whole at once (its Content-Length says
 * where it ends), but the response is ended only once the rest of the body has been read and
 * thrown away, up to REFUSED_BODY_DRAIN_BYTES or REFUSED_BODY_DRAIN_MS; past that the
 * connection is closed. A body read to its end leaves a kept-alive connection open for the
 * client's next request.
 *
 * Why not end at once and drain after: Node closes a connection whose client asked for one
 * request per connection (`Connection: close`, as the CLI's and skopeo's requests are) as
 * soon as the answer is out, with the client's bytes unread. The client still sending then
 * meets a broken pipe (a reset over TCP), which can reach it before it reads the answer (RFC
 * 9112 §9.6): `shoal push` over the quota printed "write EPIPE", skopeo "broken pipe". A
 * connection closed with bytes arriving is the same hazard, so a client that sends past the
 * bound may still miss the answer; one that stops sending at the answer (RFC 9112 §9.3, the
 * CLI does) never reaches it.
 */
export function endRefused (req: IncomingMessage, res: ServerResponse, answer: Buffer | undefined): void {
  if (req.complete || req.destroyed) {
    res.end(answer)
    return
  }
  if (answer === undefined || answer.length === 0) res.flushHeaders()
  else res.write(answer)
  answeredWhileDraining.add(res)
  let drained = 0
  const cut = (): void => { req.socket.destroy() }
  const timer = setTimeout(cut, REFUSED_BODY_DRAIN_MS)
  timer.unref()
  // A handler may have read through a stand-in (receivePush): dropping it paused the request,
  // and a paused request gains no flow from a new 'data' listener.
  req.unpipe()
  req.on('data', (piece: Buffer) => {
    drained += piece.length
    if (drained > REFUSED_BODY_DRAIN_BYTES) cut()
  })
  req.once('end', () => { res.end() })
  req.once('close', () => { clearTimeout(timer) })
  req.resume()
}

/**
 * Whether the whole answer went out: a response finished, or a refusal whose connection closed
 * while its body drained (its answer was out before; see endRefused).
 */
export function answeredInFull (res: ServerResponse): boolean {
  return res.writableFinished || answeredWhileDraining.has(res)
}
