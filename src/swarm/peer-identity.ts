import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { InvalidPeerKeyError } from './errors.js'
import type { PrivateKey } from '@libp2p/interface'

/**
 * A node's libp2p identity must survive restarts: peers ban, score and remember it by its
 * peer ID. The daemon keeps the serialized key in its data dir (mode 0600).
 */

export type { PrivateKey }

/** A new Ed25519 identity: small keys, fast handshakes, the libp2p default. */
export async function createPeerKey (): Promise<PrivateKey> {
  return await generateKeyPair('Ed25519')
}

/** The libp2p protobuf form (the same bytes go-libp2p and kubo store). */
export function serializePeerKey (key: PrivateKey): Uint8Array {
  return privateKeyToProtobuf(key)
}

export function parsePeerKey (bytes: Uint8Array): PrivateKey {
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new InvalidPeerKeyError('it is not a libp2p private key in protobuf form', { cause: err })
  }
}

export function peerIdOfKey (key: PrivateKey): string {
  return peerIdFromPrivateKey(key).toString()
}
