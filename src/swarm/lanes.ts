import type { Connection, Stream } from '@libp2p/interface'
import {
  BLOB_LANE_CONNECT_TIMEOUT_MS, BLOB_LANE_PROTOCOL, OBJECT_LANE_PROTOCOL, LANE_CONNECT_TIMEOUT_MS, LANE_FIRST_RETRY_MS, LANE_FIRST_WAIT_MS, LANE_IDLE_TIMEOUT_MS, LANE_MIN_RATE_BYTES_PER_S, LANE_READY_UNUSED_MS, LANE_RETRY_AFTER_FAILURE_MS,
  MAX_LANES_PER_PEER,
} from './constants.js'
import { LaneClosedError } from './errors.js'
import { LaneListener, type LaneConnection, type LaneKind } from './lane-listener.js'
import { openLane, serveLaneOffer, type LaneTimings } from './lane-offer.js'
import type { LaneStream } from './lane-stream.js'
import type { SwarmLogger } from './swarm-options.js'
import { READ_WAIT_MS, ReadTicker } from './socket-batching.js'
import { Wakers, abortAfter, waitWhile } from '../wait/index.js'

/** Where the lane listens: libp2p's TCP listen host, and a port (0: any). */
export interface LaneListen { host: string, port: number }

export interface LanesComponents {
  log: SwarmLogger
  /** The open libp2p connection to `peer`, if any: offers are asked and lanes dialed only over one. */
  connectionTo: (peer: string) => Connection | undefined
  /** Whether `peer` may have a lane now (connected, not banned). */
  admits: (peer: string) => boolean
  /** The holder's side: a lane is up, bound to `peer`; `id` names it for the chunk server's resend window. */
  onServe: (stream: LaneStream, connection: Pick<Connection, 'remotePeer' | 'id'>) => void
  /** The holder's side: a lane for one fleet-blob stream is up, bound to `peer` (without it such lanes are closed at once). */
  onServeBlob?: (stream: LaneStream, connection: Pick<Connection, 'remotePeer'>) => void
  /** The holder's side: a lane for one object whole is up, bound to `peer` (without it such lanes are closed at once). */
  onServeObject?: (stream: LaneStream, connection: Pick<Connection, 'remotePeer' | 'id'>) => void
  /** The asker's side: a lane to `peer` is ready for its next chunk stream. */
  onReady: (peer: string) => void
  /** How a lane is asked for and dialed (lane-offer.ts openLane; tests hand lanes of their own). */
  openLane?: typeof openLane
}

export interface LanesInit {
  /** Where to accept lanes; undefined serves none (chunks to askers stay on libp2p). */
  listen?: LaneListen
  /** Ask holders for lanes; false keeps every pull on libp2p. */
  ask: boolean
  /** LANE_MIN_RATE_BYTES_PER_S unless given (0: ask when the first chunk stream to a peer opens). */
  minRateBytesPerSecond?: number
  /** How long a chunk stream's open waits for a lane on its way (LANE_FIRST_WAIT_MS). */
  firstWaitMs?: number
  /** The first retry after a failure (LANE_FIRST_RETRY_MS), doubling up to retryAfterFailureMs (LANE_RETRY_AFTER_FAILURE_MS). */
  firstRetryMs?: number
  retryAfterFailureMs?: number
  connectTimeoutMs?: number
  idleTimeoutMs?: number
  /** How long a lane up waits for a chunk stream to take it (LANE_READY_UNUSED_MS). */
  readyUnusedMs?: number
}

/** Counters for `swarm.stats()`: what went over lanes, and how many failed. */
export interface LaneStats {
  /** Lanes this node opened to holders, and lanes holders' askers opened to it. */
  opened: number
  served: number
  /** Lanes that could not open or died with an error; the chunks went over libp2p. */
  failed: number
  /** Sockets the listener closed before or at the handshake (strangers, used or wrong keys, timeouts). */
  refused: number
  /** Payload bytes received and sent over lanes (chunk responses and requests). */
  bytesReceived: number
  bytesSent: number
}

