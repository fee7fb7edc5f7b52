import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { BufferPool } from './buffer-pool.js'
import { SEND_PIECE_BYTES } from './constants.js'

export type ReadChunk = (hash: string, index: number, options: { signal?: AbortSignal, into?: Uint8Array }) => Promise<Uint8Array>

/**
 * A chunk read into pooled memory behind room for its frame's head, for a stream that sends
 * from memory it is lent (a lane's holder end, lane-stream.ts `sendBorrowed`): the head is
 * written into the room and the frame goes out as one buffer, with no copy on our side.
 */
export interface FramedChunk {
  /** The chunk's bytes, `headRoom` bytes into `buffer`. */
  bytes: Uint8Array
  /** FRAME_HEAD_ROOM_BYTES, then the chunk. */
  buffer: Uint8Array
  /**
   * Gives the buffer back for the next read: only once nothing can read it any more (the
   * lane's write of it completed, or it was never sent). Never called, the buffer is
   * simply left to the garbage collector.
   */
  release: () => void
}

/** Room before a framed chunk for its frame's head: the frame's length, the response's fields (a 32-byte object ID, index, status), the data field's tag and length. */
export const FRAME_HEAD_ROOM_BYTES = 128

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
  private readonly framedBuffers: BufferPool

  constructor (private readonly read: ReadChunk, spareBuffers: number) {
    this.buffers = new BufferPool(CHUNK_SIZE_BYTES, spareBuffers)
    this.framedBuffers = new BufferPool(FRAME_HEAD_ROOM_BYTES + CHUNK_SIZE_BYTES, spareBuffers, { aligned: true })
  }

  /**
   * The chunk behind FRAME_HEAD_ROOM_BYTES of room, in a buffer that stays the caller's until
   * `release`. For a lane: node's TLS encrypts a single buffer straight from its memory, where
   * the pieces below were joined into a fresh copy first (TLSWrap's write of several buffers),
   * so a chunk cost two copies and a fresh megabyte each before it was encrypted. The chunk
   * starts on a page boundary of the pool's aligned memory, so a read past the page cache (an
   * object the store wrote O_DIRECT) lands there instead of in a bounce buffer copied out.
   */
  async framed (hash: string, index: number, signal: AbortSignal): Promise<FramedChunk> {
    const buffer = this.framedBuffers.take(FRAME_HEAD_ROOM_BYTES + CHUNK_SIZE_BYTES, FRAME_HEAD_ROOM_BYTES)
    const lease = this.framedBuffers.lease(buffer)
    const release = (): void => { lease?.release() }
    try {
      const into = buffer.subarray(FRAME_HEAD_ROOM_BYTES)
      const read = await this.read(hash, index, { signal, into })
      // A store read that could not use `into` (a partial object's slow path) brought its own memory.
      if (read.buffer !== buffer.buffer || read.byteOffset !== into.byteOffset) into.set(read)
      return { bytes: into.subarray(0, read.byteLength), buffer, release }
    } catch (err) {
      release()
      throw err
    }
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
