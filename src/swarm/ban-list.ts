import { addressPrefix } from './peer-score.js'
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Peers that sent a chunk or manifest failing verification, refused until their ban ends.
 * The gater is handed to libp2p, so a banned peer cannot reconnect in either direction.
 */

export interface Ban {
  peer: string
  reason: string
  until: number
}

/** Prefix bans kept at most; the oldest goes first (a flood of offenders cannot grow it). */
const MAX_PREFIX_BANS = 1024

export class BanList {
  private readonly bans = new Map<string, Ban>()
  /** Address prefixes (peer-score.ts addressPrefix) refused before any handshake. */
  private readonly prefixes = new Map<string, Ban>()

  constructor (private readonly now: () => number = Date.now) {}

  ban (peer: string, durationMs: number, reason: string): Ban {
    const ban = { peer, reason, until: this.now() + durationMs }
    this.bans.set(peer, ban)
    return ban
  }

  isBanned (peer: string): boolean {
    const ban = this.bans.get(peer)
    if (ban === undefined) return false
    if (ban.until > this.now()) return true
    this.bans.delete(peer)
    return false
  }

  /** Refuses every address in `prefix` (repeat offenders re-key; their network stays). */
  banPrefix (prefix: string, durationMs: number, reason: string): Ban {
    const ban = { peer: prefix, reason, until: this.now() + durationMs }
    if (this.prefixes.size >= MAX_PREFIX_BANS) {
      const oldest = this.prefixes.keys().next().value
      if (oldest !== undefined) this.prefixes.delete(oldest)
    }
    this.prefixes.set(prefix, ban)
    return ban
  }

  isAddressBanned (address: string): boolean {
    const prefix = addressPrefix(address)
    if (prefix === undefined) return false
    const ban = this.prefixes.get(prefix)
    if (ban === undefined) return false
    if (ban.until > this.now()) return true
    this.prefixes.delete(prefix)
    return false
  }

  /** Bans in force now. */
  list (): Ban[] {
    return [...this.bans.values()].filter(ban => this.isBanned(ban.peer))
  }

  gater (): ConnectionGater {
    const denied = (peerId: PeerId): boolean => this.isBanned(peerId.toString())
    const deniedAddress = (address: Multiaddr): boolean => this.isAddressBanned(address.toString())
    return {
      // Before the upgrade: a banned network costs us one accept, no handshake.
      denyInboundConnection: (connection) => deniedAddress(connection.remoteAddr),
      denyDialMultiaddr: deniedAddress,
      denyDialPeer: denied,
      denyInboundEncryptedConnection: denied,
      denyOutboundEncryptedConnection: denied,
      denyInboundUpgradedConnection: denied,
      denyOutboundUpgradedConnection: denied,
    }
  }
}
