import { open } from 'node:fs/promises'
import { sha256Hex } from '../hash/index.js'
import { MAX_JSON_DOCUMENT_BYTES } from './constants.js'

export interface JsonDocument {
  bytes: Buffer
  sha256: string
  value: unknown
}

export interface ReadJsonOptions {
  /** Used in messages: "index.json", "manifest sha256:…". */
  what: string
  /** Builds the module's typed error for this kind of document. */
  fail: (message: string, options?: ErrorOptions) => Error
  maxBytes?: number
  signal?: AbortSignal
}

/**
 * Reads a small JSON file with a hard size limit, so a hostile layout cannot make
 * us buffer a layer-sized "manifest". The sha256 of the exact bytes read is
 * returned so callers verify a document before trusting what it says.
 */
export async function readJsonDocument (path: string, options: ReadJsonOptions): Promise<JsonDocument> {
  const { what, fail, maxBytes = MAX_JSON_DOCUMENT_BYTES, signal } = options
  signal?.throwIfAborted()
  const bytes = await readAtMost(path, maxBytes, what, fail)
  signal?.throwIfAborted()
  return { bytes, sha256: sha256Hex(bytes), value: parseJson(bytes, what, fail) }
}

export function parseJson (bytes: Buffer, what: string, fail: ReadJsonOptions['fail']): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown
  } catch (err) {
    throw fail(`${what} is not valid JSON (${(err as Error).message}); the file is damaged: export the image again`, { cause: err })
  }
}

async function readAtMost (path: string, maxBytes: number, what: string, fail: ReadJsonOptions['fail']): Promise<Buffer> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    throw fail(`cannot read ${what} at ${path}: ${(err as Error).message}`, { cause: err })
  }
  try {
    // Read until one byte past the limit instead of trusting stat: the file may be growing.
    const pieces: Buffer[] = []
    let length = 0
    while (length <= maxBytes) {
      const piece = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - length))
      const { bytesRead } = await handle.read(piece, 0, piece.length, length)
      if (bytesRead === 0) break
      pieces.push(piece.subarray(0, bytesRead))
      length += bytesRead
    }
    if (length > maxBytes) throw fail(`${what} is larger than ${maxBytes} bytes, shoal's limit for JSON documents; this is not a normal image`)
    return Buffer.concat(pieces, length)
  } finally {
    await handle.close()
  }
}