type AskState =
  | { state: 'opening' }
  | { state: 'ready', stream: LaneStream }
  | { state: 'in-use' }
  | { state: 'failed', until: number }

/**
 * The data lane beside libp2p (docs/architecture.md "A data lane beside libp2p"): chunk
 * streams over TLS 1.3 keyed by a one-time offer made on the peers' libp2p connection, at a
 * fraction of the libp2p stack's CPU per byte. An upgrade, never a wait: chunk streams open on
 * libp2p; once a peer delivers fast enough for the lane to pay, one is asked for in the
 * background, and once it is up the fetcher moves the peer's new requests to it (onReady). A lane that cannot open within
 * LANE_CONNECT_TIMEOUT_MS, or dies, leaves that peer's chunks on libp2p for
 * LANE_FIRST_RETRY_MS, doubling with each failure in a row up to LANE_RETRY_AFTER_FAILURE_MS
 * (for as long as it is connected, if it does not speak the protocol), logged once per peer at
 * info.
 */
export class Lanes {
  private readonly listener: LaneListener | undefined
  private readonly asking = new Map<string, AskState>()
  /** Lanes carrying our chunk streams, and lanes we serve, so a disconnect or ban closes them. */
  private readonly open = new Map<string, Set<LaneStream>>()
  private readonly logged = new Set<string>()
  /** Lanes to a peer that failed since one last ended cleanly: the next retry waits longer for each. */
  private readonly failuresInARow = new Map<string, number>()
  private readonly counts = { opened: 0, served: 0, failed: 0, bytesReceived: 0, bytesSent: 0 }
  private stopController = new AbortController()
  private servedCount = 0
  private listening: number | undefined
  /** An ask ended (a lane up, failed or given up): chunk streams waiting for it look again. */
  private readonly settled = new Wakers()
  /** Lanes up and not yet taken: what stops watching them once a chunk stream takes one (untilTaken). */
  private readonly taken = new WeakMap<LaneStream, () => void>()
  /** Lanes this node holds to each peer's listener, open or on their way (the holder admits MAX_LANES_PER_PEER). */
  private readonly heldTo = new Map<string, number>()
  /** Peers whose blob (or object) lane failed lately, and until when such streams stay off lanes (Infinity: no such protocol there). */
  private readonly streamLanesFailed = { blob: new Map<string, { until: number, inARow: number }>(), object: new Map<string, { until: number, inARow: number }>() }
  /** Chunk streams waiting in `take` for a peer's lane: they take it, so the fetcher is not told to switch. */
  private readonly takers = new Map<string, number>()
  /** The asker's lanes read chunk data on a tick, as libp2p's sockets do (lane-offer.ts DialLaneOptions). */
  private readonly reads = new ReadTicker(READ_WAIT_MS)

  constructor (private readonly components: LanesComponents, private readonly init: LanesInit) {
    this.listener = init.listen === undefined
      ? undefined
      : new LaneListener({
        host: init.listen.host,
        port: init.listen.port,
        admits: (peer, connection) => connection.status === 'open' && components.admits(peer),
        idleTimeoutMs: init.idleTimeoutMs,
        debug: (message, fields) => { components.log.debug(message, fields) },
        onLane: (stream, peer, connection, kind) => { this.served(stream, peer, connection, kind) },
      })
  }

  /** Starts the listener; resolves with its port (undefined without one). A port in use turns serving off, with a warning: lanes are an upgrade. */
  async start (options: { signal?: AbortSignal } = {}): Promise<number | undefined> {
    this.stopController = new AbortController()
    if (this.listener === undefined) return undefined
    try {
      this.listening = await this.listener.start(options)
      return this.listening
    } catch (err) {
      this.components.log.warn('the data lane could not listen; chunks to askers go over libp2p', { error: (err as Error).message, host: this.init.listen?.host, port: this.init.listen?.port })
      return undefined
    }
  }

