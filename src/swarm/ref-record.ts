import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { RefRecord, SignedRefRecord } from './pb/swarm-ref.pb.js'
import { SwarmError } from './errors.js'

/** Domain separation: a ref signature can never be mistaken for any other libp2p signature. */
const SIGNATURE_PREFIX = Buffer.from('shoal-ref-record/1\n')
/** A record is a name, an ID, a digest and a key: a few hundred bytes. */
export const MAX_REF_RECORD_BYTES = 4096

/** A ref record whose signature checked out. */
export interface VerifiedRefRecord {
  ref: string
  bundleId: string
  manifestDigest?: string
  sequence: number
  /** The publisher as a peer ID (`12D3Koo…`), the form `--trust` takes. */
  publisher: string
  /** The signed record as it travels, to store and forward unchanged. */
  signed: Uint8Array
}

export class RefRecordError extends SwarmError {
  constructor (why: string, options?: ErrorOptions) {
    super('REF_RECORD_INVALID', `ref record refused: ${why}`, options)
    this.name = 'RefRecordError'
  }
}

/** Signs `ref → bundle` with the publisher's key; the sequence is the publisher's clock, so it only grows. */
export async function signRefRecord (key: PrivateKey, fields: { ref: string, bundleId: string, manifestDigest?: string, sequence?: number }): Promise<VerifiedRefRecord> {
  const sequence = fields.sequence ?? Date.now()
  const record = RefRecord.encode({
    ref: fields.ref,
    bundleId: Buffer.from(fields.bundleId, 'hex'),
    manifestDigest: fields.manifestDigest ?? '',
    sequence: BigInt(sequence),
    publisher: Uint8Array.from(publicKeyToProtobuf(key.publicKey)),
  })
  const signature = await key.sign(Buffer.concat([SIGNATURE_PREFIX, record]))
  const signed = SignedRefRecord.encode({ record: Uint8Array.from(record), signature: Uint8Array.from(signature) })
  return { ref: fields.ref, bundleId: fields.bundleId, manifestDigest: fields.manifestDigest, sequence, publisher: peerIdFromPublicKey(key.publicKey).toString(), signed }
}

/**
 * A ref record decoded but not yet verified: its publisher is known from the bytes, so a
 * caller can refuse an untrusted one before paying for the Ed25519 verify (a flood of
 * records from strangers then costs a decode each, not a signature check).
 */
export interface OpenedRefRecord {
  /** The publisher the record claims, as a peer ID; not proven until `verify()` resolves. */
  publisher: string
  ref: string
  verify: () => Promise<VerifiedRefRecord>
}

/** Decodes a signed record from anyone and checks its shape; the signature is checked by `verify()`. */
export function openRefRecord (signed: Uint8Array): OpenedRefRecord {
  if (signed.byteLength > MAX_REF_RECORD_BYTES) throw new RefRecordError(`it is larger than ${MAX_REF_RECORD_BYTES} bytes`)
  let envelope: SignedRefRecord
  let record: RefRecord
  let publisherKey: ReturnType<typeof publicKeyFromProtobuf>
  try {
    envelope = SignedRefRecord.decode(signed)
    record = RefRecord.decode(envelope.record)
    publisherKey = publicKeyFromProtobuf(record.publisher)
  } catch (err) {
    throw new RefRecordError('it does not decode', { cause: err })
  }
  if (record.bundleId.byteLength !== 32) throw new RefRecordError('its bundle ID is not 32 bytes')
  if (record.ref === '' || record.ref.length > 512) throw new RefRecordError('its ref is empty or too long')
  const publisher = peerIdFromPublicKey(publisherKey).toString()
  const verify = async (): Promise<VerifiedRefRecord> => {
    const valid = await publisherKey.verify(Buffer.concat([SIGNATURE_PREFIX, envelope.record]), envelope.signature)
    if (!valid) throw new RefRecordError(`the signature does not match publisher ${publisher}`)
    return {
      ref: record.ref,
      bundleId: Buffer.from(record.bundleId).toString('hex'),
      manifestDigest: record.manifestDigest === '' ? undefined : record.manifestDigest,
      sequence: Number(record.sequence),
      publisher,
      signed: Uint8Array.from(signed),
    }
  }
  return { publisher, ref: record.ref, verify }
}

/** Decodes and checks a signed record from anyone; whether its publisher is trusted is the caller's call. */
export async function verifyRefRecord (signed: Uint8Array): Promise<VerifiedRefRecord> {
  return await openRefRecord(signed).verify()
}

/** Checks a `--trust` value names a key that can sign: a peer ID with an embedded Ed25519 key. */
export function parseTrustedPublisher (text: string): string {
  try {
    const peerId = peerIdFromString(text)
    if (peerId.publicKey === undefined) throw new Error('no public key in it')
    return peerId.toString()
  } catch (err) {
    throw new RefRecordError(`--trust ${JSON.stringify(text)} is not a publisher peer ID (12D3Koo…, as \`shoal keygen publisher\` prints)`, { cause: err })
  }
}
