import type { ArrivingObject } from './arriving-object.js'
import type { BodyWriter } from './body-writer.js'
import type { CaughtChunks } from './caught-chunks.js'

export interface ArrivingRange {
  first: number
  last: number
  chunkSize: number
  stallMs: number
  signal: AbortSignal
}

/** What goes to the socket next: bytes, in a body buffer that goes back once they are written (or the reader's own memory). */
interface Part {
  bytes: Buffer
  buffer?: Buffer
}

/**
 * Bytes `first..last` of an arriving object into the body, in order, chunk by chunk. Each
 * comes from a copy caught as it passed its hash check (CaughtChunks: a response that keeps
 * up with the swarm reads nothing back), or else, once the store holds it, from a read of the
 * stored chunk (the page cache: it was just written; the object's file once complete).
 *
 * Up to `depth` chunks are on their way at once, read concurrently and sent in order: one read
 * at a time, each a trip through libuv's pool behind the store's own writes and fdatasyncs
 * (6-10 ms a read under load), held a response that had fallen behind the swarm to ~70-90 MB/s
 * for the rest of the layer while the swarm brought ~130-180 (bench-containerd, 2026-12-06).
 */
export async function sendArrivingBytes (arriving: ArrivingObject, body: BodyWriter, caught: CaughtChunks, range: ArrivingRange, depth: number): Promise<void> {
  const { chunkSize, signal } = range
  const lastIndex = Math.floor(range.last / chunkSize)
  const trim = (index: number, bytes: Buffer): Buffer => {
    const offset = index * chunkSize
    return bytes.subarray(Math.max(range.first, offset) - offset, range.last - offset + 1)
  }
  const queue: Array<Promise<Part>> = []
  let next = Math.floor(range.first / chunkSize)
  try {
    while (next <= lastIndex || queue.length > 0) {
      // Start what can start without waiting, in order.
      while (next <= lastIndex && queue.length < depth) {
        const index = next
        const early = caught.take(index)
        if (early !== undefined) {
          queue.push(Promise.resolve({ bytes: trim(index, early.bytes), buffer: early.buffer }))
          next++
          continue
        }
        if (!await arriving.holds(index)) break
        // With nothing on its way, wait for a buffer the socket gives back; else send what is.
        const buffer = body.tryBuffer() ?? (queue.length === 0 ? await body.buffer(signal) : undefined)
        if (buffer === undefined) break
        queue.push(readPart(arriving, index, buffer, signal, body).then(part => ({ ...part, bytes: trim(index, part.bytes) })))
        next++
      }
      const head = queue.shift()
      if (head !== undefined) {
        const part = await head
        body.send(part.bytes, part.buffer)
        continue
      }
      const waited = next
      await arriving.waitForChunk(waited, range.stallMs, signal, () => caught.has(waited))
    }
  } catch (err) {
    // No read may still be filling a buffer when the caller ends the response.
    await Promise.allSettled(queue)
    throw err
  }
}

async function readPart (arriving: ArrivingObject, index: number, buffer: Buffer, signal: AbortSignal, body: BodyWriter): Promise<Part> {
  let bytes: Buffer
  try {
    bytes = await arriving.readChunk(index, signal, buffer)
  } catch (err) {
    body.giveBack(buffer)
    throw err
  }
  // A read that could not use the buffer (from a partial file closed meanwhile) brought its own memory.
  if (bytes.buffer === buffer.buffer) return { bytes, buffer }
  body.giveBack(buffer)
  return { bytes }
}
