import type { Stream } from '@libp2p/interface'

/**
 * What the chunk protocol (chunk-protocol.ts, framing.ts, reader-budget.ts) uses of a stream:
 * a libp2p stream is one, and so is a data lane (lane-stream.ts), so the protocol, its limits,
 * pacing and charges are written once for both.
 */
export type ChunkStream = Pick<Stream, 'status' | 'writeBufferLength' | 'send' | 'close' | 'abort' | 'addEventListener' | 'removeEventListener'>

/**
 * A stream that can send from memory it is lent and say when it is done with it: a lane
 * (node's TLS has consumed the bytes once their write completed). A libp2p stream cannot:
 * its muxer and cipher may keep a view of queued bytes with no word on when they let go.
 */
export interface BorrowingStream {
  /** Sends `bytes` as `send` does; `written` runs once the stream no longer reads them (not at all if the stream died first). */
  sendBorrowed: (bytes: Uint8Array, written: () => void) => boolean
}

export function borrows (stream: ChunkStream): stream is ChunkStream & BorrowingStream {
  return typeof (stream as Partial<BorrowingStream>).sendBorrowed === 'function'
}

/**
 * A stream that can hand what it receives straight to one reader, lent for the call only: a
 * lane's asker, whose TLS socket reads each record's cleartext into one reused buffer
 * (lane-transport.ts). The reader copies what it keeps before it returns; nothing else sees
 * the bytes ('message' is not dispatched while a reader is set).
 */
export interface LendingStream {
  /**
   * `place`, if given, is asked where the next bytes belong (memory of the reader's, or undefined
   * for the stream's own), again once that memory is full; bytes read there come to `reader` as a
   * view of it, several reads at once (lane-transport.ts ReadPlace says when).
   */
  readLent: (reader: (bytes: Uint8Array) => void, place?: () => Uint8Array | undefined) => void
}

export function lends (stream: ChunkStream): stream is ChunkStream & LendingStream {
  return typeof (stream as Partial<LendingStream>).readLent === 'function'
}
