import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import { byteStream } from '@libp2p/utils'
import { SwarmKeyTransportError } from './errors.js'
import { tcpBoundaryOf } from './tcp-boundary.js'
import type { AbortOptions, ConnectionProtector, MessageStream } from '@libp2p/interface'
import { abortAfter } from '../wait/index.js'

/**
 * A private network like @libp2p/pnet (same swarm key file, same admission rule: every byte
 * after a nonce exchange is encrypted with the key, so a node without it cannot even finish a
 * noise handshake), with AES-256-CTR from OpenSSL instead of pnet's pure-JavaScript XSalsa20.
 *
 * Why (scripts/bench-transfer.ts, 512 MiB on loopback): with @libp2p/pnet the seed spent
 * 6.1 CPU seconds and the transfer fell from ~180 to 50 MB/s; AES-NI costs a few percent.
 * Not wire-compatible with go-libp2p's pnet, which shoal never talks to; `pnet: 'xsalsa20'`
 * in SwarmInit keeps @libp2p/pnet for a fleet that needs that.
 *
 * Noise above still authenticates and protects everything; this layer only keeps strangers
 * out, and hides the protocol negotiation and noise's frame lengths. The key is the swarm key's
 * 32 bytes hashed with a label; each direction of each connection starts its 128-bit counter
 * at a random 16-byte nonce, so keystreams never overlap in practice.
 *
 * The cipher runs at the TCP connection's own boundary (tcp-boundary.ts): once per socket read
 * on the way in, once per piece written on the way out, and the connection handed on is the
 * TCP one. It used to be a second message stream over it, with its own buffers, send queue and
 * events per message: a keyed pull cost 20-25% more CPU than an unkeyed one where the cipher
 * is ~3% (docs/architecture.md, "Two cipher layers with a swarm key"). The bytes on the wire
 * are the same as that layer's, so nodes of either kind talk to each other.
 */

const NONCE_BYTES = 16
/** The nonce exchange must finish within this time (the pnet default). */
const HANDSHAKE_TIMEOUT_MS = 1_000

export function aesPreSharedKey (psk: Uint8Array): () => ConnectionProtector {
  // Distinct from the raw key pnet would use, so the two schemes never share a keystream.
  const key = createHash('sha256').update('shoal-pnet-aes-256-ctr\n').update(psk).digest()
  return () => new AesConnectionProtector(key)
}

class AesConnectionProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'shoal/aes-pnet'

  constructor (private readonly key: Buffer) {}

  async protect (connection: MessageStream, options: AbortOptions = {}): Promise<MessageStream> {
    // Refused before a byte is sent: the layer exists only as a transform of a TCP socket's bytes.
    const boundary = tcpBoundaryOf(connection)
    if (boundary === undefined) throw new SwarmKeyTransportError()
    // Our own deadline always applies, first of all: libp2p passes its upgrade signal (seconds),
    // and a stranger without the key must not hold a pending slot that long.
    const signal = abortAfter(HANDSHAKE_TIMEOUT_MS, options.signal)
    const localNonce = randomBytes(NONCE_BYTES)
    const bytes = byteStream(connection)
    const [remote] = await Promise.all([
      bytes.read({ bytes: NONCE_BYTES, signal }),
      bytes.write(localNonce, { signal }),
    ])
    const inbound = createCipheriv('aes-256-ctr', this.key, remote.subarray())
    const outbound = createCipheriv('aes-256-ctr', this.key, localNonce)
    // Synchronously after the unwrap: whatever the remote sent after its nonce is back in the
    // connection's read buffer, not yet dispatched, and is decrypted there.
    bytes.unwrap()
    boundary.transform({
      receive: piece => inbound.update(piece),
      send: piece => outbound.update(piece),
    })
    return connection
  }
}
