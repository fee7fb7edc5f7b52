import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  DAEMON_OPTIONS, SETTINGS, envOf, fileKeyOf, flagOf, resolveConfig, settingsFromEnv, settingsFromFile, settingsFromFlags, settingsTable, type RawSettings,
} from '../../src/daemon/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const PEER = '/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'
/** Publisher peer IDs (Ed25519), as --trust takes them. */
const PEER_A = '12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'
const PEER_B = '12D3KooWQ8F7N7XEQkVJhP35Lc4LcSQAyyJhm8jJtWQL1rXm7Vwn'

/** One setting three ways: flag arguments, environment, config-file value. */
const CASES: Array<{ name: string, flags: string[], env: Record<string, string>, file: unknown }> = [
  { name: 'bootstrap', flags: ['--bootstrap', PEER, '--bootstrap', PEER.replace('10.0.0.1', '10.0.0.2')], env: { SHOAL_BOOTSTRAP: `${PEER},${PEER.replace('10.0.0.1', '10.0.0.2')}` }, file: [PEER, PEER.replace('10.0.0.1', '10.0.0.2')] },
  { name: 'mdns', flags: ['--no-mdns'], env: { SHOAL_MDNS: 'false' }, file: false },
  { name: 'gateway', flags: ['--gateway'], env: { SHOAL_GATEWAY: '1' }, file: true },
  { name: 'max-upload', flags: ['--max-upload', '10MB/s'], env: { SHOAL_MAX_UPLOAD: '10MB/s' }, file: '10MB/s' },
  { name: 'quota', flags: ['--quota', '50GB'], env: { SHOAL_QUOTA: '50GB' }, file: '50GB' },
  { name: 'swarm-key', flags: ['--swarm-key', '/etc/shoal/swarm.key'], env: { SHOAL_SWARM_KEY: '/etc/shoal/swarm.key' }, file: '/etc/shoal/swarm.key' },
  { name: 'trust', flags: ['--trust', PEER_A, '--trust', PEER_B], env: { SHOAL_TRUST: `${PEER_A},${PEER_B}` }, file: [PEER_A, PEER_B] },
  { name: 'label', flags: ['--label', 'site=a', '--label', 'tier=edge'], env: { SHOAL_LABEL: 'site=a,tier=edge' }, file: ['site=a', 'tier=edge'] },
  { name: 'lane-port', flags: ['--lane-port', 'off'], env: { SHOAL_LANE_PORT: 'off' }, file: 'off' },
  { name: 'lane-min-rate', flags: ['--lane-min-rate', '0'], env: { SHOAL_LANE_MIN_RATE: '0' }, file: '0' },
  { name: 'direct-io', flags: ['--no-direct-io'], env: { SHOAL_DIRECT_IO: '0' }, file: false },
  { name: 'log-level', flags: ['--log-level', 'debug'], env: { SHOAL_LOG_LEVEL: 'debug' }, file: 'debug' },
  { name: 'registry', flags: ['--registry', 'http://127.0.0.1:5055'], env: { SHOAL_REGISTRY: '127.0.0.1:5055' }, file: 'http://127.0.0.1:5055/' },
]

// A bad value for each setting that resolveConfig checks; null where any text is taken at
// this point (a path read at start, a host name) or where the check spans two settings
// (upstream user and password).
const BAD: Record<string, string[][] | null> = {
  data: null, 'api-token-file': null, 'swarm-key': null, 'allowed-host': null, upstream: null, 'upstream-user': null, 'upstream-password': null,
  api: [['localhost:']], registry: [['localhost:x'], ['/tmp/registry.sock']], metrics: [['localhost:'], ['/tmp/metrics.sock']],
  'push-network': [['10.0.0.0/33']], 'lane-port': [['yes']], 'lane-min-rate': [['fast']], bootstrap: [['/ip4/10.0.0.1/tcp/4001'], ['nonsense']],
  listen: [['0.0.0.0:4001'], ['/ip4/0.0.0.0/udp/4001/quic-v1']],
  mdns: [['maybe']], gateway: [['maybe']], 'allow-push': [['maybe']], 'direct-io': [['maybe']],
  'max-upload': [['fast']], 'max-download': [['fast']], quota: [['big']], label: [['nokey']], 'status-interval': [['1ms']], trust: [['gateway-1']], 'log-level': [['loud']],
}

