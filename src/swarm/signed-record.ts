import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { SignedRecord } from './pb/swarm-record.pb.js'
import type { SwarmError } from './errors.js'
import type { SignatureDomain } from './signature-domain.js'

/**
 * The codec every signed record shares (refs, preheats): an encoded record that names its
 * publisher's key, in an envelope with that key's signature over the record in the kind's
 * signature domain (proto/swarm-record.proto). What differs between kinds is only what this says.
 */
export interface SignedRecordKind<T extends { publisher: Uint8Array }> {
  domain: SignatureDomain
  /** A signed record larger than this is refused before it is decoded. */
  maxBytes: number
  decode: (record: Uint8Array) => T
  /** The kind's typed error (REF_RECORD_INVALID, PREHEAT_RECORD_INVALID) saying `why`. */
  invalid: (why: string, options?: ErrorOptions) => SwarmError
}

/** Signs the record `encode` makes with the key's public half as its publisher. */
export async function signRecord (
  kind: { domain: SignatureDomain },
  key: PrivateKey,
  encode: (publisherKey: Uint8Array<ArrayBuffer>) => Uint8Array<ArrayBuffer>,
): Promise<{ signed: Uint8Array, publisher: string }> {
  const record = encode(Uint8Array.from(publicKeyToProtobuf(key.publicKey)))
  const signature = await kind.domain.sign(key, record)
  return {
    signed: SignedRecord.encode({ record, signature }),
    publisher: peerIdFromPublicKey(key.publicKey).toString(),
  }
}

/**
 * A signed record decoded but not yet verified: its publisher is known from the bytes, so a
 * caller can refuse an untrusted one before paying for the Ed25519 verify (a flood of records
 * from strangers then costs a decode each, not a signature check).
 */
export interface OpenedRecord<T> {
  record: T
  /** The publisher the record claims, as a peer ID (`12D3Koo…`, the form `--trust` takes); not proven until `verify()` resolves. */
  publisher: string
  /** Resolves when the signature is the publisher's; throws the kind's error when not. */
  verify: () => Promise<void>
}

/**
 * The sequence a signed record claims, decoded without its publisher's key (no key parsing, no
 * peer ID): what a sender orders the records it holds by, newest first, on every connect.
 */
export function claimedSequence<T extends { publisher: Uint8Array, sequence: bigint }> (kind: SignedRecordKind<T>, signed: Uint8Array): number {
  return Number(kind.decode(SignedRecord.decode(signed).record).sequence)
}

/** Decodes a signed record from anyone; the signature is checked by `verify()`. */
export function openRecord<T extends { publisher: Uint8Array }> (kind: SignedRecordKind<T>, signed: Uint8Array): OpenedRecord<T> {
  if (signed.byteLength > kind.maxBytes) throw kind.invalid(`it is larger than ${kind.maxBytes} bytes`)
  let envelope: SignedRecord
  let record: T
  let key: PublicKey
  try {
    envelope = SignedRecord.decode(signed)
    record = kind.decode(envelope.record)
    key = publicKeyFromProtobuf(record.publisher)
  } catch (err) {
    throw kind.invalid('it does not decode', { cause: err })
  }
  const publisher = peerIdFromPublicKey(key).toString()
  const verify = async (): Promise<void> => {
    const valid = await kind.domain.verify(key, envelope.record, envelope.signature)
    if (!valid) throw kind.invalid(`the signature does not match publisher ${publisher}`)
  }
  return { record, publisher, verify }
}

/**
 * A record decoded and checked for shape by its kind, its signature still to check: what a
 * kind's `open` hands the sync (record-sync.ts), which checks trust before calling `verify()`.
 */
export interface PendingRecord<V> {
  /** The publisher the record claims; not proven until `verify()` resolves. */
  publisher: string
  /** What the record is about, for logs: `{ ref }`, `{ bundleId }`. */
  subject: Record<string, string>
  verify: () => Promise<V>
}
