import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { identify } from '@libp2p/identify'
import { createLibp2p, type Libp2p } from 'libp2p'
import { YAMUX_WINDOW_BYTES } from '../../src/swarm/constants.js'
import { createPeerKey } from '../../src/swarm/index.js'
import type { Connection, Stream, StreamHandler } from '@libp2p/interface'

/**
 * A bare libp2p node that speaks shoal's protocols by hand, to send a swarm whatever bytes a
 * test likes: the same transport as a daemon (TCP, noise, yamux), none of its manners.
 */
export class Attacker {
  private constructor (readonly node: Libp2p) {}

  /**
   * `localAddress`: dial from this address (another loopback address plays another host).
   * `identify`: tell peers which protocols this node speaks, so their protocol topologies
   * (what a daemon sends a new neighbour) fire for it as for a daemon.
   * `yamuxWindowBytes`: the daemon's `SwarmInit.yamuxWindowBytes` when a test shrinks it.
   */
  static async start (options: { localAddress?: string, identify?: boolean, yamuxWindowBytes?: number } = {}): Promise<Attacker> {
    const window = options.yamuxWindowBytes ?? YAMUX_WINDOW_BYTES
    // net.connect takes localAddress; @libp2p/tcp passes dialOpts through but does not type it.
    const dialOpts = options.localAddress === undefined ? undefined : { localAddress: options.localAddress } as Record<string, unknown>
    const node = await createLibp2p({
      privateKey: await createPeerKey(),
      addresses: { listen: options.localAddress === undefined ? ['/ip4/127.0.0.1/tcp/0'] : [] },
      transports: [tcp({ dialOpts })],
      connectionEncrypters: [noise()],
      // The daemons' windows (libp2p-node.ts): yamux peers must agree on the initial window.
      streamMuxers: [yamux({ streamOptions: { initialStreamWindowSize: window, maxStreamWindowSize: window, maxReadBufferLength: window * 2 } })],
      ...(options.identify === true ? { services: { identify: identify() } } : {}),
    })
    return new Attacker(node)
  }

  get peerId (): string {
    return this.node.peerId.toString()
  }

  async connect (address: string): Promise<Connection> {
    return await this.node.dial(multiaddr(address))
  }

  async handle (protocol: string, handler: StreamHandler): Promise<void> {
    await this.node.handle(protocol, handler, { force: true, maxInboundStreams: 64 })
  }

  async stop (): Promise<void> {
    await this.node.stop()
  }
}

export interface Exchange {
  /** True when the other side reset the stream (rather than closing it cleanly). */
  reset: boolean
  /** Bytes the other side sent before the stream closed. */
  received: number
}

/**
 * Opens a stream, writes `bytes`, half-closes and waits until the stream is closed by both
 * sides or reset; everything that comes back is counted and dropped.
 */
export async function exchange (connection: Connection, protocol: string, bytes: Uint8Array, timeoutMs = 15_000): Promise<Exchange> {
  const stream = await connection.newStream(protocol)
  return await sendAndWait(stream, bytes, timeoutMs)
}

export async function sendAndWait (stream: Stream, bytes: Uint8Array, timeoutMs = 15_000): Promise<Exchange> {
  let received = 0
  stream.addEventListener('message', (evt) => { received += evt.data.byteLength })
  const closed = new Promise<boolean>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`the stream stayed open for ${timeoutMs} ms`)) }, timeoutMs)
    stream.addEventListener('close', (evt) => {
      clearTimeout(timer)
      resolve(evt.error !== undefined)
    }, { once: true })
  })
  try {
    if (bytes.byteLength > 0 && !stream.send(bytes)) await stream.onDrain()
    await stream.close()
  } catch {
    // The other side may reset before our close; that is the outcome the caller checks.
  }
  const reset = await closed
  return { reset, received }
}
