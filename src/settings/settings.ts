import { readFile } from 'node:fs/promises'
import { LOG_LEVELS, type DaemonConfig, type RawSettings } from './daemon-config.js'
import { ConfigError } from './errors.js'

/**
 * The daemon's settings, declared once: each has one name, written as a flag (`--max-upload`),
 * a variable (`SHOAL_MAX_UPLOAD`) and a config-file key (`"maxUpload"`) by one rule, a type
 * that all three are checked against, and the text that `shoal daemon --help` and the README
 * show. Flags win over variables, which win over the file, which wins over defaults. Each
 * source is read here into RawSettings (settingsFromFlags, settingsFromEnv, settingsFromFile);
 * config.ts resolves the layers into a DaemonConfig.
 */
export type SettingType = 'string' | 'list' | 'boolean' | 'size' | 'rate' | 'address' | 'level' | 'path'

export interface SettingSpec {
  /** kebab-case; the flag is `--NAME`, the variable `SHOAL_NAME` in upper snake case, the file key camelCase. */
  name: string
  /** The DaemonConfig field it fills. */
  field: keyof DaemonConfig
  type: SettingType
  /** What a person reads in `--help` and the README. */
  description: string
  /** The value taken when no flag, variable or file gives one, written as a variable would give it; resolveConfig reads it. */
  default?: string
  /** What the help shows where the default is worked out at start instead (from another setting, by the swarm). */
  shownDefault?: string
  /** A secret: no flag (argv is visible to every local user), only the variable and the file. */
  secret?: boolean
  /** The placeholder help shows for the value, where the type's (`FILE` for a path) would mislead. */
  value?: string
  /** Earlier spellings still read, so existing units keep working. */
  aliases?: { flags?: string[], env?: string[] }
}

/** The control API's socket, in the data directory unless --api says otherwise; the CLI looks for a daemon there. */
export const API_SOCKET_NAME = 'api.sock'

