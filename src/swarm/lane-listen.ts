import type { LaneListen } from './lanes.js'

/**
 * Where the data lane listens, from libp2p's listen multiaddrs: the first TCP one's host, and
 * `port` if given, else that port + 1 when it is fixed (the shipped 4001 → 4002, which the
 * deploy files declare beside it), else any free port (a test's or a bed's `/tcp/0`; the
 * offer names the port). No TCP address (memory transports in tests): no lane.
 */
export function laneListenOf (listen: readonly string[], port?: number): LaneListen | undefined {
  for (const address of listen) {
    const match = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)(\/|$)/.exec(address)
    if (match === null) continue
    const host = match[2] as string
    const libp2pPort = Number(match[3])
    return { host, port: port ?? (libp2pPort === 0 || libp2pPort >= 65_535 ? 0 : libp2pPort + 1) }
  }
  return undefined
}