  async stop (): Promise<void> {
    this.stopController.abort(new LaneClosedError('the swarm is stopping'))
    for (const peer of [...this.open.keys()]) this.closePeer(peer, new LaneClosedError('the swarm is stopping'))
    for (const state of this.asking.values()) if (state.state === 'ready') state.stream.abort(new LaneClosedError('the swarm is stopping'))
    this.asking.clear()
    await this.listener?.stop()
  }

  /** The libp2p handler of LANE_PROTOCOL, of BLOB_LANE_PROTOCOL with `kind` 'blob' and of OBJECT_LANE_PROTOCOL with 'object' (registered only where a listener runs). */
  handleOffer (stream: Stream, connection: LaneConnection, kind: LaneKind = 'chunk'): void {
    if (this.listener === undefined || (kind === 'blob' && this.components.onServeBlob === undefined) || (kind === 'object' && this.components.onServeObject === undefined)) {
      stream.abort(new LaneClosedError('no lane here'))
      return
    }
    void serveLaneOffer(this.listener, stream, connection, peer => this.components.admits(peer), kind)
  }

  /**
   * A lane to `peer` for one fleet-blob stream (BLOB_LANE_PROTOCOL), or undefined: the stream then
   * opens on libp2p. Asked for each blob stream (a lane carries one stream and ends with it),
   * waited for up to BLOB_LANE_CONNECT_TIMEOUT_MS; after a failure the peer's blob streams stay
   * on libp2p for LANE_FIRST_RETRY_MS, doubling up to LANE_RETRY_AFTER_FAILURE_MS, and for as
   * long as it is connected when it does not speak the protocol (an older node, or one without
   * a lane listener).
   */
  async blobLane (peer: string, signal: AbortSignal): Promise<LaneStream | undefined> {
    return await this.streamLane(peer, 'blob', signal)
  }

  /** A lane to `peer` for one object whole (OBJECT_LANE_PROTOCOL), or undefined, on blobLane's terms; its chunks are read as they come, off the read tick. */
  async objectLane (peer: string, signal: AbortSignal): Promise<LaneStream | undefined> {
    return await this.streamLane(peer, 'object', signal)
  }

  private async streamLane (peer: string, kind: 'blob' | 'object', signal: AbortSignal): Promise<LaneStream | undefined> {
    const failures = this.streamLanesFailed[kind]
    const failed = failures.get(peer)
    if (!this.init.ask || (failed !== undefined && failed.until > Date.now())) return undefined
    // The holder would refuse it (two per peer): not asked, so no failure keeps the peer's next streams off lanes.
    if (this.lanesTo(peer) >= MAX_LANES_PER_PEER) return undefined
    const connection = this.components.connectionTo(peer)
    if (connection === undefined) return undefined
    this.hold(peer, 1)
    const startedAt = Date.now()
    const timings: LaneTimings = {}
    try {
      const stream = await (this.components.openLane ?? openLane)(connection, {
        signal: abortAfter(BLOB_LANE_CONNECT_TIMEOUT_MS, AbortSignal.any([signal, this.stopController.signal])),
        idleTimeoutMs: this.init.idleTimeoutMs ?? LANE_IDLE_TIMEOUT_MS,
        // An object lane's reader paces it by pausing the socket, which the tick would undo.
        readTicker: kind === 'blob' ? this.reads : undefined,
        timings,
        protocol: kind === 'blob' ? BLOB_LANE_PROTOCOL : OBJECT_LANE_PROTOCOL,
      })
      if (!this.components.admits(peer) || connection.status !== 'open' || this.stopController.signal.aborted) {
        stream.abort(new LaneClosedError('the peer left while its lane opened'))
        return undefined
      }
      this.counts.opened++
      failures.delete(peer)
      // Held from here until it closes (track).
      this.hold(peer, 1)
      this.track(peer, stream, 'blob')
      this.components.log.debug(`${kind} lane up`, { peer, ms: Date.now() - startedAt, ...timings })
      return stream
    } catch (err) {
      signal.throwIfAborted()
      this.counts.failed++
      const inARow = (failed?.inARow ?? 0) + 1
      const retryAfterMs = unsupportedProtocol(err) ? Infinity : this.retryAfterMs(inARow)
      failures.set(peer, { until: Date.now() + retryAfterMs, inARow })
      this.components.log.debug(`no ${kind} lane; the stream goes without one`, { peer, why: (err as Error).message, retryInMs: Number.isFinite(retryAfterMs) ? retryAfterMs : undefined })
      return undefined
    } finally {
      this.hold(peer, -1)
    }
  }

