import { randomBytes } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { createSecureContext, TLSSocket } from 'node:tls'
import type { Connection } from '@libp2p/interface'
import {
  LANE_CIPHER_SUITE, LANE_HANDSHAKE_TIMEOUT_MS, LANE_IDENTITY_BYTES, LANE_IDLE_TIMEOUT_MS, LANE_KEY_BYTES, LANE_OFFER_TTL_MS, LANE_OFFERS_PER_PEER,
  MAX_LANE_OFFERS, MAX_LANES_PER_PEER, MAX_PENDING_LANES, MAX_PENDING_LANES_PER_IP,
} from './constants.js'
import { LaneClosedError } from './errors.js'
import { LaneStream } from './lane-stream.js'
import { ipOf } from './peer-score.js'

/** What a lane keeps of the libp2p connection its offer went over: whose it is, and from where. */
export type LaneConnection = Pick<Connection, 'id' | 'remotePeer' | 'remoteAddr' | 'status'>

/** An offer as it travels to the asker (lane-offer.ts): where to connect and the one-time key. */
export interface LaneOffer { port: number, identity: Uint8Array, key: Uint8Array }

/** What a lane carries, fixed by the protocol its offer was asked on: a chunk stream, one fleet-blob stream, or one object whole. */
export type LaneKind = 'chunk' | 'blob' | 'object'

interface OpenOffer { peer: string, ip: string, connection: LaneConnection, key: Buffer, madeAt: number, expiresAt: number, kind: LaneKind }

export interface LaneListenerInit {
  /** The address to listen on (libp2p's TCP listen host) and the port (0: any). */
  host: string
  port: number
  /** Whether `peer` may have a lane now: connected on that connection and not banned. */
  admits: (peer: string, connection: LaneConnection) => boolean
  /** A lane is up, bound to `peer`: the chunk server serves it, or the fleet-blob server (`kind`, the offer's). */
  onLane: (stream: LaneStream, peer: string, connection: LaneConnection, kind: LaneKind) => void
  handshakeTimeoutMs?: number
  idleTimeoutMs?: number
  offerTtlMs?: number
  /** Why a socket was refused or a lane closed at accept, with its times (debug: the bed's lanes are read from these). */
  debug?: (message: string, fields: Record<string, unknown>) => void
}

/** `::ffff:10.0.0.1` (a dual-stack socket's IPv4 peer) and `10.0.0.1` are one address. */
const plainIp = (ip: string | undefined): string => ip?.startsWith('::ffff:') === true ? ip.slice(7) : ip ?? ''

/**
 * The holder's side of the data lane: it makes one-time offers to peers on their libp2p
 * connection, and accepts a TLS 1.3 connection keyed by one of them. Nothing acts for a
 * stranger: a socket from an address no open offer was made to is closed at accept, before
 * TLS; one from such an address gets a handshake only for an offer's identity, once, shown
 * within LANE_HANDSHAKE_TIMEOUT_MS of the accept (and the handshake done within as long again
 * after it), with MAX_PENDING_LANES (per IP: MAX_PENDING_LANES_PER_IP) sockets at most before
 * their handshake; the key is forgotten at its first use, right or wrong. A
 * lane belongs to the peer ID its offer was made to and closes with its libp2p connection or
 * a ban (closePeer).
 */
export class LaneListener {
  private readonly server: Server
  /** Open offers by their identity (hex), in the order made (the oldest expires first). */
  private readonly offers = new Map<string, OpenOffer>()
  private readonly pendingPerIp = new Map<string, number>()
  private pending = 0
  private readonly lanes = new Map<string, Set<LaneStream>>()
  private readonly context = createSecureContext({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: LANE_CIPHER_SUITE })
  /** Sockets refused at accept (no offer to their address) and handshakes that failed or timed out. */
  refused = 0
  private port = 0

