import { generateKey } from '@libp2p/pnet'
import { InvalidSwarmKeyError } from './errors.js'

/**
 * A pre-shared key closes a fleet: @libp2p/pnet encrypts every connection with it before
 * anything else is said, so a node without it cannot even complete a handshake. The format
 * is the one go-libp2p and kubo use ("swarm.key").
 */

const HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n'
const SWARM_KEY = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n?$/
/** The header plus 64 hex digits. */
const SWARM_KEY_BYTES = HEADER.length + 64

export function generateSwarmKey (): Uint8Array {
  const key = new Uint8Array(SWARM_KEY_BYTES)
  generateKey(key)
  return key
}

/** Checks the format up front, so a bad key file fails at start with a clear message. */
export function checkSwarmKey (key: Uint8Array): Uint8Array {
  const text = Buffer.from(key).toString('latin1')
  if (!text.startsWith(HEADER)) throw new InvalidSwarmKeyError('the header is missing or not base16')
  if (!SWARM_KEY.test(text)) throw new InvalidSwarmKeyError('the key is not 64 lowercase hex digits')
  // pnet reads exactly the header and 64 digits; a trailing newline (as editors add) is dropped.
  return key.subarray(0, SWARM_KEY_BYTES)
}

/** The 32 secret bytes of a checked swarm key. */
export function swarmKeyBytes (key: Uint8Array): Uint8Array {
  return Uint8Array.from(Buffer.from(Buffer.from(checkSwarmKey(key)).toString('latin1').slice(HEADER.length), 'hex'))
}
