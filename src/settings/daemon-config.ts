import type { ListenAddress } from '../http/index.js'
import type { NodeLabels } from '../labels/index.js'

// What a daemon runs with, apart from how it is read: settings.ts (the schema) names these
// fields and the daemon's config.ts (the resolver) fills them.

/** The log levels, quietest last; `--log-level` takes one. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export interface DaemonConfig {
  dataDir: string
  /** The control API (the CLI's): a Unix socket by default, TCP only with `apiTokenFile`. */
  api: ListenAddress
  /** A file holding the bearer token the control API over TCP and registry pushes take. */
  apiTokenFile?: string
  /** The registry mirror (read-only OCI API unless `allowPush`), what containerd is pointed at. */
  registry: ListenAddress
  /** `/metrics` and the status page on their own address; without it the registry listener serves them. */
  metrics?: ListenAddress
  /** Host names requests may be addressed to besides IP literals and `localhost` (DNS-rebinding check). */
  allowedHosts: string[]
  /** CIDRs whose clients may push to the registry without the token (default: loopback, unless a token is set). */
  pushNetworks: string[]
  listen: string[]
  /** The data lane's port (SwarmInit.lanePort): a number, false for none; the swarm's default (libp2p's port + 1) when absent. */
  lanePort?: number | false
  /** SwarmInit.laneMinRateBytesPerSecond: Infinity never asks; the swarm's default when absent. */
  laneMinRateBytesPerSecond?: number
  bootstrap: string[]
  mdns: boolean
  gateway: boolean
  maxUploadBytesPerSecond?: number
  maxDownloadBytesPerSecond?: number
  swarmKeyFile?: string
  /**
   * What this node is, for preheat selectors and the fleet view: the detected `os`, `arch`
   * (OCI names) and `variant`, under the operator's `--label KEY=VALUE`s. resolveConfig always
   * sets it; a config built in code without it gets the detected ones (daemonLabels).
   */
  labels?: NodeLabels
  /** The fleet view's heartbeat in a small fleet (`--status-interval`); the swarm's default when absent. */
  statusIntervalMs?: number
  /** Publisher public keys whose ref records this node accepts. */
  trust: string[]
  /** Origin registry for pull-through: `https://registry-1.docker.io`. */
  upstream?: string
  /** Basic credentials for the upstream's token service; best given as SHOAL_UPSTREAM_USER/SHOAL_UPSTREAM_PASSWORD. */
  upstreamUser?: string
  upstreamPassword?: string
  allowPush: boolean
  quotaBytes?: number
  /** Pulled chunks written with O_DIRECT, past the page cache (`--direct-io`); DEFAULT_DIRECT_IO when absent. */
  directIo?: boolean
  logLevel: LogLevel
}

/** Every setting as text, the common form of flags, environment and config file. */
export type RawSettings = Partial<Record<keyof DaemonConfig, string | string[] | boolean>>
