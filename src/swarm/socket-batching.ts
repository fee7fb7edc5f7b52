import { observeReads, tcpSocketOf } from './tcp-boundary.js'
import type { Socket } from 'node:net'
import type { CreateListenerOptions, DialTransportOptions, MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'

/**
 * The TCP transport with fewer system calls and packets per message on slow links.
 *
 * noise writes every message as two `socket.write`s (its 2-byte length, then the ciphertext),
 * and yamux answers every data frame with a 12-byte window update, one more noise message; with
 * `noDelay` each such write was its own system call and its own TCP segment (on the 8-host
 * fleet bed ~70% of an edge's socket writes were 64 bytes or less). Here small writes wait,
 * corked, for the end of the event loop's turn and leave in one `writev` with whatever else was
 * written in that turn; once FLUSH_BYTES wait they leave at once, so bulk data is never held
 * back. On the bed: write calls per edge -50 to -65%, reads -20 to -30% (fewer tiny segments to
 * wake for), non-payload wire bytes 0.048 -> 0.044x the bundle; CPU per GiB within the noise
 * (docs/architecture.md, "The fleet bed").
 *
 * Reads: on such a link each socket's data arrives a few packets at a time, and every arrival
 * woke the event loop and went up through the swarm key's layer, noise, yamux and the stream
 * on its own. A socket carrying a slow data stream (ReadTicker) now stops reading after a read
 * that emptied the kernel's buffer and starts again on a tick shared by all sockets, READ_WAIT_MS
 * later: what arrived meanwhile comes up in one read and one pass, and the sockets that waited
 * wake together. Control-sized reads (requests, credits) and sockets fast enough to fill a
 * 64 KiB read within the wait never wait, so loopback and LAN speeds are untouched.
 *
 * libp2p's TCP transport does not expose its sockets; each connection is seen here on its way
 * to the upgrader (the transport's `upgrader` wrapped), and its socket found by tcp-boundary.ts.
 * A connection whose socket cannot be found is upgraded untouched.
 */

export interface SocketBatchingInit {
  /** Corked bytes that are flushed at once rather than at the end of the turn. */
  flushBytes?: number
  /** After a short read of a slow data stream, how long a socket waits before reading again (0: never waits). */
  readWaitMs?: number
}

/** Node's writable high-water mark: a write this large is bulk data, which gains nothing by waiting. */
export const FLUSH_BYTES = 16 * 1024

/**
 * The read tick. On the 8-host bed (20 Mbit/s) an edge's main thread woke 250-330 times a
 * second, mostly for socket data; edges reading on a 20 ms tick beside edges without it in the
 * same run: wake-ups -42%, reads -50%, CPU -8%, completion +0.8% (25 ms: CPU -9%, completion
 * +2%; 10 ms: CPU -4%). docs/architecture.md, "The fleet bed".
 */
export const READ_WAIT_MS = 20

export function withSocketBatching<Components> (factory: (components: Components) => Transport, init: SocketBatchingInit = {}): (components: Components) => Transport {
  const flushBytes = init.flushBytes ?? FLUSH_BYTES
  const ticker = new ReadTicker(init.readWaitMs ?? READ_WAIT_MS)
  return (components) => {
    const inner = factory(components)
    // The wrapper inherits everything else (filters, symbols, a start/stop if any) from the transport.
    const wrapped = Object.create(inner) as Transport
    wrapped.dial = async (ma, options: DialTransportOptions) => await inner.dial(ma, { ...options, upgrader: tuningUpgrader(options.upgrader, flushBytes, ticker) })
    wrapped.createListener = (options: CreateListenerOptions) => inner.createListener({ ...options, upgrader: tuningUpgrader(options.upgrader, flushBytes, ticker) })
    return wrapped
  }
}

function tuningUpgrader (upgrader: Upgrader, flushBytes: number, ticker: ReadTicker): Upgrader {
  const tuned = Object.create(upgrader) as Upgrader
  tuned.upgradeInbound = async (maConn, options) => {
    batchSocketOf(maConn, flushBytes, ticker)
    await upgrader.upgradeInbound(maConn, options)
  }
  tuned.upgradeOutbound = async (maConn, options) => {
    batchSocketOf(maConn, flushBytes, ticker)
    return await upgrader.upgradeOutbound(maConn, options)
  }
  return tuned
}

function batchSocketOf (maConn: MultiaddrConnection, flushBytes: number, ticker: ReadTicker): void {
  const socket = tcpSocketOf(maConn)
  if (socket === undefined) return
  batchWrites(socket, flushBytes)
  if (ticker.waitMs > 0) ticker.add(socket)
}

/** Node reads a socket 64 KiB at a time: a read that filled it leaves more in the kernel. */
const FULL_READ_BYTES = 64 * 1024
/**
 * A read smaller than about one TCP segment carries control messages (requests, window
 * updates, gossip), not a data stream: the socket keeps reading, so answers and credits are
 * never held back by the tick.
 */
const MIN_WAITING_READ_BYTES = 1400
/** Over how long a socket's read rate is measured. */
export const RATE_WINDOW_MS = 100
/**
 * A TLS socket on the tick whose records stopped coming this long ago reads on until the next
 * ones (an idle lane costs no ticks). Longer than the gaps between a slow lane's records
 * (~40 ms at the 8-host bed's ~0.4 MB/s), whose first packets would each wake the loop again.
 */
const IDLE_RECORDS_MS = 500

/**
 * The most ticks a socket with a read target waits in a row (READ_WAIT_MS each). On the 8-host
 * bed, edges with lane targets beside edges without: 2 ticks, reads -29%, CPU -1.5%, completion
 * unchanged; 3 ticks, CPU -5% but completion +1 to +3% (docs/architecture.md, "The fleet bed").
 */
export const MAX_WAIT_TICKS = 2

interface ReadHandle { reading: boolean, readStop: () => number }

export interface ReadTickerSocketInit {
  /**
   * Bytes one read should bring: a socket whose rate would bring fewer within one tick waits
   * as many ticks as it takes, up to MAX_WAIT_TICKS. Without one, a socket waits one tick.
   */
  readTargetBytes?: number
}

/**
 * Fewer, larger reads: after a read that emptied the kernel's buffer (less than a full 64 KiB),
 * a socket stops reading until a shared tick, so that what arrives meanwhile comes up in one
 * read and one pass through the protocol stack. One timer for all sockets, so the sockets that
 * wait wake together. A socket given a read target (a lane's TLS record) waits more ticks while
 * its rate would bring less than that in one.
 */
export class ReadTicker {
  /** Each waiting socket, with the ticks it still waits. */
  private readonly waiting = new Map<Socket, number>()
  private readonly restart = new Map<Socket, () => void>()
  private timer: NodeJS.Timeout | undefined

  constructor (readonly waitMs: number) {}

  get waitingSockets (): number { return this.waiting.size }

  add (socket: Socket, init: ReadTickerSocketInit = {}): void {
    const judge = this.watch(socket, init)
    // Each read's size, whether the socket emits 'data' or reads into the swarm key's buffer (tcp-boundary.ts).
    if (judge !== undefined) observeReads(socket, (length) => { judge(length) })
  }

  /**
   * A TLS socket reading its TCP socket's own handle (a lane's asker, lane-transport.ts): node's
   * TLS reads the TCP socket in C++ and shows JavaScript only whole records (16 KiB at most), so
   * no single record says whether a read was full, and a read that ends inside a record is not
   * seen at all. What one event-loop turn brought is judged at the turn's end instead, and so is
   * the turn in which the tick restarted the socket (its poll phase reads what waited in the
   * kernel, records or not): less than a full read's worth means the burst is over, and the TLS
   * socket stops until the tick; its handle's readStop reaches the TCP handle in C++. So a slow
   * socket reads once a tick, as a TCP socket on the tick does. A turn of a full read's worth or
   * more (the kernel held more than one read takes) or a fast rate keeps it reading: stopping
   * after each record instead capped a fast lane at a record a tick (1.9 MB/s on loopback). A
   * socket whose records stopped IDLE_RECORDS_MS ago is idle, not slow: it reads on, so an
   * idle lane costs no ticks. Returns what to call with each record's cleartext length, or
   * undefined if the socket has no handle to stop. `turnEnded` runs at each such turn's end,
   * before the judgement.
   */
  addRecordReader (socket: Socket, init: ReadTickerSocketInit & { turnEnded?: () => void } = {}): ((length: number) => void) | undefined {
    let turnBytes = 0
    let turnEndDue = false
    const turnEnded = (): void => {
      turnEndDue = false
      const bytes = turnBytes
      turnBytes = 0
      // The socket's own end-of-turn work first (lane-transport.ts hands its records over), in the same immediate.
      init.turnEnded?.()
      judge?.(bytes)
    }
    const endOfTurn = (): void => {
      if (turnEndDue) return
      turnEndDue = true
      setImmediate(turnEnded)
    }
    const judge = this.watch(socket, init, { records: true, restarted: endOfTurn })
    if (judge === undefined) return undefined
    return (length) => {
      endOfTurn()
      turnBytes += length
    }
  }

  /**
   * Makes `socket` wait for the tick when told of a read (or, for `records`, a turn's records)
   * that emptied the kernel's buffer; returns what to tell it, or undefined if the socket has no
   * handle to stop. `restarted` runs each time the tick starts the socket reading again.
   */
  private watch (socket: Socket, init: ReadTickerSocketInit, how: { records?: boolean, restarted?: () => void } = {}): ((length: number) => void) | undefined {
    const handle = (socket as unknown as { _handle?: Partial<ReadHandle> | null })._handle
    if (handle == null || typeof handle.readStop !== 'function') return undefined
    // Node's Readable asks for more (`_read`) right after each chunk; while the socket waits for
    // the tick that must not start the handle reading again.
    const read = socket._read.bind(socket)
    socket._read = (size: number) => { if (!this.waiting.has(socket)) read(size) }
    this.restart.set(socket, () => {
      read(socket.readableHighWaterMark)
      how.restarted?.()
    })
    // A socket whose recent rate would fill a 64 KiB read within the wait never waits: on a fast
    // link the tick would only delay data (and the credits its reader sends back for it).
    const fastBytes = FULL_READ_BYTES / this.waitMs * RATE_WINDOW_MS
    let windowStart = performance.now()
    let windowBytes = 0
    let fast = false
    /** Bytes per millisecond over the last whole window; 0 until one has passed. */
    let rate = 0
    let lastBytesAt = windowStart
    socket.once('close', () => {
      this.waiting.delete(socket)
      this.restart.delete(socket)
    })
    return (length) => {
      windowBytes += length
      const now = performance.now()
      if (now - windowStart >= RATE_WINDOW_MS) {
        rate = windowBytes / (now - windowStart)
        fast = rate * RATE_WINDOW_MS >= fastBytes
        windowStart = now
        windowBytes = 0
      }
      if (length > 0) lastBytesAt = now
      // A TLS socket's control-sized records wait like the rest (what a lane's asker receives is
      // chunk responses); one that brought nothing for a while is idle.
      const readsOn = how.records === true ? length === 0 && now - lastBytesAt >= IDLE_RECORDS_MS : length < MIN_WAITING_READ_BYTES
      if (fast || length >= FULL_READ_BYTES || readsOn || this.waiting.has(socket) || socket.destroyed) return
      const current = (socket as unknown as { _handle?: ReadHandle | null })._handle
      if (current == null || !current.reading) return
      current.reading = false
      current.readStop()
      const target = init.readTargetBytes ?? 0
      const ticks = rate > 0 && target > 0 ? Math.ceil(target / (rate * this.waitMs)) : 1
      this.waiting.set(socket, Math.min(MAX_WAIT_TICKS, Math.max(1, ticks)))
      this.scheduleTick()
    }
  }

  /** The shared tick, unless one is due already. */
  private scheduleTick (): void {
    if (this.timer !== undefined) return
    this.timer = setTimeout(() => { this.tick() }, this.waitMs)
    this.timer.unref()
  }

  private tick (): void {
    this.timer = undefined
    const due: Socket[] = []
    for (const [socket, ticks] of this.waiting) {
      if (ticks > 1) {
        this.waiting.set(socket, ticks - 1)
        continue
      }
      this.waiting.delete(socket)
      due.push(socket)
    }
    if (this.waiting.size > 0) this.scheduleTick()
    for (const socket of due) {
      if (!socket.destroyed) this.restart.get(socket)?.()
    }
  }
}

/**
 * Corks the socket on its first write of a turn and uncorks it at the turn's end
 * (`setImmediate`: after every I/O callback of this poll phase), or at once when FLUSH_BYTES
 * are waiting. What `write` returns is unchanged: Node computes it from the bytes buffered,
 * corked or not, so a caller's backpressure sees what it saw before.
 */
export function batchWrites (socket: Socket, flushBytes: number = FLUSH_BYTES): void {
  const write = socket.write
  let corked = false
  const flush = (): void => {
    if (!corked) return
    corked = false
    socket.uncork()
  }
  const flushAtTurnEnd = (): void => { flush() }
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      setImmediate(flushAtTurnEnd)
    }
    const ok = write.apply(this, args)
    if (socket.writableLength >= flushBytes) flush()
    return ok
  } as Socket['write']
}
