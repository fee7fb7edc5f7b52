import { Socket } from 'node:net'
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
 * libp2p's TCP transport does not expose its sockets; each connection is seen here on its way
 * to the upgrader (the transport's `upgrader` wrapped), where its socket is the `socket` field
 * of @libp2p/tcp's MultiaddrConnection. A connection whose socket cannot be found is upgraded
 * untouched.
 */

export interface SocketBatchingInit {
  /** Corked bytes that are flushed at once rather than at the end of the turn. */
  flushBytes?: number
}

/** Node's writable high-water mark: a write this large is bulk data, which gains nothing by waiting. */
export const FLUSH_BYTES = 16 * 1024

export function withSocketBatching<Components> (factory: (components: Components) => Transport, init: SocketBatchingInit = {}): (components: Components) => Transport {
  const flushBytes = init.flushBytes ?? FLUSH_BYTES
  return (components) => {
    const inner = factory(components)
    // The wrapper inherits everything else (filters, symbols, a start/stop if any) from the transport.
    const wrapped = Object.create(inner) as Transport
    wrapped.dial = async (ma, options: DialTransportOptions) => await inner.dial(ma, { ...options, upgrader: tuningUpgrader(options.upgrader, flushBytes) })
    wrapped.createListener = (options: CreateListenerOptions) => inner.createListener({ ...options, upgrader: tuningUpgrader(options.upgrader, flushBytes) })
    return wrapped
  }
}

function tuningUpgrader (upgrader: Upgrader, flushBytes: number): Upgrader {
  const tuned = Object.create(upgrader) as Upgrader
  tuned.upgradeInbound = async (maConn, options) => {
    batchSocketOf(maConn, flushBytes)
    await upgrader.upgradeInbound(maConn, options)
  }
  tuned.upgradeOutbound = async (maConn, options) => {
    batchSocketOf(maConn, flushBytes)
    return await upgrader.upgradeOutbound(maConn, options)
  }
  return tuned
}

function batchSocketOf (maConn: MultiaddrConnection, flushBytes: number): void {
  const socket = (maConn as { socket?: unknown }).socket
  if (socket instanceof Socket) batchWrites(socket, flushBytes)
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
