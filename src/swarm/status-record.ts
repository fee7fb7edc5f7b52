import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { blake3Hex } from '../hash/index.js'
import { SignedStatus, StatusBody, StatusStamp } from './pb/swarm-status.pb.js'
import { SwarmError } from './errors.js'
import { SignatureDomain } from './signature-domain.js'
import {
  MAX_STATUS_BODY_BYTES, MAX_STATUS_COMPLETE, MAX_STATUS_LABELS, MAX_STATUS_LABEL_CHARS, MAX_STATUS_PARTIAL,
  MAX_STATUS_VERSION_CHARS, MIN_STATUS_INTERVAL_MS, MAX_STATUS_INTERVAL_MS,
} from './status-constants.js'

const STATUS_DOMAIN = new SignatureDomain('shoal-node-status/1')

/** What a node says about itself (its own word: shown, never acted on). */
export interface NodeStatusFields {
  version: string
  labels: Record<string, string>
  /** Bundle IDs (hex) held whole; the first MAX_STATUS_COMPLETE travel, the count says how many in all. */
  complete: string[]
  completeCount: number
  partial: Array<{ id: string, permille: number }>
  partialCount: number
  freeBytes: number
  uploadRate: number
  downloadRate: number
  /** The publisher's heartbeat period: receivers judge staleness by it. */
  intervalMs: number
}

/** A status whose signature checked out. */
export interface VerifiedStatus {
  /** The publisher as a peer ID (`12D3Koo…`): the key that signed is the node the status is about. */
  publisher: string
  sequence: number
  bodyHash: string
  fields: NodeStatusFields
  /** The key that signed, protobuf-encoded: later refreshes are checked against it. */
  publisherKey: Bytes
  /** The body as it travels, to forward unchanged. */
  body: Bytes
  /** The signed stamp and its signature, to forward as a refresh. */
  stamp: Bytes
  signature: Bytes
}

/** Bytes as protons decodes and encodes them. */
export type Bytes = Uint8Array<ArrayBuffer>

export class StatusRecordError extends SwarmError {
  constructor (why: string, options?: ErrorOptions) {
    super('STATUS_RECORD_INVALID', `node status refused: ${why}`, options)
    this.name = 'StatusRecordError'
  }
}

/** Encodes a node's body, cutting its lists to the bounds every receiver enforces. */
export function encodeStatusBody (fields: NodeStatusFields): Bytes {
  const labels = Object.entries(fields.labels).slice(0, MAX_STATUS_LABELS)
    .map(([key, value]) => ({ key: key.slice(0, MAX_STATUS_LABEL_CHARS), value: value.slice(0, MAX_STATUS_LABEL_CHARS) }))
  return StatusBody.encode({
    version: fields.version.slice(0, MAX_STATUS_VERSION_CHARS),
    labels,
    complete: fields.complete.slice(0, MAX_STATUS_COMPLETE).map(id => Uint8Array.from(Buffer.from(id, 'hex'))),
    completeCount: Math.max(fields.completeCount, Math.min(fields.complete.length, MAX_STATUS_COMPLETE)),
    partial: fields.partial.slice(0, MAX_STATUS_PARTIAL).map(p => ({ id: Uint8Array.from(Buffer.from(p.id, 'hex')), permille: clampInt(p.permille, 0, 1000) })),
    partialCount: Math.max(fields.partialCount, Math.min(fields.partial.length, MAX_STATUS_PARTIAL)),
    freeBytes: BigInt(Math.max(0, Math.floor(fields.freeBytes))),
    uploadRate: BigInt(Math.max(0, Math.floor(fields.uploadRate))),
    downloadRate: BigInt(Math.max(0, Math.floor(fields.downloadRate))),
    intervalMs: clampInt(fields.intervalMs, MIN_STATUS_INTERVAL_MS, MAX_STATUS_INTERVAL_MS),
  })
}

/** Signs a stamp over `body` with the node's own key; the sequence is its clock, so it only grows. */
export async function signStatus (key: PrivateKey, body: Bytes, sequence: number): Promise<{ stamp: Bytes, signature: Bytes, bodyHash: string }> {
  const bodyHash = blake3Hex(body)
  const stamp = StatusStamp.encode({
    publisher: Uint8Array.from(publicKeyToProtobuf(key.publicKey)),
    sequence: BigInt(sequence),
    bodyHash: Uint8Array.from(Buffer.from(bodyHash, 'hex')),
  })
  const signature = await STATUS_DOMAIN.sign(key, stamp)
  return { stamp, signature, bodyHash }
}

/** A stamp whose signature checked out, before its body is known. */
export interface VerifiedStamp {
  publisher: string
  /** The key that signed, protobuf-encoded: later refreshes are checked against it. */
  publisherKey: Bytes
  sequence: number
  bodyHash: string
}

/**
 * Checks a stamp's signature against the key the stamp names: a node can only speak for
 * itself, because the peer ID a status is filed under is derived from the key that signed it.
 */