  constructor (private readonly init: LaneListenerInit) {
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => { this.accept(socket) })
  }

  /** Listens; resolves with the port. */
  async start (options: { signal?: AbortSignal } = {}): Promise<number> {
    options.signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen({ host: this.init.host, port: this.init.port, signal: options.signal }, () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    const address = this.server.address()
    this.port = typeof address === 'object' && address !== null ? address.port : 0
    return this.port
  }

  /** A one-time offer for `peer` on `connection` of a lane for `kind`, or undefined when it has too many open (or everyone has). */
  offer (peer: string, connection: LaneConnection, kind: LaneKind = 'chunk'): LaneOffer | undefined {
    const ip = ipOf(connection.remoteAddr.toString())
    if (ip === undefined || this.port === 0) return undefined
    this.expire()
    let open = 0
    for (const offer of this.offers.values()) if (offer.peer === peer) open++
    if (open >= LANE_OFFERS_PER_PEER || this.offers.size >= MAX_LANE_OFFERS) return undefined
    const identity = randomBytes(LANE_IDENTITY_BYTES)
    const key = randomBytes(LANE_KEY_BYTES)
    const madeAt = Date.now()
    this.offers.set(identity.toString('hex'), { peer, ip, connection, key, madeAt, expiresAt: madeAt + (this.init.offerTtlMs ?? LANE_OFFER_TTL_MS), kind })
    return { port: this.port, identity, key }
  }

  /** Closes `peer`'s lanes and forgets its offers (its connection closed, or it was banned). */
  closePeer (peer: string, err: Error): void {
    for (const [identity, offer] of this.offers) if (offer.peer === peer) this.offers.delete(identity)
    for (const lane of [...this.lanes.get(peer) ?? []]) lane.abort(err)
  }

  /** Lanes open now, all peers. */
  get openLanes (): number {
    let count = 0
    for (const set of this.lanes.values()) count += set.size
    return count
  }

  async stop (): Promise<void> {
    this.offers.clear()
    for (const peer of [...this.lanes.keys()]) this.closePeer(peer, new LaneClosedError('the swarm is stopping'))
    await new Promise<void>((resolve) => { this.server.close(() => { resolve() }) })
  }

  private expire (): void {
    const now = Date.now()
    for (const [identity, offer] of this.offers) {
      if (offer.expiresAt > now) break
      this.offers.delete(identity)
    }
  }

  private debug (message: string, fields: Record<string, unknown>): void {
    this.init.debug?.(message, fields)
  }

  private accept (socket: Socket): void {
    this.expire()
    const acceptedAt = performance.now()
    const ip = plainIp(socket.remoteAddress)
    const fromIp = this.pendingPerIp.get(ip) ?? 0
    // An accept and a close for a stranger: no offer was made to anyone at its address.
    const stranger = ![...this.offers.values()].some(offer => offer.ip === ip)
    if (stranger || this.pending >= MAX_PENDING_LANES || fromIp >= MAX_PENDING_LANES_PER_IP) {
      this.refused++
      this.debug('lane socket refused at accept', { ip, why: stranger ? 'no offer to its address' : 'too many pending', pending: this.pending, fromIp })
      socket.destroy()
      return
    }
    this.pending++
    this.pendingPerIp.set(ip, fromIp + 1)
    let chosen: OpenOffer | undefined
    /** When the ClientHello's identity was looked up (ms after accept), for the debug lines. */
    let helloMs: number | undefined
    let counted = true
    const settle = (): void => {
      if (!counted) return
      counted = false
      this.pending--
      const left = (this.pendingPerIp.get(ip) ?? 1) - 1
      if (left <= 0) this.pendingPerIp.delete(ip)
      else this.pendingPerIp.set(ip, left)
    }
    // allowHalfOpen is read by node's TLSSocket (an asker's FIN ends its requests, not our answers) but not in its types.
    const options = {
      isServer: true,
      secureContext: this.context,
      allowHalfOpen: true,
      pskCallback: (_socket: TLSSocket, identity: string): Buffer | null => {
        helloMs = Math.round(performance.now() - acceptedAt)
        const offer = this.offers.get(identity)
        // Used once, whether the key then proves right or not; only from the address it was made to.
        this.offers.delete(identity)
        const why = offer === undefined ? 'no such offer' : offer.ip !== ip ? 'another address' : offer.expiresAt <= Date.now() ? 'offer expired' : !this.init.admits(offer.peer, offer.connection) ? 'peer not admitted' : undefined
        if (offer === undefined || why !== undefined) {
          this.debug('lane identity refused', { ip, why, helloMs, offerAgeMs: offer === undefined ? undefined : Date.now() - offer.madeAt })
          return null
        }
        chosen = offer
        // An open offer's identity: the peer it was made to (only it learnt it, inside noise)
        // gets the same time again to finish. Counted from the accept, a handshake on a full
        // link ran past it after the holder had sent its Finished: the asker's lane was up, the
        // holder's gone, and the asker's first request met EPIPE (the 16-host bed).
        timer.refresh()
        return offer.key
      },
    }
    const tls = new TLSSocket(socket, options)
    const timer = setTimeout(() => {
      this.refused++
      this.debug('lane handshake timed out', { ip, peer: chosen?.peer, helloMs, ms: Math.round(performance.now() - acceptedAt) })
      tls.destroy()
    }, this.init.handshakeTimeoutMs ?? LANE_HANDSHAKE_TIMEOUT_MS)
    timer.unref()
    tls.on('error', (err) => {
      if (counted) {
        this.refused++
        this.debug('lane handshake failed', { ip, peer: chosen?.peer, helloMs, ms: Math.round(performance.now() - acceptedAt), error: err.message })
      }
      tls.destroy()
    })
    tls.once('close', () => {
      clearTimeout(timer)
      settle()
    })
    tls.once('secure', () => {
      clearTimeout(timer)
      settle()
      const offer = chosen
      if (offer === undefined || !this.init.admits(offer.peer, offer.connection)) {
        tls.destroy()
        return
      }
      let set = this.lanes.get(offer.peer)
      if (set === undefined) {
        set = new Set()
        this.lanes.set(offer.peer, set)
      }
      if (set.size >= MAX_LANES_PER_PEER) {
        this.debug('lane closed: the peer has its lanes', { peer: offer.peer, open: [...set].map(lane => lane.status) })
        tls.destroy()
        return
      }
      this.debug('lane served', { peer: offer.peer, helloMs, ms: Math.round(performance.now() - acceptedAt), offerAgeMs: Date.now() - offer.madeAt })
      const lane = new LaneStream(tls, this.init.idleTimeoutMs ?? LANE_IDLE_TIMEOUT_MS, 'holder')
      set.add(lane)
      lane.addEventListener('close', () => {
        set.delete(lane)
        if (set.size === 0 && this.lanes.get(offer.peer) === set) this.lanes.delete(offer.peer)
      }, { once: true })
      this.init.onLane(lane, offer.peer, offer.connection, offer.kind)
    })
    socket.resume()
  }
}