  /** Lanes to `peer`'s listener this node holds or is opening: blob lanes, and its chunk lane (on its way, up or in use). */
  private lanesTo (peer: string): number {
    const chunk = this.asking.get(peer)?.state
    // A chunk lane in use is among the held ones (track); one opening or up and not taken is not yet.
    return (this.heldTo.get(peer) ?? 0) + (chunk === 'opening' || chunk === 'ready' ? 1 : 0)
  }

  private hold (peer: string, change: number): void {
    const held = (this.heldTo.get(peer) ?? 0) + change
    if (held > 0) this.heldTo.set(peer, held)
    else this.heldTo.delete(peer)
  }

  /** The listener's port once it listens. */
  get port (): number | undefined {
    return this.listening
  }

  /**
   * The asker's chunk stream to `peer`: its lane (one lane carries one chunk stream), or
   * undefined for libp2p. With no rate to wait for (a gate of 0) a lane is asked for here, as
   * the first chunk stream to the peer opens: asked once chunks flow, its offer queued behind
   * them on the libp2p connection past LANE_CONNECT_TIMEOUT_MS on the 8-host bed. A lane on
   * its way is waited for up to LANE_FIRST_WAIT_MS, so a pull's chunks from that peer start on
   * it rather than switching streams mid-pull; past that they start on libp2p and move when
   * it is up (onReady).
   */
  async take (peer: string, signal: AbortSignal): Promise<LaneStream | undefined> {
    if (this.asksAtOnce()) this.askIfDue(peer)
    this.takers.set(peer, (this.takers.get(peer) ?? 0) + 1)
    try {
      await waitWhile(() => this.asking.get(peer)?.state === 'opening', this.settled.subscribe, { timeoutMs: this.init.firstWaitMs ?? LANE_FIRST_WAIT_MS, signal })
    } finally {
      const left = (this.takers.get(peer) ?? 1) - 1
      if (left > 0) this.takers.set(peer, left)
      else this.takers.delete(peer)
    }
    const state = this.asking.get(peer)
    if (state?.state !== 'ready') return undefined
    this.taken.get(state.stream)?.()
    this.taken.delete(state.stream)
    this.asking.set(peer, { state: 'in-use' })
    this.track(peer, state.stream, 'asked')
    return state.stream
  }

  /**
   * `peer` delivered at `rate` bytes per second over libp2p: at LANE_MIN_RATE_BYTES_PER_S or
   * more a lane is asked for in the background, unless one is up, on its way or failed lately.
   */
  delivered (peer: string, rate: number | undefined): void {
    if (!this.init.ask || rate === undefined || rate < (this.init.minRateBytesPerSecond ?? LANE_MIN_RATE_BYTES_PER_S)) return
    this.askIfDue(peer)
  }

  /**
   * `peer` is about to be asked for chunks (it said it holds a bundle being pulled): where lanes
   * are asked for as chunk streams open, one is asked for now, in the background, unless one is
   * up, on its way or failed lately; the first chunk stream then finds it up (`take`).
   */
  prepare (peer: string): void {
    if (this.asksAtOnce()) this.askIfDue(peer)
  }

  /** Lanes are asked for as chunk streams open, not once a rate is measured. */
  private asksAtOnce (): boolean {
    return this.init.ask && (this.init.minRateBytesPerSecond ?? LANE_MIN_RATE_BYTES_PER_S) <= 0
  }

  /** Asks for a lane to `peer` in the background unless one is up, on its way or failed lately. */
  private askIfDue (peer: string): void {
    const state = this.asking.get(peer)
    if (state === undefined || (state.state === 'failed' && state.until <= Date.now())) void this.ask(peer)
  }