export const SETTINGS: readonly SettingSpec[] = [
  { name: 'data', field: 'dataDir', type: 'path', value: 'DIR', description: 'the store directory', shownDefault: '~/.local/share/shoal' },
  { name: 'api', field: 'api', type: 'address', description: 'the control API: a Unix socket path, or HOST:PORT / http://HOST:PORT (TCP needs --api-token-file)', shownDefault: `DATA/${API_SOCKET_NAME}` },
  { name: 'api-token-file', field: 'apiTokenFile', type: 'path', description: 'file holding the bearer token for the control API over TCP and for registry pushes' },
  { name: 'registry', field: 'registry', type: 'address', description: 'the registry mirror containerd is pointed at (HOST:PORT or http://HOST:PORT)', default: '127.0.0.1:5050' },
  { name: 'metrics', field: 'metrics', type: 'address', description: '/metrics and the status page on their own address (default: on the registry listener)' },
  { name: 'allowed-host', field: 'allowedHosts', type: 'list', description: 'host names requests may be addressed to besides IPs and localhost', aliases: { env: ['SHOAL_ALLOWED_HOSTS'] } },
  { name: 'push-network', field: 'pushNetworks', type: 'list', description: 'CIDRs whose clients may push to the registry without the token', shownDefault: 'loopback', aliases: { env: ['SHOAL_PUSH_NETWORKS'] } },
  { name: 'listen', field: 'listen', type: 'list', description: 'libp2p listen multiaddrs', default: '/ip4/0.0.0.0/tcp/4001' },
  { name: 'lane-port', field: 'lanePort', type: 'string', description: 'TCP port of the data lane, which carries chunk bodies to peers over TLS 1.3 beside libp2p (on libp2p\'s listen host); 0 any free port, off none (chunks over libp2p only)', shownDefault: 'libp2p port + 1 (4002)' },
  { name: 'lane-min-rate', field: 'laneMinRateBytesPerSecond', type: 'string', description: 'how fast a peer must deliver chunks over libp2p before a data lane to it is asked for (e.g. 25MB/s); 0 asks at once, never asks for none (lanes are still served)', shownDefault: '0 (ask at once)' },
  { name: 'bootstrap', field: 'bootstrap', type: 'list', description: 'peers to dial at start, with /p2p/PEERID (usually the gateway)' },
  { name: 'mdns', field: 'mdns', type: 'boolean', description: 'find peers on the LAN with mDNS (--no-mdns turns it off)', default: 'true' },
  { name: 'gateway', field: 'gateway', type: 'boolean', description: 'this node brings bundles into the fleet and seeds them', default: 'false' },
  { name: 'max-upload', field: 'maxUploadBytesPerSecond', type: 'rate', description: 'cap on bytes sent to peers per second (e.g. 10MB/s)' },
  { name: 'max-download', field: 'maxDownloadBytesPerSecond', type: 'rate', description: 'cap on bytes received from peers per second' },
  { name: 'quota', field: 'quotaBytes', type: 'size', description: 'evict least recently used unpinned bundles above this size (e.g. 50GB)' },
  { name: 'swarm-key', field: 'swarmKeyFile', type: 'path', description: 'pre-shared key file that closes the fleet to strangers (`shoal keygen swarm FILE`)' },
  { name: 'label', field: 'labels', type: 'list', description: 'KEY=VALUE describing this node, for preheat selectors (--label site=store-17); os and arch are detected', aliases: { env: ['SHOAL_LABELS'] } },
  { name: 'status-interval', field: 'statusIntervalMs', type: 'string', description: 'how often this node signs and gossips its status for `shoal fleet` in a small fleet (500ms, 30s, 5m); it lengthens as the fleet grows, to keep the gossip under 1 KiB/s per node', shownDefault: '30s' },
  { name: 'trust', field: 'trust', type: 'list', description: 'publisher peer IDs whose ref records this node accepts' },
  { name: 'upstream', field: 'upstream', type: 'string', description: 'origin registry to pull misses through from (e.g. https://registry-1.docker.io)' },
  { name: 'upstream-user', field: 'upstreamUser', type: 'string', description: 'user for the upstream\'s token service', secret: true },
  { name: 'upstream-password', field: 'upstreamPassword', type: 'string', description: 'password for the upstream\'s token service', secret: true },
  { name: 'allow-push', field: 'allowPush', type: 'boolean', description: 'accept registry pushes (skopeo copy … docker://NODE/…)', default: 'false' },
  { name: 'direct-io', field: 'directIo', type: 'boolean', description: 'write pulled chunks with O_DIRECT, past the page cache (where the data directory\'s filesystem refuses it, writes go through the page cache and the daemon logs it once); --no-direct-io or SHOAL_DIRECT_IO=0 turns it off', default: 'true' },
  { name: 'log-level', field: 'logLevel', type: 'level', description: 'debug, info, warn or error', default: 'info' },
]

/** `max-upload` → `--max-upload`. */
export function flagOf (spec: Pick<SettingSpec, 'name'>): string { return `--${spec.name}` }
/** `max-upload` → `SHOAL_MAX_UPLOAD`. */
export function envOf (spec: Pick<SettingSpec, 'name'>): string { return `SHOAL_${spec.name.replaceAll('-', '_').toUpperCase()}` }
/** The setting that fills a DaemonConfig field. */
export function settingOf (field: keyof DaemonConfig): SettingSpec {
  const spec = SETTINGS.find(s => s.field === field)
  if (spec === undefined) throw new Error(`no setting fills DaemonConfig.${field}`)
  return spec
}
/** How a message names a setting: `--max-upload (SHOAL_MAX_UPLOAD)`, a secret by its variable alone. */
export function settingLabel (field: keyof DaemonConfig): string {
  const spec = settingOf(field)
  return spec.secret === true ? envOf(spec) : `${flagOf(spec)} (${envOf(spec)})`
}
/** `max-upload` → `maxUpload`. */
export function fileKeyOf (spec: Pick<SettingSpec, 'name'>): string { return spec.name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) }

/**
 * What the config file may hold for each type: a boolean is a boolean, a list a list of strings.
 * Plain predicates: a schema library for eight shapes cost the daemon's bundle 0.75 MB of code.
 */
