import { Uint8ArrayList } from 'uint8arraylist'
import type { ConnectionEncrypter, MessageStream, SecuredConnection } from '@libp2p/interface'

/**
 * noise's receive path without its wasted copy of every message.
 *
 * @chainsafe/libp2p-noise (17.x, utils.js) decrypts each message it cut from the connection
 * with `handshake.decrypt(encrypted, dst)`, where `dst = chunk.subarray(…)` is meant as the
 * output buffer for an in-place decrypt. A message is 65,537 bytes on the wire and a socket
 * read at most 65,536, so nearly every message spans two reads and `subarray` concatenates
 * them: a fresh 64 KiB copy per message. Node's ChaCha20-Poly1305 (used for every message
 * of 1,200 bytes or more) ignores `dst` and returns its own output, so the copy is garbage
 * at once, and every such buffer counts as external memory that brings V8's next full GC
 * nearer (half a receiving edge's CPU is on its GC threads: docs/architecture.md).
 *
 * Here the secured connection's `decrypt` (looked up on the instance per message) is the
 * same loop without `dst`; small messages go to noise's WASM ChaCha20-Poly1305, which
 * allocates its output itself when given none. A connection that does not look like that
 * version's is left alone.
 */
export function withoutDecryptCopies<Components> (factory: (components: Components) => ConnectionEncrypter): (components: Components) => ConnectionEncrypter {
  return (components) => {
    const inner = factory(components)
    const wrapped = Object.create(inner) as ConnectionEncrypter
    wrapped.secureInbound = async (connection, options) => patched(await inner.secureInbound(connection, options))
    wrapped.secureOutbound = async (connection, options) => patched(await inner.secureOutbound(connection, options))
    return wrapped
  }
}

/** noise's limits (constants.js): a message with its tag, and the tag. */
const NOISE_MESSAGE_BYTES = 65_535
const TAG_BYTES = 16

/** What this relies on of noise's EncryptedMessageStream. */
interface NoiseMessageStream {
  decrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8ArrayList
  handshake: { decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => Uint8Array | Uint8ArrayList }
  metrics?: { decryptedPackets: { increment: () => void }, decryptErrors: { increment: () => void } }
}

function patched<Extension> (secured: SecuredConnection<Extension>): SecuredConnection<Extension> {
  const stream = secured.connection as MessageStream & Partial<NoiseMessageStream>
  const handshake = stream.handshake
  if (typeof stream.decrypt !== 'function' || typeof handshake?.decrypt !== 'function') return secured
  stream.decrypt = (chunk) => {
    const output = new Uint8ArrayList()
    for (let i = 0; i < chunk.byteLength; i += NOISE_MESSAGE_BYTES) {
      const end = Math.min(i + NOISE_MESSAGE_BYTES, chunk.byteLength)
      if (end - TAG_BYTES < i) throw new Error('Invalid chunk')
      const encrypted = chunk instanceof Uint8Array ? chunk.subarray(i, end) : chunk.sublist(i, end)
      try {
        output.append(handshake.decrypt(encrypted))
        stream.metrics?.decryptedPackets.increment()
      } catch (err) {
        stream.metrics?.decryptErrors.increment()
        throw err
      }
    }
    return output
  }
  return secured
}
