import { bytesToId } from './content-id.js'
import { HASH_BYTES } from './constants.js'

/**
 * Which chunk a response is, read from the first bytes of its frame (FrameReaderInit.
 * onFrameStart) before the rest arrives. On a holder's uplink shared by many askers a chunk
 * takes seconds from its first byte to its last, and the scheduler must not ask elsewhere
 * for one that is already arriving (the 16-host bed fetched such chunks twice).
 *
 * The holder writes `object`, `index` and `status` ahead of `data` (proto/swarm-chunk.proto,
 * fields in number order as protons encodes them). Anything else — another order, a
 * truncated head, a status other than OK — gives undefined: the head is a hint, and the
 * whole frame is still decoded and checked when it completes. `dataAt`, where the chunk's bytes
 * begin in the frame, is a hint too (undefined when the head ends before it).
 */
export function chunkResponseHead (head: Uint8Array): { object: string, index: number, dataAt?: number } | undefined {
  let at = 0
  let object: string | undefined
  let index = 0
  for (;;) {
    const tag = head[at++]
    if (tag === undefined) return undefined
    if (tag === OBJECT_TAG) {
      if (head[at++] !== HASH_BYTES || at + HASH_BYTES > head.byteLength) return undefined
      object = bytesToId(head.subarray(at, at + HASH_BYTES))
      at += HASH_BYTES
    } else if (tag === INDEX_TAG || tag === STATUS_TAG) {
      const value = readVarint(head, at)
      if (value === undefined) return undefined
      at = value.end
      if (tag === INDEX_TAG) index = value.value
      else if (value.value !== STATUS_OK) return undefined
    } else if (tag === DATA_TAG) {
      if (object === undefined) return undefined
      // Where the chunk's bytes start in the frame, when the head holds their length prefix:
      // the receiver places the frame so that they land on a page boundary (ChunkClientInit.allocate).
      return { object, index, dataAt: readVarint(head, at)?.end }
    } else {
      return undefined
    }
  }
}

/** Field tags of ChunkResponse: (field number << 3) | wire type. */
const OBJECT_TAG = (1 << 3) | 2
const INDEX_TAG = (2 << 3) | 0
const STATUS_TAG = (3 << 3) | 0
const DATA_TAG = (4 << 3) | 2
/** ChunkResponse.Status.OK. */
const STATUS_OK = 1

function readVarint (bytes: Uint8Array, start: number): { value: number, end: number } | undefined {
  let value = 0
  // A uint32 takes at most 5 bytes.
  for (let i = 0; i < 5; i++) {
    const byte = bytes[start + i]
    if (byte === undefined) return undefined
    value += (byte & 0x7f) * 2 ** (7 * i)
    if ((byte & 0x80) === 0) return { value, end: start + i + 1 }
  }
  return undefined
}
