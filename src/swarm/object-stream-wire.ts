import { CHUNK_SIZE_BYTES } from '../manifest/index.js'
import { HASH_BYTES } from './constants.js'
import { bytesToId, idToBytes } from './content-id.js'
import { ProtocolViolationError } from './errors.js'

/**
 * An object lane's two messages (OBJECT_LANE_PROTOCOL): fixed fields, no protobuf needed, as the
 * lane offer's. The asker sends the object's hash and the first chunk it lacks; the holder answers
 * with a head (a status and how many bytes follow) and, when it serves, the object's bytes from that
 * chunk to its end, unframed: both sides know where each chunk starts from the object's size.
 */
export const OBJECT_REQUEST_BYTES = HASH_BYTES + 4
export const OBJECT_HEAD_BYTES = 12

/** OK: the bytes follow. NOT_HELD: this node lacks some of it. BUSY: it serves this object to another asker, or has no slot. */
export const ObjectStreamStatus = { OK: 0, NOT_HELD: 1, BUSY: 2 } as const
export type ObjectStreamStatus = typeof ObjectStreamStatus[keyof typeof ObjectStreamStatus]

export interface ObjectStreamRequest { object: string, firstIndex: number }
export interface ObjectStreamHead { status: ObjectStreamStatus, bytes: number }

export function encodeObjectRequest (request: ObjectStreamRequest): Uint8Array {
  const out = new Uint8Array(OBJECT_REQUEST_BYTES)
  out.set(idToBytes(request.object), 0)
  new DataView(out.buffer).setUint32(HASH_BYTES, request.firstIndex)
  return out
}

export function decodeObjectRequest (bytes: Uint8Array): ObjectStreamRequest {
  if (bytes.byteLength !== OBJECT_REQUEST_BYTES) throw new ProtocolViolationError(`an object stream request of ${bytes.byteLength} bytes, not ${OBJECT_REQUEST_BYTES}`)
  return {
    object: bytesToId(bytes.subarray(0, HASH_BYTES)),
    firstIndex: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(HASH_BYTES),
  }
}

export function encodeObjectHead (head: ObjectStreamHead): Uint8Array {
  const out = new Uint8Array(OBJECT_HEAD_BYTES)
  const view = new DataView(out.buffer)
  view.setUint8(0, head.status)
  view.setBigUint64(4, BigInt(head.bytes))
  return out
}

export function decodeObjectHead (bytes: Uint8Array): ObjectStreamHead {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const status = view.getUint8(0)
  if (status !== ObjectStreamStatus.OK && status !== ObjectStreamStatus.NOT_HELD && status !== ObjectStreamStatus.BUSY) {
    throw new ProtocolViolationError(`an object stream head with status ${status}`)
  }
  return { status, bytes: Number(view.getBigUint64(4)) }
}

/** The bytes of an object of `size` from chunk `firstIndex` to its end. */
export function bytesFrom (size: number, firstIndex: number): number {
  return Math.max(0, size - firstIndex * CHUNK_SIZE_BYTES)
}
