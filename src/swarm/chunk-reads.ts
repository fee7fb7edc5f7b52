import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { BufferPool } from './buffer-pool.js'
import { SEND_PIECE_BYTES } from './constants.js'

export type ReadChunk = (hash: string, index: number, options: { signal?: AbortSignal, into?: Uint8Array }) => Promise<Uint8Array>

/**
 * Chunks read for sending, handed back as pieces of SEND_PIECE_BYTES that the send path may
 * keep as long as it likes. A fresh 1 MiB buffer per chunk read is, with the daemon's fixed
 * 128 KiB mmap threshold (bin/shoal.js's first line), an mmap, 256 page faults and an munmap:
 * reading 512 MiB that way cost 1.7-2.1 CPU-s on this machine kind, against 0.2 s into 64 KiB
 * pieces, which malloc serves from memory it already holds. So a chunk is read into one of a
 * few reused buffers and copied into heap-sized pieces (a memcpy, ~0.1 ms per MiB). The
 * reused buffer cannot be what is sent: the muxer and cipher below may keep a reference to
 * queued bytes after the send resolved, and a buffer read into again then would put another
 * chunk's bytes on the wire.
 */
export class ChunkReads {
  private readonly buffers: BufferPool

  constructor (private readonly read: ReadChunk, spareBuffers: number) {
    this.buffers = new BufferPool(CHUNK_SIZE_BYTES, spareBuffers)
  }

  async pieces (hash: string, index: number, signal: AbortSignal): Promise<Uint8Array[]> {
    const into = this.buffers.take(CHUNK_SIZE_BYTES)
    const lease = this.buffers.lease(into)
    try {
      return copyInPieces(await this.read(hash, index, { signal, into }), SEND_PIECE_BYTES)
    } finally {
      lease?.release()
    }
  }
}

/**
 * Copies of `bytes` in order, each at most `pieceBytes` long. Not `bytes.slice`: on a Buffer
 * (what the store returns) that is a view of the same memory, not a copy.
 */
export function copyInPieces (bytes: Uint8Array, pieceBytes: number): Uint8Array[] {
  const pieces: Uint8Array[] = []
  for (let at = 0; at < bytes.byteLength; at += pieceBytes) {
    const part = bytes.subarray(at, Math.min(bytes.byteLength, at + pieceBytes))
    const piece = Buffer.allocUnsafe(part.byteLength)
    piece.set(part)
    pieces.push(piece)
  }
  return pieces
}
