import { addressPrefix } from './peer-score.js'
import type { ConnectionGater, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { RecentMap } from '../recent/index.js'

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
/**
 * Peer bans kept at most, the oldest first: a flood of throwaway identities (285 in 30 s in
 * the adversary test) must not grow the list, or the file it is saved to, without end.
 */
const MAX_PEER_BANS = 16_384

/** What survives a restart (ban-file.ts): bans in force, peers and address prefixes. */
export interface BanSnapshot {
  peers: Ban[]
  prefixes: Ban[]
}

export class BanList {
  private readonly bans = new RecentMap<string, Ban>(MAX_PEER_BANS)
  /** Address prefixes (peer-score.ts addressPrefix) refused before any handshake. */
  private readonly prefixes = new RecentMap<string, Ban>(MAX_PREFIX_BANS)

  /** Called after every change, so the owner can save the list (ban-file.ts). */
  onChange: (() => void) | undefined

  constructor (private readonly now: () => number = Date.now) {}

  ban (peer: string, durationMs: number, reason: string): Ban {
    const ban = { peer, reason, until: this.now() + durationMs }
    this.bans.set(peer, ban)
    this.onChange?.()
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
    this.prefixes.set(prefix, ban)
    this.onChange?.()
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

  /** Peer and prefix bans in force now, to save. */
  snapshot (): BanSnapshot {
    const now = this.now()
    return {
      peers: [...this.bans.values()].filter(ban => ban.until > now),
      prefixes: [...this.prefixes.values()].filter(ban => ban.until > now),
    }
  }

  /** Takes back saved bans that have not ended (a restart must not pardon anyone). */
  restore (saved: BanSnapshot): void {
    const now = this.now()
    for (const ban of saved.peers) {
      if (ban.until > now && (this.bans.get(ban.peer)?.until ?? 0) < ban.until) this.bans.set(ban.peer, ban)
    }
    for (const ban of saved.prefixes) {
      if (ban.until > now && (this.prefixes.get(ban.peer)?.until ?? 0) < ban.until) this.prefixes.set(ban.peer, ban)
    }
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
