import { join } from 'node:path'
import { PassThrough } from 'node:stream'
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
