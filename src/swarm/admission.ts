import { MAX_NEW_IDENTITIES_PER_IP, NEW_IDENTITY_INTERVAL_MS } from './constants.js'
import { ipOf } from './peer-score.js'
import type { BanList } from './ban-list.js'
import type { Connection, ConnectionGater, MultiaddrConnection } from '@libp2p/interface'
import { RecentMap } from '../recent/index.js'

/**
 * Who may start a connection, decided before any handshake work: a banned network is
 * refused outright, and one address may hold only a few connections half-open (accepted, not
 * yet upgraded) and a bounded share of the established ones. Without this, 11 silent sockets
 * from one host filled libp2p's 10 pending-upgrade slots and no new peer could join, with or
 * without the swarm key. Outbound dials are not limited here: a node keeps reaching the peers
 * it knows while strangers flood it. After the handshake (the first point a peer ID is known)
 * an IP may bring only so many new identities: a key costs an attacker nothing, so without
 * this a banned peer came straight back as another.
 */

export interface AdmissionInit {
  /** Half-open inbound connections from one IP. */
  maxPendingPerIp: number
  /** Established connections from one IP (NATed sites put many daemons behind one). */
  maxConnectionsPerIp: number
  /** New identities one IP may bring at once (default MAX_NEW_IDENTITIES_PER_IP)… */
  maxNewIdentitiesPerIp?: number
  /** …and then one per this long (default NEW_IDENTITY_INTERVAL_MS). */
  newIdentityIntervalMs?: number
  now?: () => number
}

/** IPs whose identities are remembered; beyond this the oldest is forgotten. */
const MAX_TRACKED_IPS = 4096
/** Identities remembered per IP (as many as it may connect with, and some churn). */
const MAX_IDENTITIES_PER_TRACKED_IP = 256
/** An identity seen from an IP within this long comes back free (a restarted daemon). */
const IDENTITY_MEMORY_MS = 60 * 60_000

interface IpIdentities {
  /** peer → last seen from this IP. */
  seen: RecentMap<string, number>
  /** New identities this IP may still bring now, and when that was computed. */
  tokens: number
  at: number
}

export class ConnectionAdmission {
  /** IP → inbound connections accepted and not yet upgraded or closed. */
  private readonly pending = new Map<string, number>()
  /** Inbound connections counted in `pending`, and their IP. */
  private readonly counted = new WeakMap<MultiaddrConnection, string>()

  private readonly identities = new RecentMap<string, IpIdentities>(MAX_TRACKED_IPS)
  /** New identities refused so far (tests, and what a flood was denied). */
  refusedIdentities = 0

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
      denyInboundEncryptedConnection: (peerId, maConn) => {
        if (banned.denyInboundEncryptedConnection?.(peerId, maConn) === true) return true
        if (this.denyIdentity(peerId.toString(), maConn)) {
          this.settle(maConn)
          return true
        }
        return false
      },
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

  /** Whether `peer` is a new identity from an IP that brought its share of them. */
  private denyIdentity (peer: string, maConn: MultiaddrConnection): boolean {
    const ip = ipOf(maConn.remoteAddr.toString())
    if (ip === undefined) return false
    const now = (this.init.now ?? Date.now)()
    let state = this.identities.get(ip)
    if (state === undefined) {
      state = { seen: new RecentMap(MAX_IDENTITIES_PER_TRACKED_IP), tokens: this.init.maxNewIdentitiesPerIp ?? MAX_NEW_IDENTITIES_PER_IP, at: now }
      this.identities.set(ip, state)
    }
    const lastSeen = state.seen.get(peer)
    const connected = this.connections().some(c => c.remotePeer.toString() === peer)
    if (connected || (lastSeen !== undefined && now - lastSeen < IDENTITY_MEMORY_MS)) {
      state.seen.set(peer, now)
      return false
    }
    const burst = this.init.maxNewIdentitiesPerIp ?? MAX_NEW_IDENTITIES_PER_IP
    state.tokens = Math.min(burst, state.tokens + (now - state.at) / (this.init.newIdentityIntervalMs ?? NEW_IDENTITY_INTERVAL_MS))
    state.at = now
    if (state.tokens < 1) {
      this.refusedIdentities++
      return true
    }
    state.tokens--
    state.seen.set(peer, now)
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
