import { open } from 'node:fs/promises'
import { blake3Hex, createBlake3 } from '../hash/index.js'
import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { bytePieces } from './byte-pieces.js'
import { translateWriteError } from './errors.js'

export interface StreamIngested {
  checksum: string
  /** BLAKE3 of each 1 MiB chunk, only for objects over one chunk (as ingestFile gives them). */
  chunkHashes?: string[]
  stagedPath: string
}

/**
 * Writes a byte stream from another store to a new staging file in 1 MiB chunks, hashing it
 * whole and per chunk on the way; the caller compares the checksum before publishing. At most
 * `size` bytes are taken, so a source that says more never fills the disk.
 */
export async function ingestStream (source: AsyncIterable<Uint8Array>, size: number, copyTo: string, name: { hash: string, where: string }, options: { signal?: AbortSignal } = {}): Promise<StreamIngested> {
  const file = await open(copyTo, 'wx', 0o600)
  try {
    const whole = createBlake3()
    const chunkHashes: string[] = []
    let position = 0
    // The next piece is asked for only once this one is written: one buffer serves them all.
    const buffer = Buffer.allocUnsafe(CHUNK_SIZE_BYTES)
    const reuse = (bytes: number): Buffer => bytes === CHUNK_SIZE_BYTES ? buffer : Buffer.allocUnsafe(bytes)
    for await (const piece of bytePieces(source, CHUNK_SIZE_BYTES, size, name, reuse)) {
      options.signal?.throwIfAborted()
      whole.update(piece)
      chunkHashes.push(blake3Hex(piece))
      try {
        let written = 0
        while (written < piece.length) written += (await file.write(piece, written, piece.length - written, position + written)).bytesWritten
        position += piece.length
      } catch (err) {
        throw translateWriteError(err, copyTo)
      }
    }
    await file.datasync()
    return { checksum: whole.digestHex(), chunkHashes: size > CHUNK_SIZE_BYTES ? chunkHashes : undefined, stagedPath: copyTo }
  } finally {
    await file.close()
  }
}
