import type { Stream } from '@libp2p/interface'

/**
 * What the chunk protocol (chunk-protocol.ts, framing.ts, reader-budget.ts) uses of a stream:
 * a libp2p stream is one, and so is a data lane (lane-stream.ts), so the protocol, its limits,
 * pacing and charges are written once for both.
 */
export type ChunkStream = Pick<Stream, 'status' | 'writeBufferLength' | 'send' | 'close' | 'abort' | 'addEventListener' | 'removeEventListener'>