  /** Whether `peer`'s lane is up or on its way (the fetcher's chunk stream moves to it soon). */
  pending (peer: string): boolean {
    const state = this.asking.get(peer)?.state
    return state === 'opening' || state === 'ready'
  }

  /** Closes `peer`'s lanes (its connection closed or it was banned) and forgets its state. */
  closePeer (peer: string, err: Error): void {
    const state = this.asking.get(peer)
    this.asking.delete(peer)
    this.failuresInARow.delete(peer)
    this.streamLanesFailed.blob.delete(peer)
    this.streamLanesFailed.object.delete(peer)
    if (state?.state === 'ready') state.stream.abort(err)
    for (const stream of [...this.open.get(peer) ?? []]) stream.abort(err)
    this.listener?.closePeer(peer, err)
  }

  stats (): LaneStats {
    let bytesReceived = this.counts.bytesReceived
    let bytesSent = this.counts.bytesSent
    for (const set of this.open.values()) {
      for (const stream of set) {
        bytesReceived += stream.bytesIn
        bytesSent += stream.bytesOut
      }
    }
    return { opened: this.counts.opened, served: this.servedCount, failed: this.counts.failed, refused: this.listener?.refused ?? 0, bytesReceived, bytesSent }
  }

  private async ask (peer: string): Promise<void> {
    const connection = this.components.connectionTo(peer)
    if (connection === undefined) return
    this.asking.set(peer, { state: 'opening' })
    const signal = abortAfter(this.init.connectTimeoutMs ?? LANE_CONNECT_TIMEOUT_MS, this.stopController.signal)
    const startedAt = Date.now()
    const timings: LaneTimings = {}
    try {
      const stream = await (this.components.openLane ?? openLane)(connection, { signal, idleTimeoutMs: this.init.idleTimeoutMs ?? LANE_IDLE_TIMEOUT_MS, readTicker: this.reads, timings })
      if (this.asking.get(peer)?.state !== 'opening' || !this.components.admits(peer) || connection.status !== 'open') {
        // Disconnected, banned or stopped meanwhile.
        stream.abort(new LaneClosedError('the peer left while its lane opened'))
        return
      }
      this.counts.opened++
      const ready: AskState = { state: 'ready', stream }
      this.asking.set(peer, ready)
      this.untilTaken(peer, ready, stream)
      this.components.log.debug('data lane up', { peer, ms: Date.now() - startedAt, ...timings })
      // A chunk stream waiting in `take` gets it; otherwise the fetcher moves the peer's next requests to it.
      if (!this.takers.has(peer)) this.components.onReady(peer)
    } catch (err) {
      if (this.asking.get(peer)?.state !== 'opening') return
      // A peer without the protocol (older nodes) is not asked again while connected.
      this.failed(peer, (err as Error).message, unsupportedProtocol(err) ? Infinity : undefined)
    } finally {
      this.settled.wakeAll()
    }
  }

  /**
   * A lane up and not yet taken: forgotten, and the next chunk stream asks again, when it ends
   * (the holder's end means it will answer nothing on it: its first-request timeout, or a
   * handshake it gave up on after sending its Finished), and closed by us once it sat
   * LANE_READY_UNUSED_MS, before the holder's timeout can cross a request sent on it. Neither
   * is a failure.
   */
  private untilTaken (peer: string, ready: AskState, stream: LaneStream): void {
    const stopWatching = (): void => {
      clearTimeout(unused)
      stream.removeEventListener('remoteCloseWrite', ended)
      stream.removeEventListener('close', drop)
    }
    const drop = (): void => {
      stopWatching()
      if (this.asking.get(peer) !== ready) return
      this.asking.delete(peer)
      if (stream.status === 'open') void stream.close()
    }
    const ended = (): void => {
      this.components.log.debug('data lane ended by its holder before it was used', { peer })
      drop()
    }
    const unused = setTimeout(drop, this.init.readyUnusedMs ?? LANE_READY_UNUSED_MS)
    unused.unref()
    stream.addEventListener('remoteCloseWrite', ended, { once: true })
    stream.addEventListener('close', drop, { once: true })
    this.taken.set(stream, stopWatching)
  }