describe('the daemon\'s settings schema', () => {
  const tempDir = useTempDirs()

  async function fromFile (content: unknown): Promise<RawSettings> {
    const path = join(await tempDir(), 'config.json')
    await writeFile(path, JSON.stringify(content))
    return await settingsFromFile(path)
  }

  it('names every setting by one rule: --kebab-case, SHOAL_UPPER_SNAKE, camelCase in the file', () => {
    for (const spec of SETTINGS) {
      expect(flagOf(spec)).toBe(`--${spec.name}`)
      expect(envOf(spec)).toBe(`SHOAL_${spec.name.toUpperCase().replaceAll('-', '_')}`)
      expect(fileKeyOf(spec).replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)).toBe(spec.name)
    }
    expect(fileKeyOf({ name: 'swarm-key' })).toBe('swarmKey')
  })

  it('gives the same configuration whether a setting comes from a flag, a variable or the file', async () => {
    const data = await tempDir()
    for (const c of CASES) {
      const flags = settingsFromFlags(parseArgs({ args: c.flags, options: DAEMON_OPTIONS, strict: true }).values)
      const viaFlag = resolveConfig({ flags, env: {}, file: {} }, data)
      const viaEnv = resolveConfig({ flags: {}, env: settingsFromEnv(c.env), file: {} }, data)
      const spec = SETTINGS.find(s => s.name === c.name)!
      const viaFile = resolveConfig({ flags: {}, env: {}, file: await fromFile({ [fileKeyOf(spec)]: c.file }) }, data)
      expect(viaEnv, c.name).toEqual(viaFlag)
      expect(viaFile, c.name).toEqual(viaFlag)
      // And the setting really changed something.
      expect(viaFlag, c.name).not.toEqual(resolveConfig({ flags: {}, env: {}, file: {} }, data))
    }
  })

  it('takes a lane port, 0 for any, or off, and refuses anything else at start', async () => {
    const data = await tempDir()
    const lanePort = (value: string): number | false | undefined => resolveConfig({ flags: { lanePort: value }, env: {}, file: {} }, data).lanePort
    expect(lanePort('5002')).toBe(5002)
    expect(lanePort('0')).toBe(0)
    expect(lanePort('off')).toBe(false)
    for (const bad of ['65536', '-1', 'yes', '4002x']) expect(() => lanePort(bad), bad).toThrow(/--lane-port/)
  })

  it('takes a lane rate gate: a rate, 0 to ask at once, or never, and refuses anything else at start', async () => {
    const data = await tempDir()
    const gate = (value: string): number | undefined => resolveConfig({ flags: { laneMinRateBytesPerSecond: value }, env: {}, file: {} }, data).laneMinRateBytesPerSecond
    expect(gate('25MiB/s')).toBe(25 * 1024 * 1024)
    expect(gate('0')).toBe(0)
    expect(gate('never')).toBe(Infinity)
    for (const bad of ['fast', '-1', '5 lanes']) expect(() => gate(bad), bad).toThrow(/--lane-min-rate/)
  })

  it('takes a status interval within the bounds the swarm keeps on the wire, and refuses one outside them at start', async () => {
    const data = await tempDir()
    const interval = (text: string): number | undefined => resolveConfig({ flags: { statusIntervalMs: text }, env: {}, file: {} }, data).statusIntervalMs
    expect(interval('200ms')).toBe(200)
    expect(interval('6h')).toBe(6 * 3_600_000)
    expect(interval('45')).toBe(45_000)
    for (const wrong of ['199ms', '6.01h', 'soon']) {
      expect(() => interval(wrong), wrong).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('between 200ms and 6h') }))
    }
  })

  it('says what a listener address lacks in the form that listener takes: a host for :5050, no socket path for TCP-only ones', async () => {
    const data = await tempDir()
    const message = (flags: RawSettings): string => {
      try {
        resolveConfig({ flags, env: {}, file: {} }, data)
      } catch (err) { return (err as Error).message }
      return ''
    }
    // Before: ":5050" (Go's every-interface spelling) "has no port", and both offered "a socket
    // path", which these listeners then refuse; the metrics example was the registry's port.
    expect(message({ registry: ':5050' })).toContain('":5050" has no host; write 0.0.0.0:5050 for every interface or 127.0.0.1:5050 for this machine only')
    expect(message({ metrics: '9090' })).toContain('"9090" has no port; write HOST:PORT (e.g. 0.0.0.0:9090)')
    for (const flags of [{ registry: ':5050' }, { registry: 'localhost:x' }, { metrics: '9090' }]) expect(message(flags)).not.toContain('socket path')
    // The control API still takes one.
    expect(message({ api: 'localhost:' })).toContain('or a socket path')
  })

  it('takes a quota in terabytes (a gateway\'s cache disk): 2TiB and 1.5T', async () => {
    const data = await tempDir()
    const quota = (text: string): number | undefined => resolveConfig({ flags: { quotaBytes: text }, env: {}, file: {} }, data).quotaBytes
    expect(quota('2TiB')).toBe(2 * 1024 ** 4)
    expect(quota('1.5T')).toBe(1.5e12)
    expect(quota('3TB')).toBe(3e12)
  })

  it('refuses a --trust that is not a peer ID at start, saying where the publisher\'s ID is found', async () => {
    const data = await tempDir()
    // Before: REF_RECORD_INVALID from inside the swarm's start, sending the operator to
    // `shoal keygen publisher`, which does not exist.
    expect(() => resolveConfig({ flags: { trust: ['gateway-1'] }, env: {}, file: {} }, data)).toThrow(expect.objectContaining({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/--trust .*"gateway-1".*`shoal status`/),
    }))
  })

  it('refuses a wrongly typed value in the file, naming the key and the type it needs', async () => {
    await expect(fromFile({ gateway: 'yes' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('"gateway" must be a boolean (true or false, without quotes), not the string "yes"') as unknown })
    await expect(fromFile({ bootstrap: PEER })).rejects.toThrow(/"bootstrap" must be a list of strings, not the string/)
    await expect(fromFile({ logLevel: 'loud' })).rejects.toThrow(/"logLevel" must be one of "debug", "info", "warn", "error"/)
    await expect(fromFile({ maxUpload: true })).rejects.toThrow(/"maxUpload" must be a rate/)
    await expect(fromFile({ swarmKeyFile: '/k' })).rejects.toThrow(/key "swarmKeyFile" is now "swarmKey"/)
    await expect(fromFile({ colour: 'blue' })).rejects.toThrow(/unknown key "colour"/)
    expect(() => settingsFromEnv({ SHOAL_MDNS: 'maybe' })).toThrow(/SHOAL_MDNS must be a boolean/)
  })

  it('names, in an error for a bad value of a setting, only that setting\'s flag and variable (or the alias given)', async () => {
    const data = await tempDir()
    expect(Object.keys(BAD).sort()).toEqual(SETTINGS.map(s => s.name).sort())
    for (const spec of SETTINGS) {
      const variables = [envOf(spec), ...spec.aliases?.env ?? []]
      for (const value of BAD[spec.name] ?? []) {
        // Each message with the variables it may name: the setting's own, and an alias only where that alias was given.
        const messages: Array<{ message: string, may: string[] }> = []
        for (const variable of variables) {
          try {
            resolveConfig({ flags: {}, env: settingsFromEnv({ [variable]: value.join(',') }), file: {} }, data)
          } catch (err) { messages.push({ message: (err as Error).message, may: [envOf(spec), variable] }) }
        }
        if (spec.type !== 'boolean') {
          try {
            resolveConfig({ flags: { [spec.field]: spec.type === 'list' ? value : value[0] }, env: {}, file: {} }, data)
          } catch (err) { messages.push({ message: (err as Error).message, may: [envOf(spec)] }) }
        }
        expect(messages, `${spec.name} ${value.join(',')}`).toHaveLength(variables.length + (spec.type === 'boolean' ? 0 : 1))
        for (const { message, may } of messages) {
          for (const named of message.match(/SHOAL_[A-Z_]+/g) ?? []) expect(may, message).toContain(named)
          for (const named of message.match(/(?<![\w-])--[a-z][a-z-]*/g) ?? []) expect([flagOf(spec), ...spec.aliases?.flags ?? []], message).toContain(named)
        }
      }
    }
  })

  it('names, in an error for a bad value from a flag or a variable, both the setting\'s flag and its variable', async () => {
    const data = await tempDir()
    // Booleans are left out: their flag takes no value, and a bad variable is named alone.
    for (const spec of SETTINGS.filter(s => s.type !== 'boolean')) {
      for (const value of BAD[spec.name] ?? []) {
        const given = spec.type === 'list' ? value : value[0]
        for (const layers of [{ flags: { [spec.field]: given }, env: {}, file: {} }, { flags: {}, env: settingsFromEnv({ [envOf(spec)]: value.join(',') }), file: {} }]) {
          let message = ''
          try {
            resolveConfig(layers, data)
          } catch (err) { message = (err as Error).message }
          expect(message, `${spec.name} ${value.join(',')}`).toContain(envOf(spec))
          expect(message, `${spec.name} ${value.join(',')}`).toContain(flagOf(spec))
        }
      }
    }
  })

  it('generates the table the README and `shoal daemon --help` show, one row per setting', () => {
    const text = settingsTable('text')
    const markdown = settingsTable('markdown')
    for (const spec of SETTINGS) {
      expect(text).toContain(envOf(spec))
      expect(markdown).toContain(`\`${fileKeyOf(spec)}\``)
    }
    expect(markdown.split('\n').filter(l => l.startsWith('| `') || l.startsWith('| —'))).toHaveLength(SETTINGS.length)
  })
})
