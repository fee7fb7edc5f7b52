import { createCipheriv, createHash, randomBytes, type Cipher } from 'node:crypto'
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { AbortOptions, ConnectionProtector, MessageStream, MultiaddrConnection } from '@libp2p/interface'
import type { SendResult } from '@libp2p/utils'

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
 * out. The key is the swarm key's 32 bytes; each direction of each connection starts its
 * 128-bit counter at a random 16-byte nonce, so keystreams never overlap in practice.
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
    // Our own deadline always applies, first of all: libp2p passes its upgrade signal (seconds),
    // and a stranger without the key must not hold a pending slot that long.
    const timeout = AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    const localNonce = randomBytes(NONCE_BYTES)
    const bytes = byteStream(connection)
    const [remote] = await Promise.all([
      bytes.read({ bytes: NONCE_BYTES, signal }),
      bytes.write(localNonce, { signal }),
    ])
    return new AesMessageStream(bytes.unwrap() as MultiaddrConnection, {
      inbound: createCipheriv('aes-256-ctr', this.key, remote.subarray()),
      outbound: createCipheriv('aes-256-ctr', this.key, localNonce),
    })
  }
}

class AesMessageStream extends AbstractMultiaddrConnection {
  private readonly inbound: Cipher
  private readonly outbound: Cipher

  constructor (private readonly maConn: MultiaddrConnection, ciphers: { inbound: Cipher, outbound: Cipher }) {
    super({ log: maConn.log.newScope('aes-pnet'), remoteAddr: maConn.remoteAddr, direction: maConn.direction })
    this.inbound = ciphers.inbound
    this.outbound = ciphers.outbound
    maConn.addEventListener('message', (evt) => {
      const data = evt.data
      if (data instanceof Uint8Array) {
        this.onData(this.inbound.update(data))
      } else {
        for (const piece of data) this.onData(this.inbound.update(piece))
      }
    })
    maConn.addEventListener('drain', () => { this.onMuxerDrain() })
    maConn.addEventListener('close', (evt) => {
      if (evt.error === undefined) this.onTransportClosed()
      else if (evt.local === true) this.abort(evt.error)
      else this.onRemoteReset()
    })
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    await this.maConn.close(options)
  }

  sendData (data: Uint8ArrayList): SendResult {
    // CTR is a stream cipher: pieces are encrypted in order, no concatenation needed.
    const out = new Uint8ArrayList()
    for (const piece of data) out.append(this.outbound.update(piece))
    return { sentBytes: data.byteLength, canSendMore: this.maConn.send(out) }
  }

  sendReset (err: Error): void {
    this.maConn.abort(err)
  }

  sendPause (): void {
    this.maConn.pause()
  }

  sendResume (): void {
    this.maConn.resume()
  }
}