  /** How long a peer stays on libp2p after its `inARow`th lane failure in a row: doubling from the first retry, up to the cap. */
  private retryAfterMs (inARow: number): number {
    return Math.min(this.init.retryAfterFailureMs ?? LANE_RETRY_AFTER_FAILURE_MS, (this.init.firstRetryMs ?? LANE_FIRST_RETRY_MS) * 2 ** (inARow - 1))
  }

  private failed (peer: string, why: string, retryAfterMs?: number): void {
    this.counts.failed++
    const inARow = (this.failuresInARow.get(peer) ?? 0) + 1
    this.failuresInARow.set(peer, inARow)
    retryAfterMs ??= this.retryAfterMs(inARow)
    this.asking.set(peer, { state: 'failed', until: Date.now() + retryAfterMs })
    // Info once per peer: a fleet of old nodes or a firewalled port is one line each, not one per retry.
    if (this.logged.has(peer)) {
      this.components.log.debug('no data lane; chunks go over libp2p', { peer, why })
      return
    }
    if (this.logged.size >= 4096) this.logged.clear()
    this.logged.add(peer)
    this.components.log.info('no data lane; chunks go over libp2p', { peer, why, retryInMs: Number.isFinite(retryAfterMs) ? retryAfterMs : undefined })
  }

  private served (stream: LaneStream, peer: string, connection: LaneConnection, kind: LaneKind): void {
    this.servedCount++
    this.track(peer, stream, 'served')
    if (kind === 'blob') {
      if (this.components.onServeBlob === undefined) stream.abort(new LaneClosedError('no fleet-blob server here'))
      else this.components.onServeBlob(stream, connection)
      return
    }
    if (kind === 'object') {
      if (this.components.onServeObject === undefined) stream.abort(new LaneClosedError('no object server here'))
      else this.components.onServeObject(stream, { remotePeer: connection.remotePeer, id: `${connection.id}/lane${this.servedCount}` })
      return
    }
    // Its own name in the resend window: chunks in flight on a lane that died are asked again
    // over libp2p on the same connection, and must be served there.
    this.components.onServe(stream, { remotePeer: connection.remotePeer, id: `${connection.id}/lane${this.servedCount}` })
  }

  private track (peer: string, stream: LaneStream, side: 'asked' | 'served' | 'blob'): void {
    let set = this.open.get(peer)
    if (set === undefined) {
      set = new Set()
      this.open.set(peer, set)
    }
    set.add(stream)
    // The asker's in-use chunk lane is held from here (its blob lanes were counted as they opened).
    if (side === 'asked') this.hold(peer, 1)
    const openedAt = Date.now()
    stream.addEventListener('close', (evt) => {
      if (evt.error !== undefined) this.components.log.debug('data lane closed', { peer, side, ms: Date.now() - openedAt, bytesIn: stream.bytesIn, bytesOut: stream.bytesOut, error: evt.error.message })
      this.counts.bytesReceived += stream.bytesIn
      this.counts.bytesSent += stream.bytesOut
      if (side !== 'served') this.hold(peer, -1)
      const open = this.open.get(peer)
      open?.delete(stream)
      if (open?.size === 0) this.open.delete(peer)
      if (side !== 'asked' || this.asking.get(peer)?.state !== 'in-use') return
      // Ended cleanly (idle, or the pull is over): the next chunk stream asks for a new lane.
      if (evt.error === undefined) {
        this.asking.delete(peer)
        this.failuresInARow.delete(peer)
      } else {
        this.failed(peer, evt.error.message)
      }
    }, { once: true })
  }
}

/** The peer does not speak the lane's offer protocol (an older node, or one without a listener). */
function unsupportedProtocol (err: unknown): boolean {
  return (err as { cause?: { name?: string } }).cause?.name === 'UnsupportedProtocolError'
}
