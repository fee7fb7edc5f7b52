import { join } from 'node:path'
import { AddressError, formatListenAddress, parseListenAddress, parseNetworks, type AddressForms, type ListenAddress } from '../http/index.js'
import { multiaddr } from '@multiformats/multiaddr'
import { LabelError, detectPlatform, nodeLabels, platformLabels, type NodeLabels } from '../labels/index.js'
import { parseTrustedPublisher, statusLimits } from '../swarm/index.js'
import { parseRate, parseSize } from './rates.js'
import { API_SOCKET_NAME, ConfigError, envOf, flagOf, LOG_LEVELS, settingLabel, settingOf, type DaemonConfig, type LogLevel, type RawSettings } from '../settings/index.js'

/** Where containerd finds the mirror unless told otherwise (and where it always did). */
export const DEFAULT_REGISTRY = defaultOf('registry')
export const DEFAULT_LISTEN = defaultOf('listen')
/** Whether pulled chunks skip the page cache unless told otherwise (docs/architecture.md, "Chunk writes that skip the page cache"). */
export const DEFAULT_DIRECT_IO = defaultOf('directIo') === 'true'

/** A setting's default as SETTINGS gives it; a field without one is a mistake in this file. */
function defaultOf (field: keyof DaemonConfig): string {
  const value = settingOf(field).default
  if (value === undefined) throw new Error(`setting ${settingOf(field).name} has no default`)
  return value
}

/** A setting's flag and variable, for messages that show them apart (`--api-token-file FILE (SHOAL_API_TOKEN_FILE)`); settingLabel gives both. */
const flag = (field: keyof DaemonConfig): string => flagOf(settingOf(field))
const variable = (field: keyof DaemonConfig): string => envOf(settingOf(field))

/**
 * Flags win over the environment, which wins over the config file, which wins over
 * defaults (SETTINGS'). `api` is a socket path or `HOST:PORT` (as `--api` and `$SHOAL_API` are).
 */
export function resolveConfig (layers: { flags: RawSettings, env: RawSettings, file: RawSettings }, defaultDataDir: string, detected: NodeLabels = platformLabels(detectPlatform())): DaemonConfig {
  const pick = (field: keyof DaemonConfig): string | string[] | boolean | undefined => layers.flags[field] ?? layers.env[field] ?? layers.file[field] ?? settingOf(field).default
  const text = (field: keyof DaemonConfig): string | undefined => { const v = pick(field); return typeof v === 'string' ? v : undefined }
  const list = (field: keyof DaemonConfig): string[] => { const v = pick(field); return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [] }
  const bool = (field: keyof DaemonConfig): boolean => { const v = pick(field); return v === true || v === 'true' }
  /** A setting read by `parse`; undefined when nothing gives it (the daemon or the swarm then decides). */
  const parsed = <T>(field: keyof DaemonConfig, parse: (text: string, field: keyof DaemonConfig) => T): T | undefined => { const v = text(field); return v === undefined ? undefined : parse(v, field) }

  const dataDir = text('dataDir') ?? defaultDataDir
  const api = address(text('api') ?? join(dataDir, API_SOCKET_NAME), 'control API address', 'api')
  const registry = address(text('registry') ?? DEFAULT_REGISTRY, 'registry address', 'registry', { tcpOnly: true, example: DEFAULT_REGISTRY })
  const metrics = parsed('metrics', text => address(text, 'metrics address', 'metrics', { tcpOnly: true, example: '0.0.0.0:9090' }))
  if (registry.kind !== 'tcp') throw new ConfigError(`the registry listens on TCP (containerd cannot use a socket); write ${flag('registry')} HOST:PORT or ${variable('registry')}=HOST:PORT, e.g. ${DEFAULT_REGISTRY}`)
  if (metrics !== undefined && metrics.kind !== 'tcp') throw new ConfigError(`metrics listen on TCP so Prometheus can reach them; write ${flag('metrics')} HOST:PORT or ${variable('metrics')}=HOST:PORT, e.g. 0.0.0.0:9090`)
  const apiTokenFile = text('apiTokenFile')
  if (api.kind === 'tcp' && apiTokenFile === undefined) {
    throw new ConfigError(`the control API on TCP (${formatListenAddress(api)}) needs a bearer token: write one to a file (e.g. \`head -c 32 /dev/urandom | base64 > token\`) and give ${flag('apiTokenFile')} FILE (${variable('apiTokenFile')}), or leave ${flag('api')} out for the Unix socket`)
  }
  const pushNetworks = list('pushNetworks')
  ofSetting('pushNetworks', () => parseNetworks(pushNetworks))
  const upstreamUser = text('upstreamUser')
  const upstreamPassword = text('upstreamPassword')
  if ((upstreamUser === undefined) !== (upstreamPassword === undefined)) throw new ConfigError(`upstream credentials need both a user and a password (${settingLabel('upstreamUser')} and ${settingLabel('upstreamPassword')})`)
  return {
    dataDir,
    api,
    apiTokenFile,
    registry,
    metrics,
    allowedHosts: list('allowedHosts'),
    pushNetworks,
    listen: ofSetting('listen', () => checkListen(list('listen'))),
    lanePort: parsed('lanePort', parseLanePort),
    laneMinRateBytesPerSecond: parsed('laneMinRateBytesPerSecond', parseLaneMinRate),
    bootstrap: ofSetting('bootstrap', () => checkBootstrap(list('bootstrap'))),
    mdns: bool('mdns'),
    gateway: bool('gateway'),
    maxUploadBytesPerSecond: parsed('maxUploadBytesPerSecond', (text, field) => ofSetting(field, () => parseRate(text))),
    maxDownloadBytesPerSecond: parsed('maxDownloadBytesPerSecond', (text, field) => ofSetting(field, () => parseRate(text))),
    swarmKeyFile: text('swarmKeyFile'),
    labels: ofSetting('labels', () => nodeLabels(list('labels'), detected)),
    statusIntervalMs: parsed('statusIntervalMs', parseInterval),
    trust: checkTrust(list('trust')),
    upstream: text('upstream'),
    upstreamUser,
    upstreamPassword,
    allowPush: bool('allowPush'),
    quotaBytes: parsed('quotaBytes', (text, field) => ofSetting(field, () => parseSize(text))),
    directIo: bool('directIo'),
    logLevel: ofSetting('logLevel', () => parseLevel(text('logLevel') ?? 'info')),
  }
}

