import { UpstreamTooLargeError } from './errors.js'

/** A small response body read whole, refused past `maxBytes` (a manifest, a token). */
export async function readLimited (response: Response, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  const declared = Number(response.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > maxBytes) {
    await response.body?.cancel()
    throw new UpstreamTooLargeError(`a response of ${declared} bytes`, maxBytes)
  }
  const body = response.body
  if (body === null) return Buffer.alloc(0)
  const pieces: Buffer[] = []
  let size = 0
  for await (const piece of body) {
    signal.throwIfAborted()
    size += piece.byteLength
    // Throwing ends the for-await, whose return() cancels the stream: the rest is never read.
    if (size > maxBytes) throw new UpstreamTooLargeError('a response', maxBytes)
    pieces.push(Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength))
  }
  return Buffer.concat(pieces, size)
}
