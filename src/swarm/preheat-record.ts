import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { SelectorError, PlatformError, formatPlatform, formatSelector, parsePlatform, parseSelector, type Platform, type Selector } from '../labels/index.js'
import { PreheatRecord, SignedPreheatRecord } from './pb/swarm-preheat.pb.js'
import { SwarmError } from './errors.js'

/** Domain separation: a preheat signature is never a ref record's, nor any other libp2p signature. */
const SIGNATURE_PREFIX = Buffer.from('shoal-preheat-record/1\n')
/** A record is an ID, a name, a short selector and a key: a few hundred bytes. */
export const MAX_PREHEAT_RECORD_BYTES = 4096

/** What a publisher asks of the fleet: matching nodes hold and pin `bundleId` (or stop, when cancelled). */
export interface PreheatIntent {
  bundleId: string
  /** The name it was preheated by, for people; absent when given by ID. */
  ref?: string
  selector: Selector
  /** The platform of an image index to fetch; absent: each node's own. */
  platform?: Platform
  cancelled: boolean
}

/** A preheat record whose signature checked out. */
export interface VerifiedPreheatRecord extends PreheatIntent {
  sequence: number
  /** The publisher as a peer ID (`12D3Koo…`), the form `--trust` takes. */
  publisher: string
  /** The signed record as it travels, to store and forward unchanged. */
  signed: Uint8Array
}

export class PreheatRecordError extends SwarmError {
  constructor (why: string, options?: ErrorOptions) {
    super('PREHEAT_RECORD_INVALID', `preheat record refused: ${why}`, options)
    this.name = 'PreheatRecordError'
  }
}

/** Signs an intent; the sequence is the publisher's clock, so a later intent (a cancel) wins. */
export async function signPreheatRecord (key: PrivateKey, intent: PreheatIntent, sequence: number = Date.now()): Promise<VerifiedPreheatRecord> {
  const record = PreheatRecord.encode({
    bundleId: Buffer.from(intent.bundleId, 'hex'),
    ref: intent.ref ?? '',
    selector: formatSelector(intent.selector),
    platform: intent.platform === undefined ? '' : formatPlatform(intent.platform),
    cancelled: intent.cancelled,
    sequence: BigInt(sequence),
    publisher: Uint8Array.from(publicKeyToProtobuf(key.publicKey)),
  })
  const signature = await key.sign(Buffer.concat([SIGNATURE_PREFIX, record]))
  const signed = SignedPreheatRecord.encode({ record: Uint8Array.from(record), signature: Uint8Array.from(signature) })
  return { ...intent, sequence, publisher: peerIdFromPublicKey(key.publicKey).toString(), signed }
}

/** Decodes and checks a signed record from anyone; whether its publisher is trusted is the caller's call. */
export async function verifyPreheatRecord (signed: Uint8Array): Promise<VerifiedPreheatRecord> {
  if (signed.byteLength > MAX_PREHEAT_RECORD_BYTES) throw new PreheatRecordError(`it is larger than ${MAX_PREHEAT_RECORD_BYTES} bytes`)
  let envelope: SignedPreheatRecord
  let record: PreheatRecord
  let publisherKey: ReturnType<typeof publicKeyFromProtobuf>
  try {
    envelope = SignedPreheatRecord.decode(signed)
    record = PreheatRecord.decode(envelope.record)
    publisherKey = publicKeyFromProtobuf(record.publisher)
  } catch (err) {
    throw new PreheatRecordError('it does not decode', { cause: err })
  }
  if (record.bundleId.byteLength !== 32) throw new PreheatRecordError('its bundle ID is not 32 bytes')
  if (record.ref.length > 512) throw new PreheatRecordError('its ref is too long')
  let selector: Selector
  let platform: Platform | undefined
  try {
    selector = parseSelector(record.selector)
    platform = record.platform === '' ? undefined : parsePlatform(record.platform)
  } catch (err) {
    if (err instanceof SelectorError || err instanceof PlatformError) throw new PreheatRecordError(err.message, { cause: err })
    throw err
  }
  const valid = await publisherKey.verify(Buffer.concat([SIGNATURE_PREFIX, envelope.record]), envelope.signature)
  if (!valid) throw new PreheatRecordError(`the signature does not match publisher ${peerIdFromPublicKey(publisherKey).toString()}`)
  return {
    bundleId: Buffer.from(record.bundleId).toString('hex'),
    ...(record.ref !== '' ? { ref: record.ref } : {}),
    selector,
    ...(platform !== undefined ? { platform } : {}),
    cancelled: record.cancelled,
    sequence: Number(record.sequence),
    publisher: peerIdFromPublicKey(publisherKey).toString(),
    signed: Uint8Array.from(signed),
  }
}
