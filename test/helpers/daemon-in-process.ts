import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { afterAll, beforeAll } from 'vitest'
import { createLogger, startDaemon, type Daemon, type DaemonConfig, type DaemonInit } from '../../src/daemon/index.js'

/** A daemon in this process (real libp2p over TCP on loopback, real LevelDB), its log lines kept. */
export interface TestDaemon { daemon: Daemon, logs: Array<Record<string, unknown>> }

/** Starts a daemon in this process on loopback, with no mDNS and an API socket in `dataDir`; `extra` overrides, `init` shortens what a test waits for. */
export async function startInProcess (dataDir: string, extra: Partial<DaemonConfig> = {}, init: DaemonInit = {}): Promise<TestDaemon> {
  const out = new PassThrough()
  const logs: Array<Record<string, unknown>> = []
  out.setEncoding('utf8')
  let pending = ''
  out.on('data', (text: string) => {
    pending += text
    for (let newline = pending.indexOf('\n'); newline >= 0; newline = pending.indexOf('\n')) {
      logs.push(JSON.parse(pending.slice(0, newline)) as Record<string, unknown>)
      pending = pending.slice(newline + 1)
    }
  })
  const config: DaemonConfig = {
    dataDir, api: { kind: 'socket', path: join(dataDir, 'api.sock') }, registry: { kind: 'tcp', host: '127.0.0.1', port: 0 },
    allowedHosts: [], pushNetworks: [], listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false,
    gateway: false, trust: [], allowPush: false, logLevel: 'info', ...extra,
  }
  return { daemon: await startDaemon(config, createLogger('info', {}, out), init), logs }
}

/** The registry mirror's base URL (`http://HOST:PORT`) of a daemon listening on TCP. */
export function registryOf (daemon: Daemon): string {
  const address = daemon.listeners.registry
  if (address.kind !== 'tcp') throw new Error('the registry listens on TCP')
  return `http://${address.host}:${address.port}`
}

/** A describe block's temp dir and the daemons its tests start there (useStartedDaemons). */
export interface StartedDaemons {
  /** The temp dir, made before the block's first test. */
  readonly work: string
  /** Starts a daemon in process in `work/name` (startInProcess), stopped after the block's tests. */
  start: (name: string, extra?: Partial<DaemonConfig>, init?: DaemonInit) => Promise<TestDaemon>
}

/**
 * Registers a temp dir for the calling describe block (beforeAll) and, after its tests, stops
 * every daemon it started, last started first (an edge before the gateway it leans on), then
 * removes the dir. A stop that fails does not keep the others from stopping.
 */
export function useStartedDaemons (prefix: string): StartedDaemons {
  let work: string | undefined
  const started: Daemon[] = []
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `shoal-${prefix}-`))
  })
  afterAll(async () => {
    for (const daemon of started.reverse()) await daemon.stop().catch(() => {})
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })
  const dir = (): string => {
    if (work === undefined) throw new Error('useStartedDaemons: the temp dir is made in beforeAll; use it inside a test or a hook')
    return work
  }
  return {
    get work () { return dir() },
    start: async (name, extra, init) => {
      const running = await startInProcess(join(dir(), name), extra, init)
      started.push(running.daemon)
      return running
    },
  }
}
