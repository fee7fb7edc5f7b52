import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from './errors.js'
import type { LogLevel } from './logger.js'
import { parseRate, parseSize } from './rates.js'

export interface DaemonConfig {
  dataDir: string
  apiHost: string
  apiPort: number
  listen: string[]
  bootstrap: string[]
  mdns: boolean
  gateway: boolean
  maxUploadBytesPerSecond?: number
  maxDownloadBytesPerSecond?: number
  swarmKeyFile?: string
  /** Publisher public keys whose ref records this node accepts. */
  trust: string[]
  /** Origin registry for pull-through: `https://registry-1.docker.io`. */
  upstream?: string
  /** Basic credentials for the upstream's token service; best given as SHOAL_UPSTREAM_USER/SHOAL_UPSTREAM_PASSWORD. */
  upstreamUser?: string
  upstreamPassword?: string
  allowPush: boolean
  quotaBytes?: number
  logLevel: LogLevel
}

/** Every setting as text, the common form of flags, environment and config file. */
export type RawSettings = Partial<Record<keyof DaemonConfig, string | string[] | boolean>>

export const DEFAULT_API = '127.0.0.1:5050'
export const DEFAULT_LISTEN = '/ip4/0.0.0.0/tcp/4001'

/** `SHOAL_*` variables; list settings take comma-separated values. */
export function settingsFromEnv (env: NodeJS.ProcessEnv): RawSettings {
  const out: RawSettings = {}
  const text = (name: string): string | undefined => env[name] !== undefined && env[name] !== '' ? env[name] : undefined
  const list = (name: string): string[] | undefined => text(name)?.split(',').map(s => s.trim()).filter(s => s !== '')
  const flag = (name: string): boolean | undefined => text(name) === undefined ? undefined : !['0', 'false', 'no', 'off'].includes((text(name) ?? '').toLowerCase())
  assign(out, 'dataDir', text('SHOAL_DATA'))
  assign(out, 'apiHost', text('SHOAL_API'))
  assign(out, 'listen', list('SHOAL_LISTEN'))
  assign(out, 'bootstrap', list('SHOAL_BOOTSTRAP'))
  assign(out, 'mdns', flag('SHOAL_MDNS'))
  assign(out, 'gateway', flag('SHOAL_GATEWAY'))
  assign(out, 'maxUploadBytesPerSecond', text('SHOAL_MAX_UPLOAD'))
  assign(out, 'maxDownloadBytesPerSecond', text('SHOAL_MAX_DOWNLOAD'))
  assign(out, 'swarmKeyFile', text('SHOAL_SWARM_KEY'))
  assign(out, 'trust', list('SHOAL_TRUST'))
  assign(out, 'upstream', text('SHOAL_UPSTREAM'))
  assign(out, 'upstreamUser', text('SHOAL_UPSTREAM_USER'))
  assign(out, 'upstreamPassword', text('SHOAL_UPSTREAM_PASSWORD'))
  assign(out, 'allowPush', flag('SHOAL_ALLOW_PUSH'))
  assign(out, 'quotaBytes', text('SHOAL_QUOTA'))
  assign(out, 'logLevel', text('SHOAL_LOG_LEVEL'))
  return out
}

/** A JSON config file with the same keys as DaemonConfig (`dataDir`, `listen`, …). */
export async function settingsFromFile (path: string): Promise<RawSettings> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err })
  }
  try {
    const parsed = JSON.parse(text) as unknown
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level is not an object')
    const out: RawSettings = {}
    for (const [key, value] of Object.entries(parsed)) {
      if (!CONFIG_KEYS.has(key)) throw new Error(`unknown key ${JSON.stringify(key)} (known: ${[...CONFIG_KEYS].join(', ')})`)
      out[key as keyof DaemonConfig] = typeof value === 'number' ? String(value) : value as string | string[] | boolean
    }
    return out
  } catch (err) {
    throw new ConfigError(`config file ${path} is invalid: ${(err as Error).message}`, { cause: err })
  }
}

const CONFIG_KEYS = new Set<string>([
  'dataDir', 'apiHost', 'apiPort', 'listen', 'bootstrap', 'mdns', 'gateway', 'maxUploadBytesPerSecond', 'maxDownloadBytesPerSecond',
  'swarmKeyFile', 'trust', 'upstream', 'upstreamUser', 'upstreamPassword', 'allowPush', 'quotaBytes', 'logLevel',
])

/**
 * Flags win over the environment, which wins over the config file, which wins over
 * defaults. `apiHost` may carry `HOST:PORT` (as `--api` and `$SHOAL_API` do).
 */
export function resolveConfig (layers: { flags: RawSettings, env: RawSettings, file: RawSettings }, defaultDataDir: string): DaemonConfig {
  const pick = <K extends keyof DaemonConfig>(key: K): string | string[] | boolean | undefined => layers.flags[key] ?? layers.env[key] ?? layers.file[key]
  const text = (key: keyof DaemonConfig): string | undefined => { const v = pick(key); return typeof v === 'string' ? v : undefined }
  const list = (key: keyof DaemonConfig): string[] | undefined => { const v = pick(key); return Array.isArray(v) ? v : typeof v === 'string' ? [v] : undefined }
  const bool = (key: keyof DaemonConfig, fallback: boolean): boolean => { const v = pick(key); return typeof v === 'boolean' ? v : typeof v === 'string' ? v === 'true' : fallback }
  const [apiHost, apiPort] = splitHostPort(text('apiHost') ?? DEFAULT_API, text('apiPort'))
  const level = text('logLevel') ?? 'info'
  if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new ConfigError(`log level ${JSON.stringify(level)} is not one of debug, info, warn, error`)
  const config: DaemonConfig = {
    dataDir: text('dataDir') ?? defaultDataDir,
    apiHost,
    apiPort,
    listen: list('listen') ?? [DEFAULT_LISTEN],
    bootstrap: list('bootstrap') ?? [],
    mdns: bool('mdns', true),
    gateway: bool('gateway', false),
    trust: list('trust') ?? [],
    allowPush: bool('allowPush', false),
    logLevel: level as LogLevel,
  }
  const upload = text('maxUploadBytesPerSecond')
  const download = text('maxDownloadBytesPerSecond')
  const quota = text('quotaBytes')
  if (upload !== undefined) config.maxUploadBytesPerSecond = parseRate(upload)
  if (download !== undefined) config.maxDownloadBytesPerSecond = parseRate(download)
  if (quota !== undefined) config.quotaBytes = parseSize(quota)
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

function splitHostPort (hostPort: string, portOverride: string | undefined): [string, number] {
  const colon = hostPort.lastIndexOf(':')
  const host = colon < 0 ? hostPort : hostPort.slice(0, colon).replace(/^\[|\]$/g, '')
  const port = Number(portOverride ?? (colon < 0 ? '5050' : hostPort.slice(colon + 1)))
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`API address ${JSON.stringify(hostPort)} has no valid port; write HOST:PORT, e.g. 127.0.0.1:5050`)
  return [host, port]
}

export function defaultConfigPath (dataDir: string): string {
  return join(dataDir, 'config.json')
}

function assign<K extends keyof DaemonConfig> (out: RawSettings, key: K, value: string | string[] | boolean | undefined): void {
  if (value !== undefined) out[key] = value
}
