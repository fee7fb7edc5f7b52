import { join } from 'node:path'
import { AddressError, formatListenAddress, parseListenAddress, parseNetworks, type ListenAddress } from '../http/index.js'
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from './errors.js'
import { LabelError, detectPlatform, nodeLabels, platformLabels, type NodeLabels } from '../labels/index.js'
import { parseTrustedPublisher, statusLimits } from '../swarm/index.js'
import type { LogLevel } from './logger.js'
import { parseRate, parseSize } from './rates.js'

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

/** Where containerd finds the mirror unless told otherwise (and where it always did). */
export const DEFAULT_REGISTRY = '127.0.0.1:5050'
/** The control API's socket, in the data directory unless --api says otherwise. */
export const API_SOCKET_NAME = 'api.sock'
export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/4001'
/** Whether pulled chunks skip the page cache unless told otherwise (docs/architecture.md, "Chunk writes that skip the page cache"). */
export const DEFAULT_DIRECT_IO = true

/**
 * Flags win over the environment, which wins over the config file, which wins over
 * defaults. `api` is a socket path or `HOST:PORT` (as `--api` and `$SHOAL_API` are).
 */
export function resolveConfig (layers: { flags: RawSettings, env: RawSettings, file: RawSettings }, defaultDataDir: string, detected: NodeLabels = platformLabels(detectPlatform())): DaemonConfig {
  const pick = <K extends keyof DaemonConfig>(key: K): string | string[] | boolean | undefined => layers.flags[key] ?? layers.env[key] ?? layers.file[key]
  const text = (key: keyof DaemonConfig): string | undefined => { const v = pick(key); return typeof v === 'string' ? v : undefined }
  const list = (key: keyof DaemonConfig): string[] | undefined => { const v = pick(key); return Array.isArray(v) ? v : typeof v === 'string' ? [v] : undefined }
  const bool = (key: keyof DaemonConfig, fallback: boolean): boolean => { const v = pick(key); return typeof v === 'boolean' ? v : typeof v === 'string' ? v === 'true' : fallback }
  const dataDir = text('dataDir') ?? defaultDataDir
  const api = address(text('api') ?? join(dataDir, API_SOCKET_NAME), 'control API address (--api, SHOAL_API)')
  const registry = address(text('registry') ?? DEFAULT_REGISTRY, 'registry address (--registry, SHOAL_REGISTRY)')
  const metricsText = text('metrics')
  const metrics = metricsText === undefined ? undefined : address(metricsText, 'metrics address (--metrics, SHOAL_METRICS)')
  if (registry.kind !== 'tcp') throw new ConfigError(`the registry listens on TCP (containerd cannot use a socket); write --registry HOST:PORT, e.g. ${DEFAULT_REGISTRY}`)
  if (metrics !== undefined && metrics.kind !== 'tcp') throw new ConfigError('metrics listen on TCP so Prometheus can reach them; write --metrics HOST:PORT, e.g. 0.0.0.0:9090')
  const apiTokenFile = text('apiTokenFile')
  if (api.kind === 'tcp' && apiTokenFile === undefined) {
    throw new ConfigError(`the control API on TCP (${formatListenAddress(api)}) needs a bearer token: write one to a file (e.g. \`head -c 32 /dev/urandom | base64 > token\`) and give --api-token-file FILE (SHOAL_API_TOKEN_FILE), or leave --api out for the Unix socket`)
  }
  const pushNetworks = list('pushNetworks') ?? []
  try {
    parseNetworks(pushNetworks)
  } catch (err) {
    throw new ConfigError(`--push-network (SHOAL_PUSH_NETWORK): ${(err as Error).message}`, { cause: err })
  }
  const level = text('logLevel') ?? 'info'
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new ConfigError(`log level ${JSON.stringify(level)} is not one of debug, info, warn, error`)
  const config: DaemonConfig = {
    dataDir,
    api,
    registry,
    allowedHosts: list('allowedHosts') ?? [],
    pushNetworks,
    listen: list('listen') ?? [DEFAULT_LISTEN],
    bootstrap: checkBootstrap(list('bootstrap') ?? []),
    mdns: bool('mdns', true),
    gateway: bool('gateway', false),
    labels: labelsOf(list('labels') ?? [], detected),
    trust: checkTrust(list('trust') ?? []),
    allowPush: bool('allowPush', false),
    directIo: bool('directIo', DEFAULT_DIRECT_IO),
    logLevel: level as LogLevel,
  }
  const upload = text('maxUploadBytesPerSecond')
  const download = text('maxDownloadBytesPerSecond')
  const quota = text('quotaBytes')
  if (upload !== undefined) config.maxUploadBytesPerSecond = parseRate(upload)
  if (download !== undefined) config.maxDownloadBytesPerSecond = parseRate(download)
  if (quota !== undefined) config.quotaBytes = parseSize(quota)
  if (metrics !== undefined) config.metrics = metrics
  const lanePort = text('lanePort')
  if (lanePort !== undefined) config.lanePort = parseLanePort(lanePort)
  const laneMinRate = text('laneMinRateBytesPerSecond')
  if (laneMinRate !== undefined) config.laneMinRateBytesPerSecond = parseLaneMinRate(laneMinRate)
  const statusInterval = text('statusIntervalMs')
  if (statusInterval !== undefined) config.statusIntervalMs = parseInterval(statusInterval)
  if (apiTokenFile !== undefined) config.apiTokenFile = apiTokenFile
  const swarmKeyFile = text('swarmKeyFile')
  const upstream = text('upstream')
  if (swarmKeyFile !== undefined) config.swarmKeyFile = swarmKeyFile
  if (upstream !== undefined) config.upstream = upstream
  const upstreamUser = text('upstreamUser')
  const upstreamPassword = text('upstreamPassword')
  if ((upstreamUser === undefined) !== (upstreamPassword === undefined)) throw new ConfigError('upstream credentials need both a user and a password (SHOAL_UPSTREAM_USER and SHOAL_UPSTREAM_PASSWORD)')
  if (upstreamUser !== undefined) config.upstreamUser = upstreamUser
  if (upstreamPassword !== undefined) config.upstreamPassword = upstreamPassword
  return config
}

