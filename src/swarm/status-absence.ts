import type { PrivateKey } from '@libp2p/interface'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { AbsenceStamp } from './pb/swarm-status.pb.js'
import { SignatureDomain } from './signature-domain.js'
import type { Bytes } from './status-record.js'

const ABSENCE_DOMAIN = new SignatureDomain('shoal-node-absent/1')

/**
 * A witness's word that it lost its connection to `subject` and could not dial it again, when
 * the subject's latest status it held had `subjectSequence`. Only the witness signs it: it
 * speaks for its own connections, never for the subject (docs/architecture.md, "Fleet view").
 */
export interface AbsenceClaim {
  /** The witness's and the subject's keys, protobuf-encoded. */
  witnessKey: Bytes
  subjectKey: Bytes
  subjectSequence: number
}

function stampOf (claim: AbsenceClaim): Uint8Array {
  return AbsenceStamp.encode({ witness: claim.witnessKey, subject: claim.subjectKey, subjectSequence: BigInt(claim.subjectSequence) })
}

export async function signAbsence (key: PrivateKey, subjectKey: Bytes, subjectSequence: number): Promise<Bytes> {
  const witnessKey = Uint8Array.from(publicKeyToProtobuf(key.publicKey))
  return await ABSENCE_DOMAIN.sign(key, stampOf({ witnessKey, subjectKey, subjectSequence }))
}

/** True when `signature` is the witness's over this claim. */
export async function verifyAbsence (claim: AbsenceClaim, signature: Uint8Array): Promise<boolean> {
  try {
    return await ABSENCE_DOMAIN.verify(publicKeyFromProtobuf(claim.witnessKey), stampOf(claim), signature)
  } catch {
    // A key that does not decode or a signature of the wrong length: not this witness's word.
    return false
  }
}