const nonEmptyString = (v: unknown): boolean => typeof v === 'string' && v.length > 0
const wholeNumber = (v: unknown, min: number): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= min
const FILE_TYPES: Record<SettingType, { check: (value: unknown) => boolean, expected: string }> = {
  string: { check: nonEmptyString, expected: 'a non-empty string' },
  path: { check: nonEmptyString, expected: 'a path (a non-empty string)' },
  address: { check: nonEmptyString, expected: 'an address string (HOST:PORT, a URL or a socket path)' },
  list: { check: v => Array.isArray(v) && v.every(nonEmptyString), expected: 'a list of strings' },
  boolean: { check: v => typeof v === 'boolean', expected: 'a boolean (true or false, without quotes)' },
  size: { check: v => wholeNumber(v, 0) || nonEmptyString(v), expected: 'a size (a number of bytes, or a string such as "50GB")' },
  rate: { check: v => wholeNumber(v, 1) || nonEmptyString(v), expected: 'a rate (bytes per second, or a string such as "10MB/s")' },
  level: { check: v => LOG_LEVELS.some(level => level === v), expected: `one of ${LOG_LEVELS.map(l => JSON.stringify(l)).join(', ')}` },
}

export function fileSchemaOf (spec: SettingSpec): { check: (value: unknown) => boolean, expected: string } { return FILE_TYPES[spec.type] }

/** A value as the config file holds it, described for an error message. */
export function describeValue (value: unknown): string {
  if (Array.isArray(value)) return 'a list'
  if (value === null) return 'null'
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`
  if (typeof value === 'object') return 'an object'
  return `the ${typeof value} ${String(value)}`
}

/** The README's and `shoal daemon --help`'s table, generated from SETTINGS. */
export function settingsTable (format: 'markdown' | 'text'): string {
  if (format === 'markdown') {
    const rows = SETTINGS.map(s => `| ${s.secret === true ? '—' : `\`${s.type === 'boolean' ? `--[no-]${s.name}` : flagOf(s)}\``} | \`${envOf(s)}\` | \`${fileKeyOf(s)}\` | ${s.type} | ${s.default ?? s.shownDefault ?? ''} | ${s.description} |`)
    return ['| flag | variable | config file | type | default | what |', '|---|---|---|---|---|---|', ...rows].join('\n') + '\n'
  }
  const rows = SETTINGS.map(s => {
    const flag = s.secret === true ? '(no flag)' : s.type === 'boolean' ? `--[no-]${s.name}` : `${flagOf(s)} ${s.value ?? placeholder(s.type)}`
    const shown = s.default ?? s.shownDefault
    const more = shown !== undefined ? ` (default ${shown})` : ''
    return `  ${flag.padEnd(30)} ${envOf(s).padEnd(26)} ${fileKeyOf(s).padEnd(18)} ${s.description}${more}`
  })
  return [`  ${'flag'.padEnd(30)} ${'variable'.padEnd(26)} ${'file key'.padEnd(18)} what`, ...rows].join('\n') + '\n'
}

function placeholder (type: SettingType): string {
  return { string: 'TEXT', path: 'FILE', address: 'ADDR', list: 'VALUE…', boolean: '', size: 'SIZE', rate: 'RATE', level: 'LEVEL' }[type]
}

/** Settings given as flags here; --data, --api and --api-token-file are global options. */
const GLOBAL_SETTINGS = new Set(['data', 'api', 'api-token-file'])
const FLAG_SETTINGS = SETTINGS.filter(spec => spec.secret !== true && !GLOBAL_SETTINGS.has(spec.name))

/**
 * One command-line option, as the CLI declares it once: parseArgs reads `type` and `multiple`;
 * commander checks a command line and prints help from `value` (the placeholder) and `description`.
 */
export type FlagSpec =
  | { type: 'string', multiple?: boolean, value: string, description: string }
  | { type: 'boolean', description: string }

/** `shoal daemon`'s options, generated from the one settings schema: booleans also take --no-NAME. */
export const DAEMON_OPTIONS: Readonly<Record<string, FlagSpec>> = Object.fromEntries([
  ['config', { type: 'string', value: 'FILE', description: 'a JSON config file with the keys below (default DATA/config.json)' }],
  // One-shot actions at start, not settings: no variable, no file key.
  ['seed-from', { type: 'string', value: 'STORE', description: 'at start, copy snapshots from a store (s3://, gs://, file://) into this node' }],
  ['seed-id', { type: 'string', multiple: true, value: 'ID', description: 'with --seed-from: only these snapshots (default: all)' }],
  ...FLAG_SETTINGS.flatMap((spec): Array<[string, FlagSpec]> => spec.type === 'boolean'
    ? [[spec.name, { type: 'boolean', description: spec.description }], [`no-${spec.name}`, { type: 'boolean', description: `the opposite of --${spec.name}` }]]
    : [[spec.name, { type: 'string', multiple: spec.type === 'list', value: spec.value ?? placeholder(spec.type).replace('…', ''), description: spec.description }]]),
])

