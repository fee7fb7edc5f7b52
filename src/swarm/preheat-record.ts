import type { PrivateKey } from '@libp2p/interface'
import { SelectorError, PlatformError, formatPlatform, formatSelector, parsePlatform, parseSelector, type Platform, type Selector } from '../labels/index.js'
import { PreheatRecord } from './pb/swarm-preheat.pb.js'
import { SwarmError } from './errors.js'
import { SignatureDomain } from './signature-domain.js'
import { claimedSequence, openRecord, signRecord, type PendingRecord, type SignedRecordKind } from './signed-record.js'

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

const PREHEAT_RECORD: SignedRecordKind<PreheatRecord> = {
  domain: new SignatureDomain('shoal-preheat-record/1'),
  maxBytes: MAX_PREHEAT_RECORD_BYTES,
  decode: (record) => PreheatRecord.decode(record),
  invalid: (why, options) => new PreheatRecordError(why, options),
}

/** Signs an intent; the sequence is the publisher's clock, so a later intent (a cancel) wins. */
export async function signPreheatRecord (key: PrivateKey, intent: PreheatIntent, sequence: number = Date.now()): Promise<VerifiedPreheatRecord> {
  const { signed, publisher } = await signRecord(PREHEAT_RECORD, key, publisherKey => PreheatRecord.encode({
    bundleId: Buffer.from(intent.bundleId, 'hex'),
    ref: intent.ref ?? '',
    selector: formatSelector(intent.selector),
    platform: intent.platform === undefined ? '' : formatPlatform(intent.platform),
    cancelled: intent.cancelled,
    sequence: BigInt(sequence),
    publisher: publisherKey,
  }))
  return { ...intent, sequence, publisher, signed }
}

/** The sequence a held preheat record claims (record-sync orders by it). */
export const preheatRecordSequence = (signed: Uint8Array): number => claimedSequence(PREHEAT_RECORD, signed)

/** Decodes a signed record from anyone and checks its shape; the signature is checked by `verify()`. */
export function openPreheatRecord (signed: Uint8Array): PendingRecord<VerifiedPreheatRecord> {
  const { record, publisher, verify } = openRecord(PREHEAT_RECORD, signed)
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
  const bundleId = Buffer.from(record.bundleId).toString('hex')
  return {
    publisher,
    subject: { bundleId },
    verify: async () => {
      await verify()
      return {
        bundleId,
        ...(record.ref !== '' ? { ref: record.ref } : {}),
        selector,
        ...(platform !== undefined ? { platform } : {}),
        cancelled: record.cancelled,
        sequence: Number(record.sequence),
        publisher,
        signed: Uint8Array.from(signed),
      }
    },
  }
}

/** Decodes and checks a signed record from anyone; whether its publisher is trusted is the caller's call. */
export async function verifyPreheatRecord (signed: Uint8Array): Promise<VerifiedPreheatRecord> {
  return await openPreheatRecord(signed).verify()
}