export async function verifyStatusStamp (signed: SignedStatus): Promise<VerifiedStamp> {
  let stamp: StatusStamp
  let key: PublicKey
  try {
    stamp = StatusStamp.decode(signed.stamp)
    key = publicKeyFromProtobuf(stamp.publisher)
  } catch (err) {
    throw new StatusRecordError('its stamp does not decode', { cause: err })
  }
  if (stamp.bodyHash.byteLength !== 32) throw new StatusRecordError('its body hash is not 32 bytes')
  const valid = await STATUS_DOMAIN.verify(key, signed.stamp, signed.signature)
  const publisher = peerIdFromPublicKey(key).toString()
  if (!valid) throw new StatusRecordError(`the signature does not match the key of ${publisher} it names`)
  return { publisher, publisherKey: stamp.publisher, sequence: Number(stamp.sequence), bodyHash: Buffer.from(stamp.bodyHash).toString('hex') }
}

/**
 * The last 8 bytes of the publisher key a stamp names, without checking anything (undefined when
 * it does not decode): enough to find the status held for that publisher.
 */
export function stampPublisherTail (stamp: Bytes): Bytes | undefined {
  try {
    return StatusStamp.decode(stamp).publisher.subarray(-8)
  } catch {
    return undefined
  }
}

/**
 * Checks a refresh (a new sequence for a body the receiver holds) by rebuilding the stamp
 * from the held key and body hash; returns that stamp, or undefined when the signature does
 * not match (a forgery, or a body that changed since: either way nothing is applied).
 */
export async function verifyStatusRefresh (held: { publisherKey: Bytes, bodyHash: string }, sequence: number, signature: Bytes): Promise<Bytes | undefined> {
  const stamp = StatusStamp.encode({ publisher: held.publisherKey, sequence: BigInt(sequence), bodyHash: Uint8Array.from(Buffer.from(held.bodyHash, 'hex')) })
  const valid = await STATUS_DOMAIN.verify(publicKeyFromProtobuf(held.publisherKey), stamp, signature)
  return valid ? stamp : undefined
}

/** Decodes a body a verified stamp vouches for, and checks it against every bound. */
export function decodeStatusBody (body: Uint8Array, bodyHash: string): NodeStatusFields {
  if (body.byteLength > MAX_STATUS_BODY_BYTES) throw new StatusRecordError(`its body is larger than ${MAX_STATUS_BODY_BYTES} bytes`)
  if (blake3Hex(body) !== bodyHash) throw new StatusRecordError('its body does not match the signed hash')
  let decoded: StatusBody
  try {
    decoded = StatusBody.decode(body, { limits: { labels: MAX_STATUS_LABELS, complete: MAX_STATUS_COMPLETE, partial: MAX_STATUS_PARTIAL } })
  } catch (err) {
    throw new StatusRecordError('its body does not decode or lists too much', { cause: err })
  }
  if (decoded.version.length > MAX_STATUS_VERSION_CHARS) throw new StatusRecordError('its version is too long')
  const labels: Record<string, string> = {}
  for (const { key, value } of decoded.labels) {
    if (key.length > MAX_STATUS_LABEL_CHARS || value.length > MAX_STATUS_LABEL_CHARS) throw new StatusRecordError('a label is too long')
    labels[key] = value
  }
  const ids = [...decoded.complete, ...decoded.partial.map(p => p.id)]
  if (ids.some(id => id.byteLength !== 32)) throw new StatusRecordError('a bundle ID is not 32 bytes')
  if (decoded.intervalMs < MIN_STATUS_INTERVAL_MS || decoded.intervalMs > MAX_STATUS_INTERVAL_MS) {
    throw new StatusRecordError(`its interval ${decoded.intervalMs} ms is outside ${MIN_STATUS_INTERVAL_MS}–${MAX_STATUS_INTERVAL_MS} ms`)
  }
  return {
    version: decoded.version,
    labels,
    complete: decoded.complete.map(id => Buffer.from(id).toString('hex')),
    completeCount: Math.max(decoded.completeCount, decoded.complete.length),
    partial: decoded.partial.map(p => ({ id: Buffer.from(p.id).toString('hex'), permille: Math.min(1000, p.permille) })),
    partialCount: Math.max(decoded.partialCount, decoded.partial.length),
    freeBytes: Number(decoded.freeBytes),
    uploadRate: Number(decoded.uploadRate),
    downloadRate: Number(decoded.downloadRate),
    intervalMs: decoded.intervalMs,
  }
}

/** Both halves at once: what a node does with a full status from a neighbour. */
export async function verifyStatus (signed: SignedStatus): Promise<VerifiedStatus> {
  const stamp = await verifyStatusStamp(signed)
  const fields = decodeStatusBody(signed.body, stamp.bodyHash)
  return { ...stamp, fields, body: signed.body, stamp: signed.stamp, signature: signed.signature }
}

export function encodeSignedStatus (status: Pick<VerifiedStatus, 'stamp' | 'signature'> & { body?: Bytes }): Bytes {
  return SignedStatus.encode({ stamp: status.stamp, signature: status.signature, body: status.body ?? new Uint8Array(0) })
}

function clampInt (value: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.round(value)))
}
