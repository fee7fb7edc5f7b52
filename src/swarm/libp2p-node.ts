import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { identify, type Identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping, type Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p'
import {
  CONNECTION_PING_INTERVAL_MS, CONNECTION_PING_MAX_TIMEOUT_MS, CONNECTION_PING_MIN_TIMEOUT_MS, DHT_PROTOCOL, DIAL_TIMEOUT_MS, INBOUND_UPGRADE_TIMEOUT_MS, MAX_NEIGHBOURS, MAX_PENDING_UPGRADES,
  ENCRYPTERS, MDNS_QUERY_INTERVAL_MS, MDNS_SERVICE_TAG, YAMUX_WINDOW_BYTES,
} from './constants.js'
import { skipKnownProtocolMerges } from './known-protocols.js'
import { libp2pLogger } from './libp2p-logger.js'
import { lazyEncrypter } from './lazy-encrypter.js'
import { muxerPings, withMuxerPing, type MuxerPings, type MuxerPingsInit } from './muxer-pings.js'
import { withoutDecryptCopies } from './noise-decrypt.js'
import { withFewerWindowUpdates } from './yamux-window-updates.js'
import { aesPreSharedKey } from './psk-protector.js'
import { dhtWithoutConnectedPeers, withoutConnectedPeers } from './quiet-discovery.js'
import { withSocketBatching } from './socket-batching.js'
import { checkSwarmKey, swarmKeyBytes } from './swarm-key.js'
import type { ConnectionGater, PrivateKey } from '@libp2p/interface'

/**
 * The libp2p node of a shoal daemon: TCP, noise (TLS 1.3 for peers offering only TLS; ENCRYPTERS), yamux,
 * identify, ping, a shoal-only kad-dht, mDNS and a bootstrap list, optionally closed with a
 * pre-shared key. Only this file knows how libp2p is assembled.
 */

export type ShoalServices = { identify: Identify, ping: Ping, dht: KadDHT, pings: MuxerPings }
export type ShoalNode = Libp2p<ShoalServices>

export interface NodeInit {
  privateKey: PrivateKey
  listen: string[]
  /** Addresses to advertise instead of the listening ones (NAT, containers). */
  announce?: string[]
  bootstrap: string[]
  mdns: boolean
  mdnsServiceTag?: string
  /** mDNS query interval; tests shorten it. */
  mdnsIntervalMs?: number
  swarmKey?: Uint8Array
  /**
   * How the swarm key encrypts connections: 'aes-256-ctr' (psk-protector.ts, the default) or
   * 'xsalsa20' (@libp2p/pnet, what go-libp2p speaks; four times slower here).
   */
  pnetCipher?: 'aes-256-ctr' | 'xsalsa20'
  gater: ConnectionGater
  yamuxWindowBytes?: number
  /** The connection encrypters offered, in order of preference (default ENCRYPTERS). */
  encrypters?: readonly Encrypter[]
  /** How often each connection is pinged and how long its answer may take (muxer-pings.ts); tests shorten them. */
  connectionPings?: Partial<MuxerPingsInit>
}

export type Encrypter = 'tls' | 'noise'

/** Each loaded on its first handshake (lazy-encrypter.ts): a connection uses one of them. */
const ENCRYPTER_FACTORIES = {
  tls: lazyEncrypter('/tls/1.0.0', async () => (await import('@libp2p/tls')).tls()),
  // Without noise's wasted copy of each message it receives (noise-decrypt.ts).
  noise: lazyEncrypter('/noise', async () => withoutDecryptCopies((await import('@chainsafe/libp2p-noise')).noise())),
} satisfies Record<Encrypter, unknown>

function protector (init: NodeInit): Libp2pOptions['connectionProtector'] {
  if (init.swarmKey === undefined) return undefined
  const key = checkSwarmKey(init.swarmKey)
  if (init.pnetCipher === 'xsalsa20') return preSharedKey({ psk: key })
  return aesPreSharedKey(swarmKeyBytes(key))
}

export async function createNode (init: NodeInit): Promise<ShoalNode> {
  const window = init.yamuxWindowBytes ?? YAMUX_WINDOW_BYTES
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  // Answers about neighbours already connected are dropped before libp2p merges them (quiet-discovery.ts).
  if (init.mdns) peerDiscovery.push(withoutConnectedPeers(mdns({ serviceTag: init.mdnsServiceTag ?? MDNS_SERVICE_TAG, interval: init.mdnsIntervalMs ?? MDNS_QUERY_INTERVAL_MS })))
  if (init.bootstrap.length > 0) peerDiscovery.push(bootstrap({ list: init.bootstrap }))
  const node = await createLibp2p({
    privateKey: init.privateKey,
    start: false,
    // One silent logger unless DEBUG asks for libp2p's (libp2p-logger.ts).
    logger: libp2pLogger(),
    addresses: { listen: init.listen, announce: init.announce },
    // Small writes of one event-loop turn leave in one system call, and a socket fed slowly is
    // read on a shared tick rather than per packet (socket-batching.ts).
    transports: [withSocketBatching(tcp())],
    connectionEncrypters: (init.encrypters ?? ENCRYPTERS).map(name => ENCRYPTER_FACTORIES[name]),
    // A stream credits its sender once it has taken 64 KiB, not after every small frame (yamux-window-updates.ts).
    streamMuxers: [withFewerWindowUpdates(yamux({
      // FACTS.md: yamux credits the sender as data arrives, so one stream is capped at
      // window / RTT; 16 MiB on both ends roughly doubled loopback throughput.
      streamOptions: {
        initialStreamWindowSize: window,
        maxStreamWindowSize: window,
        // Data beyond the read buffer resets the stream; it must hold a whole window.
        maxReadBufferLength: window * 2,
      },
      // Its keep-alive pings without a timeout; the pings service below pings through the same frame with one.
      enableKeepAlive: false,
    }))],
    connectionProtector: protector(init),
    connectionGater: init.gater,
    peerDiscovery,
    connectionManager: {
      maxConnections: MAX_NEIGHBOURS * 2,
      dialTimeout: DIAL_TIMEOUT_MS,
      // Edge sites put many daemons behind one address; the default (5/s per host) refuses them.
      inboundConnectionThreshold: 100,
      // Per-IP limits and bans are in the gater (admission.ts), before any handshake work.
      maxIncomingPendingConnections: MAX_PENDING_UPGRADES,
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS,
    },
    // Replaced by `pings`, which pings through the muxer's frame instead of a stream (muxer-pings.ts).
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      // kad-dht's pings of new contacts that are connected go as muxer pings too.
      ping: withMuxerPing(ping()),
      pings: muxerPings({
        intervalMs: init.connectionPings?.intervalMs ?? CONNECTION_PING_INTERVAL_MS,
        // FACTS.md: a ping waits behind the chunks queued on a busy link; libp2p's default 5 s
        // timeout dropped exactly the connections that were working hardest.
        minTimeoutMs: init.connectionPings?.minTimeoutMs ?? CONNECTION_PING_MIN_TIMEOUT_MS,
        maxTimeoutMs: init.connectionPings?.maxTimeoutMs ?? CONNECTION_PING_MAX_TIMEOUT_MS,
      }),
      // The peers its answers name are passed on only where not connected (quiet-discovery.ts).
      dht: dhtWithoutConnectedPeers(kadDHT({
        protocol: DHT_PROTOCOL,
        // Every shoal node answers queries: fleets are LANs, nobody has a "public" address.
        clientMode: false,
        // Keep private (LAN) addresses in records; the default strips them.
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true,
      })),
    },
  })
  // A stream's protocol is written into the peer store on both ends only when it is new (known-protocols.ts).
  skipKnownProtocolMerges(node)
  return node
}
