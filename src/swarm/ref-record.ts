import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { SignedRefUpdate } from '../store/index.js'
import { RefRecord } from './pb/swarm-ref.pb.js'
import { SwarmError } from './errors.js'
import { SignatureDomain } from './signature-domain.js'
import { claimedSequence, openRecord, signRecord, type PendingRecord, type SignedRecordKind } from './signed-record.js'

/** A record is a name, an ID, a digest and a key: a few hundred bytes. */
export const MAX_REF_RECORD_BYTES = 4096

/** A ref record whose signature checked out: what the store keeps, the newest per ref. */
export type VerifiedRefRecord = SignedRefUpdate

export class RefRecordError extends SwarmError {
  constructor (why: string, options?: ErrorOptions) {
    super('REF_RECORD_INVALID', `ref record refused: ${why}`, options)
    this.name = 'RefRecordError'
  }
}

const REF_RECORD: SignedRecordKind<RefRecord> = {
  domain: new SignatureDomain('shoal-ref-record/1'),
  maxBytes: MAX_REF_RECORD_BYTES,
  decode: (record) => RefRecord.decode(record),
  invalid: (why, options) => new RefRecordError(why, options),
}

/** Signs `ref → bundle` with the publisher's key; the sequence is the publisher's clock, so it only grows. */
export async function signRefRecord (key: PrivateKey, fields: { ref: string, bundleId: string, manifestDigest?: string, sequence?: number }): Promise<VerifiedRefRecord> {
  const sequence = fields.sequence ?? Date.now()
  const { signed, publisher } = await signRecord(REF_RECORD, key, publisherKey => RefRecord.encode({
    ref: fields.ref,
    bundleId: Buffer.from(fields.bundleId, 'hex'),
    manifestDigest: fields.manifestDigest ?? '',
    sequence: BigInt(sequence),
    publisher: publisherKey,
  }))
  return { ref: fields.ref, bundleId: fields.bundleId, manifestDigest: fields.manifestDigest, sequence, publisher, signed }
}

/** The sequence a held ref record claims (record-sync orders by it). */
export const refRecordSequence = (signed: Uint8Array): number => claimedSequence(REF_RECORD, signed)

/** Decodes a signed record from anyone and checks its shape; the signature is checked by `verify()`. */
export function openRefRecord (signed: Uint8Array): PendingRecord<VerifiedRefRecord> {
  const { record, publisher, verify } = openRecord(REF_RECORD, signed)
  if (record.bundleId.byteLength !== 32) throw new RefRecordError('its bundle ID is not 32 bytes')
  if (record.ref === '' || record.ref.length > 512) throw new RefRecordError('its ref is empty or too long')
  return {
    publisher,
    subject: { ref: record.ref },
    verify: async () => {
      await verify()
      return {
        ref: record.ref,
        bundleId: Buffer.from(record.bundleId).toString('hex'),
        manifestDigest: record.manifestDigest === '' ? undefined : record.manifestDigest,
        sequence: Number(record.sequence),
        publisher,
        signed: Uint8Array.from(signed),
      }
    },
  }
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
    throw new RefRecordError(`--trust ${JSON.stringify(text)} is not a publisher peer ID (12D3KooW…, as the publisher's daemon prints it at start and \`shoal status\` shows it)`, { cause: err })
  }
}
