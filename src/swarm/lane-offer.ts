import type { Connection, Stream } from '@libp2p/interface'
import { LANE_CIPHER_SUITE, LANE_IDENTITY_BYTES, LANE_KEY_BYTES, LANE_PROTOCOL } from './constants.js'
import { LaneClosedError, ProtocolViolationError } from './errors.js'
import { FrameQueue, sendFrame } from './framing.js'
import type { LaneConnection, LaneKind, LaneListener, LaneOffer } from './lane-listener.js'
import { LaneStream } from './lane-stream.js'
import type { ReadTicker } from './socket-batching.js'
import { connectAskerTls } from './lane-transport.js'
import { abortAfter } from '../wait/index.js'

/**
 * /shoal/lane/2.0.0: the asker opens a stream on its libp2p connection to the holder; the
 * holder answers with one offer and closes: the lane's port (the host is the connection's own
 * remote address, never one the holder names, so a peer cannot aim us at a third host), a
 * one-time PSK identity and a 32-byte key. The offer travels inside noise, so only that peer
 * learns the key. A holder that will not offer (too many open, no listener) resets the stream;
 * one that does not speak the protocol fails its negotiation: the chunks stay on libp2p.
 *
 * The offer is 2 bytes of port (big-endian), the identity, then the key: fixed fields, no
 * protobuf needed.
 */
const OFFER_BYTES = 2 + LANE_IDENTITY_BYTES + LANE_KEY_BYTES

export function encodeOffer (offer: LaneOffer): Uint8Array {
  const out = new Uint8Array(OFFER_BYTES)
  new DataView(out.buffer).setUint16(0, offer.port)
  out.set(offer.identity, 2)
  out.set(offer.key, 2 + LANE_IDENTITY_BYTES)
  return out
}

export function decodeOffer (bytes: Uint8Array): LaneOffer {
  if (bytes.byteLength !== OFFER_BYTES) throw new ProtocolViolationError(`a lane offer of ${bytes.byteLength} bytes, not ${OFFER_BYTES}`)
  const port = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(0)
  if (port === 0) throw new ProtocolViolationError('a lane offer for port 0')
  return { port, identity: bytes.slice(2, 2 + LANE_IDENTITY_BYTES), key: bytes.slice(2 + LANE_IDENTITY_BYTES) }
}

/** The holder's handler: one offer for the asking peer (of a lane for `kind`, the protocol it asked on), then the stream closes. */
export async function serveLaneOffer (listener: LaneListener, stream: Stream, connection: LaneConnection, admits: (peer: string) => boolean, kind: LaneKind = 'chunk'): Promise<void> {
  const peer = connection.remotePeer.toString()
  const offer = admits(peer) ? listener.offer(peer, connection, kind) : undefined
  if (offer === undefined) {
    stream.abort(new LaneClosedError('no lane offered'))
    return
  }
  try {
    await sendFrame(stream, encodeOffer(offer), { signal: abortAfter(LANE_OFFER_SEND_TIMEOUT_MS) })
    await stream.close()
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  }
}

/** The offer is 50 bytes: it leaves at once or the connection is in trouble. */
const LANE_OFFER_SEND_TIMEOUT_MS = 5_000

export interface DialLaneOptions {
  signal: AbortSignal
  idleTimeoutMs: number
  /**
   * Reads of the holder's chunks on a shared tick (socket-batching.ts, lane-transport.ts), as
   * libp2p's sockets read them: on a slow link every few packets otherwise woke the asker's
   * event loop (the 8-host bed's edges woke 340 times a second with lanes against 164 without).
   */
  readTicker?: ReadTicker
  /** Filled in as the lane opens: how long each step took (ms), for the asker's logs. */
  timings?: LaneTimings
  /** The offer's protocol, which fixes what the lane carries: LANE_PROTOCOL (a chunk stream) unless given. */
  protocol?: string
}

/** Milliseconds from the ask to the offer, from the offer to TCP's connect, and from then to TLS's end. */
export interface LaneTimings { offerMs?: number, connectMs?: number, handshakeMs?: number }

