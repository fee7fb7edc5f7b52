import { createReadStream } from 'node:fs'
import { createBlake3 } from './blake3.js'

/** BLAKE3 of a file's bytes, streamed (a layer is never held in memory). */
export async function blake3File (path: string, options: { signal?: AbortSignal } = {}): Promise<{ hex: string, size: number }> {
  const hasher = createBlake3()
  let size = 0
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20, signal: options.signal })) {
    const bytes = piece as Buffer
    hasher.update(bytes)
    size += bytes.length
  }
  return { hex: hasher.digestHex(), size }
}