export function settingsFromFlags (values: Record<string, string | boolean | Array<string | boolean> | undefined>): RawSettings {
  const flags: RawSettings = {}
  for (const spec of FLAG_SETTINGS) {
    const value = values[spec.name]
    if (spec.type === 'boolean') {
      if (values[`no-${spec.name}`] === true) flags[spec.field] = false
      else if (value === true) flags[spec.field] = true
    } else if (value !== undefined) {
      flags[spec.field] = Array.isArray(value) ? value.map(String) : String(value)
    }
  }
  return flags
}

/** Truthy and falsy spellings a variable may use; anything else is refused, not guessed. */
const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on'])
const FALSE_WORDS = new Set(['0', 'false', 'no', 'off'])

/** `SHOAL_*` variables (SETTINGS names them); list settings take comma-separated values. */
export function settingsFromEnv (env: NodeJS.ProcessEnv): RawSettings {
  const out: RawSettings = {}
  for (const spec of SETTINGS) {
    const name = [envOf(spec), ...spec.aliases?.env ?? []].find(n => env[n] !== undefined && env[n] !== '')
    const value = name === undefined ? undefined : env[name]
    if (name === undefined || value === undefined) continue
    if (spec.type === 'boolean') {
      const word = value.trim().toLowerCase()
      if (!TRUE_WORDS.has(word) && !FALSE_WORDS.has(word)) throw new ConfigError(`${name} must be a boolean (true, false, 1, 0, yes, no, on, off), not ${JSON.stringify(value)}`)
      out[spec.field] = TRUE_WORDS.has(word)
    } else if (spec.type === 'list') {
      out[spec.field] = value.split(',').map(s => s.trim()).filter(s => s !== '')
    } else {
      out[spec.field] = value
    }
  }
  return out
}

/** Keys earlier config files used, pointing at today's names (one vocabulary for flags, variables and the file). */
const RENAMED_KEYS: Record<string, string> = {
  dataDir: 'data', swarmKeyFile: 'swarmKey', maxUploadBytesPerSecond: 'maxUpload', maxDownloadBytesPerSecond: 'maxDownload',
  quotaBytes: 'quota', allowedHosts: 'allowedHost', pushNetworks: 'pushNetwork', labels: 'label',
}

/**
 * A JSON config file: the settings' camelCase names (`"swarmKey"`, `"mdns"`, `"maxUpload"`),
 * each checked against its type, so `"gateway": "yes"` is refused rather than read as false.
 */
export async function settingsFromFile (path: string): Promise<RawSettings> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`, { cause: err })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text) as unknown
  } catch (err) {
    throw new ConfigError(`config file ${path} is not JSON: ${(err as Error).message}`, { cause: err })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ConfigError(`config file ${path}: the top level must be an object of settings`)
  const byKey = new Map(SETTINGS.map(spec => [fileKeyOf(spec), spec]))
  const out: RawSettings = {}
  for (const [key, value] of Object.entries(parsed)) {
    const spec = byKey.get(key)
    if (spec === undefined) {
      const renamed = RENAMED_KEYS[key]
      throw new ConfigError(renamed !== undefined
        ? `config file ${path}: key "${key}" is now "${renamed}" (the file uses the flags' names in camelCase)`
        : `config file ${path}: unknown key ${JSON.stringify(key)} (known: ${[...byKey.keys()].join(', ')})`)
    }
    const { check, expected } = fileSchemaOf(spec)
    if (!check(value)) throw new ConfigError(`config file ${path}: "${key}" must be ${expected}, not ${describeValue(value)}`)
    out[spec.field] = typeof value === 'number' ? String(value) : value as string | string[] | boolean
  }
  return out
}