const since = (start: number): number => Math.round(performance.now() - start)

/** The asker's side: asks for an offer on `connection`, then dials it; rejects (LaneClosedError) on anything short of a lane. */
export async function openLane (connection: Connection, options: DialLaneOptions): Promise<LaneStream> {
  const { signal } = options
  const host = hostOf(connection)
  if (host === undefined) throw new LaneClosedError(`no IP in ${connection.remoteAddr.toString()}`)
  let offer: LaneOffer
  const askedAt = performance.now()
  try {
    const stream = await connection.newStream(options.protocol ?? LANE_PROTOCOL, { signal })
    const frames = new FrameQueue(stream, { maxFrameBytes: OFFER_BYTES, messageTimeoutMs: LANE_OFFER_SEND_TIMEOUT_MS, maxQueuedFrames: 1 })
    const frame = await frames.next({ timeoutMs: LANE_OFFER_SEND_TIMEOUT_MS, signal })
    offer = decodeOffer(frame)
    void stream.close().catch(() => {})
  } catch (err) {
    throw new LaneClosedError(`no lane offer after ${since(askedAt)} ms: ${(err as Error).message}`, { cause: err })
  }
  if (options.timings !== undefined) options.timings.offerMs = since(askedAt)
  return await dialLane(host, offer, options)
}

/** TLS 1.3 keyed by the offer (RFC 8446 external PSK with ECDHE), AES-128-GCM, no certificates. */
export async function dialLane (host: string, offer: LaneOffer, options: DialLaneOptions): Promise<LaneStream> {
  options.signal.throwIfAborted()
  const identity = Buffer.from(offer.identity).toString('hex')
  const key = Buffer.from(offer.key)
  const dialedAt = performance.now()
  let connectedAt: number | undefined
  // allowHalfOpen: our FIN ends our requests, not the holder's answers.
  const { tls, readWith } = connectAskerTls({
    host,
    port: offer.port,
    allowHalfOpen: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: LANE_CIPHER_SUITE,
    // No certificate to check: the key proves the holder (only it and we know it).
    checkServerIdentity: () => undefined,
    pskCallback: () => ({ identity, psk: key }),
  }, options.readTicker)
  tls.once('connect', () => { connectedAt = performance.now() })
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { fail(options.signal.reason instanceof Error ? options.signal.reason : new Error('aborted')) }
      const fail = (err: Error): void => {
        options.signal.removeEventListener('abort', onAbort)
        reject(err)
      }
      options.signal.addEventListener('abort', onAbort, { once: true })
      tls.once('secureConnect', () => {
        options.signal.removeEventListener('abort', onAbort)
        resolve()
      })
      tls.once('error', fail)
      tls.once('close', () => { fail(new Error('closed during the handshake')) })
    })
  } catch (err) {
    tls.destroy()
    const steps = connectedAt === undefined ? `no TCP connect in ${since(dialedAt)} ms` : `TCP connect ${Math.round(connectedAt - dialedAt)} ms, no handshake in ${since(connectedAt)} ms`
    throw new LaneClosedError(`the lane to ${host}:${offer.port} did not open (${steps}): ${(err as Error).message}`, { cause: err })
  }
  if (options.timings !== undefined && connectedAt !== undefined) {
    options.timings.connectMs = Math.round(connectedAt - dialedAt)
    options.timings.handshakeMs = since(connectedAt)
  }
  return new LaneStream(tls, options.idleTimeoutMs, 'asker', readWith)
}

/** The IP the libp2p connection came from or went to: the only host a lane is dialed at. */
function hostOf (connection: Connection): string | undefined {
  // Through a relay the remote address is the relay's: no lane there.
  if (connection.remoteAddr.toString().includes('/p2p-circuit')) return undefined
  const match = /^\/ip[46]\/([^/]+)\/tcp\//.exec(connection.remoteAddr.toString())
  return match?.[1]
}
