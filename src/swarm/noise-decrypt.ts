import { Uint8ArrayList, isUint8ArrayList } from 'uint8arraylist'
import type { ConnectionEncrypter, MessageStream, SecuredConnection } from '@libp2p/interface'

/**
 * noise's receive path without its wasted copy of every message, and without an exception
 * thrown per socket read.
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
 * allocates its output itself when given none.
 *
 * noise cuts messages out of the connection with @libp2p/utils' LengthPrefixedDecoder, which
 * learns that no whole length prefix is left from the length decoder's thrown RangeError: once
 * per socket read that ends on a message boundary, as nearly every read of gossip, requests
 * and credits does. An Error captures a stack trace; on the 8-host bed that throw was 200-250 ms
 * of an edge's busy main thread per pull (`uint16BEDecode`, the 4th largest self time:
 * docs/architecture.md, "The fleet bed"). The decoder (`decoder`, also looked up per read) is
 * replaced by MessageCutter, which checks the length first. A connection that does not look
 * like that version's is left alone.
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

/** noise's bound on what its decoder holds (utils.js); a message and one socket read are far less. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024
/** noise's length prefix: 2 bytes, big-endian. */
const LENGTH_BYTES = 2

/** What this relies on of noise's EncryptedMessageStream. */
interface NoiseMessageStream {
  decoder: { decode: (chunk: Uint8Array | Uint8ArrayList) => Iterable<Uint8ArrayList> }
  decrypt: (chunk: Uint8Array | Uint8ArrayList) => Uint8ArrayList
  handshake: { decrypt: (ciphertext: Uint8Array | Uint8ArrayList, dst?: Uint8Array) => Uint8Array | Uint8ArrayList }
  metrics?: { decryptedPackets: { increment: () => void }, decryptErrors: { increment: () => void } }
}

function patched<Extension> (secured: SecuredConnection<Extension>): SecuredConnection<Extension> {
  const stream = secured.connection as MessageStream & Partial<NoiseMessageStream>
  const handshake = stream.handshake
  if (typeof stream.decrypt !== 'function' || typeof handshake?.decrypt !== 'function') return secured
  const held = (stream.decoder as { buffer?: unknown } | undefined)?.buffer
  if (typeof stream.decoder?.decode === 'function' && isUint8ArrayList(held)) {
    // Bytes the old decoder holds (none: it is replaced before the first read) carry over.
    stream.decoder = new MessageCutter(held.subarray())
  }
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

/**
 * noise's messages (a 2-byte big-endian length, then that many bytes) cut out of the bytes as
 * they arrive, as LengthPrefixedDecoder cuts them, without a throw when the length is not
 * there yet. Empty messages are skipped, as there.
 */
export class MessageCutter {
  private readonly buffer = new Uint8ArrayList()

  constructor (held?: Uint8Array) {
    if (held !== undefined && held.byteLength > 0) this.buffer.append(held)
  }

  * decode (bytes: Uint8Array | Uint8ArrayList): Generator<Uint8ArrayList> {
    const buffer = this.buffer
    buffer.append(bytes)
    if (buffer.byteLength > MAX_BUFFERED_BYTES) throw new Error(`Buffer length limit exceeded - ${buffer.byteLength}/${MAX_BUFFERED_BYTES}`)
    while (buffer.byteLength >= LENGTH_BYTES) {
      const end = LENGTH_BYTES + (buffer.get(0) << 8 | buffer.get(1))
      if (buffer.byteLength < end) return
      const message = buffer.sublist(LENGTH_BYTES, end)
      buffer.consume(end)
      if (message.byteLength > 0) yield message
    }
  }
}