function parseLevel (text: string): LogLevel {
  const level = LOG_LEVELS.find(l => l === text)
  if (level === undefined) throw new ConfigError(`log level ${JSON.stringify(text)} is not one of ${LOG_LEVELS.join(', ')}`)
  return level
}

/** `off` or a TCP port (0: any free one). */
function parseLanePort (text: string, field: keyof DaemonConfig): number | false {
  if (text.trim().toLowerCase() === 'off') return false
  const port = Number(text)
  if (!/^\s*\d+\s*$/.test(text) || port > 65_535) throw new ConfigError(`${settingLabel(field)} ${JSON.stringify(text)} must be a TCP port (0 for any free one) or off`)
  return port
}

/** `never` (Infinity) or a rate, 0 to ask for a lane at once. */
function parseLaneMinRate (text: string, field: keyof DaemonConfig): number {
  if (text.trim().toLowerCase() === 'never') return Infinity
  try {
    return parseRate(text)
  } catch (err) {
    throw new ConfigError(`${settingLabel(field)} ${JSON.stringify(text)} must be a rate (e.g. 25MB/s, 0 to ask at once) or never`, { cause: err })
  }
}

const INTERVAL_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * `500ms`, `30s`, `5m`, `1h` → milliseconds; a plain number is seconds. Within the bounds the
 * swarm enforces on the wire, so a person is told at start rather than the setting being clamped.
 */
function parseInterval (text: string, field: keyof DaemonConfig): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text)
  const ms = match === null ? NaN : Number(match[1]) * (INTERVAL_UNITS[match[2] ?? 's'] ?? NaN)
  if (!Number.isFinite(ms) || ms < statusLimits.MIN_STATUS_INTERVAL_MS || ms > statusLimits.MAX_STATUS_INTERVAL_MS) {
    throw new ConfigError(`${settingLabel(field)} ${JSON.stringify(text)} must be a duration between ${formatInterval(statusLimits.MIN_STATUS_INTERVAL_MS)} and ${formatInterval(statusLimits.MAX_STATUS_INTERVAL_MS)}, such as 30s or 5m`)
  }
  return Math.round(ms)
}

/** Milliseconds in the largest unit that holds them whole: 200 → `200ms`, 21 600 000 → `6h`. */
function formatInterval (ms: number): string {
  const [unit, size] = Object.entries(INTERVAL_UNITS).reverse().find(([, size]) => ms % size === 0) ?? ['ms', 1]
  return `${ms / size}${unit}`
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

/**
 * libp2p's listen addresses: multiaddrs over TCP, the one transport the swarm has. Checked
 * here because libp2p's own refusals (`String multiaddr must start with "/"`, "No transport
 * was configured", `transportManager.faultTolerance`) came out as INTERNAL with no setting named.
 */
function checkListen (addresses: string[]): string[] {
  const example = `write e.g. ${DEFAULT_LISTEN} (every interface) or /ip4/10.0.0.5/tcp/4001`
  for (const address of addresses) {
    let parsed
    try {
      parsed = multiaddr(address)
    } catch (err) {
      throw new ConfigError(`listen address ${JSON.stringify(address)} is not a multiaddr (${(err as Error).message}); ${example}`, { cause: err })
    }
    if (parsed.getComponents().find(c => c.name === 'tcp') === undefined) {
      throw new ConfigError(`listen address ${JSON.stringify(address)} is not over TCP, the only transport shoal's swarm has; ${example}`)
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
      throw new ConfigError(`${settingLabel('trust')} ${JSON.stringify(id)} is not a peer ID; write the publisher's (the gateway's), 12D3KooW…: its daemon prints it at start (peerId) and \`shoal status\` on it shows it`, { cause: err })
    }
  }
  return ids
}

/** The labels a daemon runs with: its config's, or the detected platform's when none were resolved. */
export function daemonLabels (config: Pick<DaemonConfig, 'labels'>): NodeLabels {
  return config.labels ?? platformLabels(detectPlatform())
}

/**
 * Runs a check of one setting's value; a refusal (ConfigError, LabelError, AddressError) is
 * said again as a ConfigError that starts with the setting's flag and variable, so the person
 * knows which of them to fix. Anything else (a bug) goes through as it is.
 */
function ofSetting<T> (field: keyof DaemonConfig, check: () => T): T {
  try {
    return check()
  } catch (err) {
    if (err instanceof ConfigError || err instanceof LabelError || err instanceof AddressError) {
      throw new ConfigError(`${settingLabel(field)}: ${(err as Error).message}`, { cause: err })
    }
    throw err
  }
}

function address (value: string, what: string, field: keyof DaemonConfig, forms?: AddressForms): ListenAddress {
  try {
    return parseListenAddress(value, `${what} (${flag(field)}, ${variable(field)})`, undefined, forms)
  } catch (err) {
    if (err instanceof AddressError) throw new ConfigError(err.message, { cause: err })
    throw err
  }
}

export function defaultConfigPath (dataDir: string): string {
  return join(dataDir, 'config.json')
}
