import { isPeerId, type AbortOptions, type Connection, type DialTarget, type PeerId, type Startable } from '@libp2p/interface'
import { AdaptiveTimeout } from '@libp2p/utils'
import type { Ping, PingComponents } from '@libp2p/ping'
import { raceAbort } from '../wait/index.js'
import { SwarmError } from './errors.js'

/**
 * Every connection's liveness through its muxer's own ping frame: libp2p's connection monitor
 * with the stream taken out.
 *
 * libp2p's monitor pings each connection from both ends every interval, each ping a new stream:
 * a yamux SYN, multistream-select's two round trips, 32 bytes each way, both ends' FIN, a
 * peer-store write of the protocol at both ends and a logger. On the 16-host fleet bed that
 * was the largest count of streams an edge opened (73 and accepted 73 in a 70 s run, with
 * kad-dht's pings of new contacts). yamux has a ping frame of its own (12 bytes, answered by
 * the muxer, no stream), and pinged every connection every 30 s beside the monitor, but it
 * never closes a connection whose answer does not come. This pings through that frame on the
 * monitor's rule: every `intervalMs`, each open connection, with a timeout that adapts to the
 * replies seen (libp2p's AdaptiveTimeout, between `minTimeoutMs` and `maxTimeoutMs`); a
 * connection whose answer does not come in time is aborted, so a host that vanished (no RST,
 * a cable pulled) is noticed as before. yamux's own keep-alive is turned off beside this
 * (libp2p-node.ts): it would ping as often again.
 *
 * A connection whose muxer has no ping (not yamux) is pinged with a stream, as libp2p did.
 */

export interface MuxerPingsInit {
  intervalMs: number
  minTimeoutMs: number
  maxTimeoutMs: number
}

export interface MuxerPingsComponents {
  connectionManager: { getConnections: (peerId?: PeerId) => Connection[] }
  ping: Ping
  logger: { forComponent: (name: string) => { error: (format: string, ...args: unknown[]) => void } }
}

/** A connection's ping answer did not come within its timeout: the connection is aborted. */
export class ConnectionPingTimeoutError extends SwarmError {
  constructor (timeoutMs: number, options?: ErrorOptions) {
    super('SWARM_CONNECTION_PING_TIMEOUT', `the peer did not answer a ping within ${timeoutMs} ms; the connection was closed (it is dialled again when the peer is found)`, options)
    this.name = 'ConnectionPingTimeoutError'
  }
}

/** What this relies on of @chainsafe/libp2p-yamux's muxer (8.x `YamuxMuxer.ping`), reached through libp2p's Connection. */
interface MuxerWithPing { ping: (options?: AbortOptions) => Promise<number> }

/**
 * The muxer's ping of an open connection, or undefined where its muxer has none.
 *
 * The caller's signal is raced here, never handed to yamux: yamux forgets a ping whose signal
 * aborted, and when its answer comes after all (late, on a busy link) it throws "ping not
 * requested" (or "ping doesn't match our id" if another ping was sent meanwhile) from the
 * connection's data handler, which aborts the connection. kad-dht's short ping timeouts on a
 * loaded machine killed healthy connections that way. Left to run, yamux's ping waits for its
 * answer, and pings asked meanwhile share it.
 */
export function muxerPingOf (connection: Connection): MuxerWithPing['ping'] | undefined {
  const muxer = (connection as unknown as { muxer?: Partial<MuxerWithPing> }).muxer
  if (muxer === undefined || typeof muxer.ping !== 'function') return undefined
  const ping = muxer.ping
  return async (options) => {
    const answer = ping.call(muxer)
    return options?.signal === undefined ? await answer : await raceAbort(answer, options.signal)
  }
}

export class MuxerPings implements Startable {
  readonly [Symbol.toStringTag] = 'shoal:muxer-pings'
  private timer: NodeJS.Timeout | undefined
  private controller = new AbortController()
  private readonly timeout: AdaptiveTimeout
  private readonly log: { error: (format: string, ...args: unknown[]) => void }

  constructor (private readonly components: MuxerPingsComponents, private readonly init: MuxerPingsInit) {
    this.timeout = new AdaptiveTimeout({ minTimeout: init.minTimeoutMs, maxTimeout: init.maxTimeoutMs })
    this.log = components.logger.forComponent('shoal:muxer-pings')
  }

  start (): void {
    this.controller = new AbortController()
    this.timer = setInterval(() => { this.pingAll() }, this.init.intervalMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== undefined) clearInterval(this.timer)
    this.timer = undefined
    this.controller.abort()
  }

  private pingAll (): void {
    for (const connection of this.components.connectionManager.getConnections()) {
      if (connection.status === 'open') void this.pingOne(connection)
    }
  }

  private async pingOne (connection: Connection): Promise<void> {
    const signal = this.timeout.getTimeoutSignal({ signal: this.controller.signal })
    try {
      const muxerPing = muxerPingOf(connection)
      const rtt = muxerPing === undefined
        ? await this.components.ping.ping(connection.remoteAddr, { signal })
        : await muxerPing({ signal })
      connection.rtt = rtt
    } catch (err) {
      if (this.controller.signal.aborted || connection.status !== 'open') return
      const error = new ConnectionPingTimeoutError(signal.timeout, { cause: err })
      this.log.error('aborting a connection whose ping failed - %e', error)
      connection.abort(error)
    } finally {
      this.timeout.cleanUp(signal)
    }
  }
}

export function muxerPings (init: MuxerPingsInit): (components: MuxerPingsComponents) => MuxerPings {
  return (components) => new MuxerPings(components, init)
}

/**
 * The ping service with its pings of a connected peer sent as the connection's muxer ping, no
 * stream. kad-dht pings every new contact before it enters the routing table (its `pingContact`,
 * through this service): at 16 hosts 15 streams out and 15 in per daemon for peers that are
 * connected and answering anyway. Pings of an address, or of a peer with no open connection,
 * go through the service as before, and so do the pings peers send us.
 */
export function withMuxerPing (factory: (components: PingComponents) => Ping): (components: PingComponents) => Ping {
  return (components) => {
    const service = factory(components)
    const viaStream = service.ping.bind(service)
    service.ping = async (peer: DialTarget, options?: AbortOptions): Promise<number> => {
      if (isPeerId(peer)) {
        const open = components.connectionManager.getConnections(peer).find(c => c.status === 'open')
        const muxerPing = open === undefined ? undefined : muxerPingOf(open)
        if (muxerPing !== undefined) return await muxerPing(options)
      }
      return await viaStream(peer, options)
    }
    return service
  }
}
