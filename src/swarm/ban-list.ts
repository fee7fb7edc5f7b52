import type { ConnectionGater, PeerId } from '@libp2p/interface'

/**
 * Peers that sent a chunk or manifest failing verification, refused until their ban ends.
 * The gater is handed to libp2p, so a banned peer cannot reconnect in either direction.
 */

export interface Ban {
  peer: string
  reason: string
  until: number
}

export class BanList {
  private readonly bans = new Map<string, Ban>()

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

  /** Bans in force now. */
  list (): Ban[] {
    return [...this.bans.values()].filter(ban => this.isBanned(ban.peer))
  }

  gater (): ConnectionGater {
    const denied = (peerId: PeerId): boolean => this.isBanned(peerId.toString())
    return {
      denyDialPeer: denied,
      denyInboundEncryptedConnection: denied,
      denyOutboundEncryptedConnection: denied,
      denyInboundUpgradedConnection: denied,
      denyOutboundUpgradedConnection: denied,
    }
  }
}
