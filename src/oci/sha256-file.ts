import { createReadStream } from 'node:fs'
import { createSha256 } from '../hash/index.js'
import { READ_CHUNK_BYTES } from './constants.js'

/** sha256 hex and size of a file, streamed: a layer is never held in memory. */
export async function sha256File (path: string, options: { signal?: AbortSignal } = {}): Promise<{ hex: string, size: number }> {
  const hasher = createSha256()
  let size = 0
  for await (const piece of createReadStream(path, { highWaterMark: READ_CHUNK_BYTES, signal: options.signal })) {
    const bytes = piece as Buffer
    hasher.update(bytes)
    size += bytes.length
  }
  return { hex: hasher.digest('hex'), size }
}
