import { existsSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger, startDaemon, type DaemonConfig } from '../../src/daemon/index.js'
import { openStore } from '../../src/store/index.js'
import { openFilesUnder } from '../helpers/open-files.js'
import { shoal } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

function configFor (dataDir: string, registryPort: number): DaemonConfig {
  return {
    dataDir, api: { kind: 'socket', path: join(dataDir, 'api.sock') }, registry: { kind: 'tcp', host: '127.0.0.1', port: registryPort },
    allowedHosts: [], pushNetworks: [], listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false,
    gateway: false, trust: [], allowPush: false, logLevel: 'warn',
  }
}

describe('a daemon whose start fails part way', () => {
  const tempDir = useTempDirs()
  let taken: Server | undefined
  afterEach(async () => {
    await new Promise<void>(resolve => { if (taken === undefined) resolve(); else taken.close(() => { resolve() }) })
    taken = undefined
  })

  /** A port something else listens on (a daemon still running, another program). */
  async function takenPort (): Promise<number> {
    const server = createServer()
    taken = server
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', () => { resolve() }) })
    const address = server.address()
    return typeof address === 'object' && address !== null ? address.port : 0
  }

  it('exits, saying which listener\'s address is in use and which setting moves it, when libp2p\'s port is taken', async () => {
    const port = await takenPort()
    // Before: libp2p's own text (its `transportManager.faultTolerance`, a stack trace, [INTERNAL]),
    // and the process never exited: the data lane's listener stayed open, so systemd saw it running.
    const failed = await shoal(await tempDir(), ['daemon', '--registry', '127.0.0.1:0', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--no-mdns'], { timeoutMs: 60_000 })
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(new RegExp(`libp2p cannot listen on /ip4/127.0.0.1/tcp/${port}: the address is in use .*--listen`))
    expect(failed.stderr).not.toContain('faultTolerance')
  }, 90_000)

  it('says the same of the registry mirror\'s address, naming --registry and containerd\'s hosts.toml', async () => {
    const port = await takenPort()
    const failed = await shoal(await tempDir(), ['daemon', '--registry', `127.0.0.1:${port}`, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'], { timeoutMs: 60_000 })
    expect(failed.code).toBe(1)
    expect(failed.stderr).toMatch(new RegExp(`the registry mirror cannot listen on 127.0.0.1:${port}: the address is in use .*--registry.*hosts.toml`))
  })

  it('refuses a listen address that is not a TCP multiaddr at start, naming the setting and the form it takes', async () => {
    // Before: libp2p's own refusals ([INTERNAL], exit 1): `String multiaddr must start with "/"`
    // for the HOST:PORT form --registry takes, "No transport was configured" for QUIC.
    for (const listen of ['0.0.0.0:4001', '/ip4/127.0.0.1/udp/0/quic-v1']) {
      const failed = await shoal(await tempDir(), ['daemon', '--registry', '127.0.0.1:0', '--listen', listen, '--no-mdns'], { timeoutMs: 60_000 })
      expect(failed.code, listen).toBe(2)
      expect(failed.stderr, listen).toContain(`--listen (SHOAL_LISTEN): listen address "${listen}"`)
      expect(failed.stderr, listen).toContain('write e.g. /ip4/0.0.0.0/tcp/4001')
      expect(failed.stderr, listen).toContain('[CONFIG_INVALID]')
    }
  })

  it('stops what it had started: the store is free to open again, no file under it stays open, and a second start serves', async () => {
    const dataDir = await tempDir()
    // The registry's port is taken, so the start fails after the store, swarm and APIs were made.
    const port = await takenPort()
    await expect(startDaemon(configFor(dataDir, port), createLogger('warn', {}, new PassThrough()))).rejects.toMatchObject({ code: 'EADDRINUSE' })
    expect(await openFilesUnder([dataDir])).toEqual([])
    const store = await openStore({ dir: dataDir, create: false })
    await store.close()

    const daemon = await startDaemon(configFor(dataDir, 0), createLogger('warn', {}, new PassThrough()))
    expect(existsSync(join(dataDir, 'api.sock'))).toBe(true)
    await daemon.stop()
    expect(existsSync(join(dataDir, 'api.sock'))).toBe(false)
    expect(await openFilesUnder([dataDir])).toEqual([])
  })
})
