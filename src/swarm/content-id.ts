import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { HASH_BYTES } from './constants.js'
import { InvalidIdError, ProtocolViolationError } from './errors.js'

/** Multicodec `raw`: the CID names bytes (the encoded bundle manifest) with no IPLD structure. */
const RAW_CODEC = 0x55
/** Multihash code of SHA2-256 (multicodec table: `sha2-256`, 0x12). */
const SHA2_256_MULTIHASH = 0x12

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

/**
 * The DHT key under which holders of a bundle announce themselves: the SHA2-256 of the bundle ID.
 *
 * Not the ID itself as a BLAKE3 multihash (what it was until 2026-12-06): kad-dht sends a key's
 * multihash bytes, and its ADD_PROVIDER and GET_PROVIDERS handlers (@libp2p/kad-dht 16.x) read
 * them back with `CID.decode`, which takes a bare multihash only as a CIDv0, i.e. SHA2-256. Every
 * receiver refused a BLAKE3 key ("Invalid CID", the stream reset): no provider record of a bundle
 * was ever stored beyond its announcer, and every lookup's every answer failed.
 */
export function bundleCid (bundleId: string): CID {
  const digest = createHash('sha256').update(idToBytes(bundleId)).digest()
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256_MULTIHASH, digest))
}
