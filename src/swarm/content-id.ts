import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { HASH_BYTES } from './constants.js'
import { InvalidIdError, ProtocolViolationError } from './errors.js'

/** Multicodec `raw`: the CID names bytes (the encoded bundle manifest) with no IPLD structure. */
const RAW_CODEC = 0x55
/** Multihash code of BLAKE3 (multicodec table: `blake3`, 0x1e), 32-byte digests. */
const BLAKE3_MULTIHASH = 0x1e

const HEX64 = /^[0-9a-f]{64}$/

/** Object hashes and bundle IDs are 64 lowercase hex digits in the API, 32 raw bytes on the wire. */
export function idToBytes (id: string): Uint8Array<ArrayBuffer> {
  if (!HEX64.test(id)) throw new InvalidIdError(id)
  return Uint8Array.from(Buffer.from(id, 'hex'))
}

/** Refuses anything but exactly 32 bytes: a peer's malformed ID resets its stream. */
export function bytesToId (bytes: Uint8Array): string {
  if (bytes.byteLength !== HASH_BYTES) throw new ProtocolViolationError(`an ID has ${bytes.byteLength} bytes, not ${HASH_BYTES}`)
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** The DHT key under which holders of a bundle announce themselves. */
export function bundleCid (bundleId: string): CID {
  return CID.createV1(RAW_CODEC, Digest.create(BLAKE3_MULTIHASH, idToBytes(bundleId)))
}