/** `off` or a TCP port (0: any free one). */
function parseLanePort (text: string): number | false {
  if (text.trim().toLowerCase() === 'off') return false
  const port = Number(text)
  if (!/^\s*\d+\s*$/.test(text) || port > 65_535) throw new ConfigError(`--lane-port (SHOAL_LANE_PORT) ${JSON.stringify(text)} must be a TCP port (0 for any free one) or off`)
  return port
}

/** `never` (Infinity) or a rate, 0 to ask for a lane at once. */
function parseLaneMinRate (text: string): number {
  if (text.trim().toLowerCase() === 'never') return Infinity
  try {
    return parseRate(text)
  } catch (err) {
    throw new ConfigError(`--lane-min-rate (SHOAL_LANE_MIN_RATE) ${JSON.stringify(text)} must be a rate (e.g. 25MB/s, 0 to ask at once) or never`, { cause: err })
  }
}

const INTERVAL_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * `500ms`, `30s`, `5m`, `1h` → milliseconds; a plain number is seconds. Within the bounds the
 * swarm enforces on the wire, so a person is told at start rather than the setting being clamped.
 */
function parseInterval (text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  const ms = match === null ? NaN : Number(match[1]) * (INTERVAL_UNITS[match[2] ?? 's'] ?? NaN)
  if (!Number.isFinite(ms) || ms < statusLimits.MIN_STATUS_INTERVAL_MS || ms > statusLimits.MAX_STATUS_INTERVAL_MS) {
    throw new ConfigError(`--status-interval (SHOAL_STATUS_INTERVAL) ${JSON.stringify(text)} must be a duration between 200ms and 6h, such as 30s or 5m`)
  }
  return Math.round(ms)
}

/**
 * A bootstrap address must name its peer (`…/p2p/<peer id>`): without one libp2p dials
 * nothing and the node sits alone with no error, and the swarm trusts its bootstrap
 * peers' tags by that ID.
 */
function checkBootstrap (addresses: string[]): string[] {
  for (const address of addresses) {
    let parsed
    try {
      parsed = multiaddr(address)
    } catch (err) {
      throw new ConfigError(`bootstrap address ${JSON.stringify(address)} is not a multiaddr (${(err as Error).message}); write e.g. /ip4/10.0.0.1/tcp/4001/p2p/12D3KooW…`, { cause: err })
    }
    if (parsed.getComponents().find(c => c.name === 'p2p') === undefined) {
      throw new ConfigError(`bootstrap address ${JSON.stringify(address)} has no /p2p/PEERID; write it with the peer's ID, e.g. ${address.replace(/\/$/, '')}/p2p/12D3KooW… (the gateway prints its full addresses at start, and \`shoal status\` shows them)`)
    }
  }
  return addresses
}

/** A --trust value is a publisher's peer ID (an edge's gateway's): refused at start, saying where to find one. */
function checkTrust (ids: string[]): string[] {
  for (const id of ids) {
    try {
      parseTrustedPublisher(id)
    } catch (err) {
      throw new ConfigError(`--trust (SHOAL_TRUST) ${JSON.stringify(id)} is not a peer ID; write the publisher's (the gateway's), 12D3KooW…: its daemon prints it at start (peerId) and \`shoal status\` on it shows it`, { cause: err })
    }
  }
  return ids
}

/** The labels a daemon runs with: its config's, or the detected platform's when none were resolved. */
export function daemonLabels (config: Pick<DaemonConfig, 'labels'>): NodeLabels {
  return config.labels ?? platformLabels(detectPlatform())
}

function labelsOf (given: string[], detected: NodeLabels): NodeLabels {
  try {
    return nodeLabels(given, detected)
  } catch (err) {
    if (err instanceof LabelError) throw new ConfigError(`--label (SHOAL_LABEL): ${err.message}`, { cause: err })
    throw err
  }
}

function address (value: string, what: string): ListenAddress {
  try {
    return parseListenAddress(value, what)
  } catch (err) {
    if (err instanceof AddressError) throw new ConfigError(err.message, { cause: err })
    throw err
  }
}

export function defaultConfigPath (dataDir: string): string {
  return join(dataDir, 'config.json')
}
