import { ipOf } from './peer-score.js'
import type { BanList } from './ban-list.js'
import type { Connection, ConnectionGater, MultiaddrConnection } from '@libp2p/interface'

/**
 * Who may start a connection, decided before any handshake work: a banned network is
 * refused outright, and one address may hold only a few connections half-open (accepted, not
 * yet upgraded) and a bounded share of the established ones. Without this, 11 silent sockets
 * from one host filled libp2p's 10 pending-upgrade slots and no new peer could join, with or
 * without the swarm key. Outbound dials are not limited here: a node keeps reaching the peers
 * it knows while strangers flood it.
 */

export interface AdmissionInit {
  /** Half-open inbound connections from one IP. */
  maxPendingPerIp: number
  /** Established connections from one IP (NATed sites put many daemons behind one). */
  maxConnectionsPerIp: number
}

export class ConnectionAdmission {
  /** IP → inbound connections accepted and not yet upgraded or closed. */
  private readonly pending = new Map<string, number>()
  /** Inbound connections counted in `pending`, and their IP. */
  private readonly counted = new WeakMap<MultiaddrConnection, string>()

  constructor (
    private readonly bans: BanList,
    private readonly connections: () => Connection[],
    private readonly init: AdmissionInit,
  ) {}

  /** Half-open inbound connections from `ip` now (for tests and the status page). */
  pendingFrom (ip: string): number {
    return this.pending.get(ip) ?? 0
  }

  gater (): ConnectionGater {
    const banned = this.bans.gater()
    return {
      ...banned,
      denyInboundConnection: (maConn) => this.deny(maConn),
      denyInboundUpgradedConnection: (peerId, maConn) => {
        this.settle(maConn)
        return banned.denyInboundUpgradedConnection?.(peerId, maConn) ?? false
      },
    }
  }

  private deny (maConn: MultiaddrConnection): boolean {
    const address = maConn.remoteAddr.toString()
    if (this.bans.isAddressBanned(address)) return true
    const ip = ipOf(address)
    if (ip === undefined) return false
    if ((this.pending.get(ip) ?? 0) >= this.init.maxPendingPerIp) return true
    let established = 0
    for (const connection of this.connections()) {
      if (ipOf(connection.remoteAddr.toString()) === ip) established++
    }
    if (established >= this.init.maxConnectionsPerIp) return true
    this.pending.set(ip, (this.pending.get(ip) ?? 0) + 1)
    this.counted.set(maConn, ip)
    // A socket that closes before its upgrade (a timeout, a reset) gives its slot back.
    maConn.addEventListener('close', () => { this.settle(maConn) }, { once: true })
    return false
  }

  private settle (maConn: MultiaddrConnection): void {
    const ip = this.counted.get(maConn)
    if (ip === undefined) return
    this.counted.delete(maConn)
    const left = (this.pending.get(ip) ?? 1) - 1
    if (left <= 0) this.pending.delete(ip)
    else this.pending.set(ip, left)
  }
}
