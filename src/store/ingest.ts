import { open, type FileHandle } from 'node:fs/promises'
import { createBlake3, createSha256, blake3Hex } from '../hash/index.js'
import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { INGEST_BUFFER_BYTES } from './constants.js'
import { translateWriteError } from './errors.js'

/** What one pass over a file learns: every digest the store and the OCI checks need. */
export interface IngestedFile {
  checksum: string
  size: number
  /** BLAKE3 of each 1 MiB chunk, only for files over one chunk. */
  chunkHashes?: string[]
  sha256?: string
  /** Where the verified bytes now are: a staging copy, or the source itself when moving. */
  stagedPath: string
}

export interface IngestOptions {
  /** Copy to this path while hashing; without it the file is only read (it will be moved). */
  copyTo?: string
  sha256?: boolean
  fsync?: boolean
  signal?: AbortSignal
}

/**
 * Reads a file once, in whole chunks, hashing it (BLAKE3 whole and per chunk, optionally
 * sha256) and optionally copying it. Hashing what is written, from the same buffer, means the
 * stored bytes are exactly the hashed ones even if the source changes meanwhile.
 */
export async function ingestFile (source: string, options: IngestOptions = {}): Promise<IngestedFile> {
  const input = await open(source, 'r')
  let output: FileHandle | undefined
  try {
    if (options.copyTo !== undefined) output = await open(options.copyTo, 'wx', 0o600)
    const whole = createBlake3()
    const sha = options.sha256 === true ? createSha256() : undefined
    const chunkHashes: string[] = []
    const buffer = Buffer.allocUnsafe(INGEST_BUFFER_BYTES)
    let size = 0
    for (;;) {
      options.signal?.throwIfAborted()
      const filled = await readFull(input, buffer)
      if (filled === 0) break
      const piece = buffer.subarray(0, filled)
      whole.update(piece)
      sha?.update(piece)
      chunkHashes.push(blake3Hex(piece))
      if (output !== undefined) await writeAll(output, piece, options.copyTo ?? source)
      size += filled
      if (filled < buffer.length) break
    }
    if (output !== undefined && options.fsync !== false) await output.sync()
    return {
      checksum: whole.digestHex(),
      size,
      chunkHashes: size > CHUNK_SIZE_BYTES ? chunkHashes : undefined,
      sha256: sha?.digest('hex'),
      stagedPath: options.copyTo ?? source,
    }
  } finally {
    await input.close()
    await output?.close()
  }
}

/** Fills the buffer unless the file ends first; chunk boundaries must not depend on short reads. */
async function readFull (file: FileHandle, buffer: Buffer): Promise<number> {
  let filled = 0
  while (filled < buffer.length) {
    const { bytesRead } = await file.read(buffer, filled, buffer.length - filled, null)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  return filled
}

async function writeAll (file: FileHandle, data: Buffer, path: string): Promise<void> {
  try {
    let written = 0
    while (written < data.length) {
      const { bytesWritten } = await file.write(data, written, data.length - written)
      written += bytesWritten
    }
  } catch (err) {
    throw translateWriteError(err, path)
  }
}
