import { Uint8ArrayList } from 'uint8arraylist'
import { encodeVarint, readFrames } from '../../src/swarm/framing.js'
import { ChunkRequest, ChunkResponse } from '../../src/swarm/pb/swarm-chunk.pb.js'
import type { Stream } from '@libp2p/interface'

/**
 * The chunk protocol spoken by hand from a bare libp2p peer, for tests that choose what is
 * queued where at a real chunk server (gateway-second-copies, edge-rarest-first).
 */

const MiB = 1024 * 1024

export const frame = (payload: Uint8Array): Uint8Array => new Uint8ArrayList(encodeVarint(payload.byteLength), payload).subarray()

export const chunkRequest = (object: string, index: number, cancel = false): Uint8Array =>
  frame(ChunkRequest.encode({ object: Buffer.from(object, 'hex'), index, cancel }))

/** The chunk answers on a stream in arrival order, and a wait for the one for `index`. */
export function answers (stream: Stream): { order: Array<{ index: number, status: ChunkResponse.Status }>, next: (index: number) => Promise<ChunkResponse.Status> } {
  const order: Array<{ index: number, status: ChunkResponse.Status }> = []
  const waiting = new Map<number, (status: ChunkResponse.Status) => void>()
  readFrames(stream, {
    maxFrameBytes: 2 * MiB,
    messageTimeoutMs: 120_000,
    onFrame: (bytes) => {
      const response = ChunkResponse.decode(bytes)
      order.push({ index: response.index, status: response.status })
      waiting.get(response.index)?.(response.status)
      waiting.delete(response.index)
    },
  })
  const next = async (index: number): Promise<ChunkResponse.Status> => await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`no answer for chunk ${index} within 20 s`)) }, 20_000)
    waiting.set(index, (status) => { clearTimeout(timer); resolve(status) })
  })
  return { order, next }
}
