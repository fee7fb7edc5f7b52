import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { readFile } from 'node:fs/promises'
import { createControlApi, createHttpApi, type HttpApi } from '../http/index.js'
import { openStore, type Store } from '../store/index.js'
import { createSwarm, type Swarm } from '../swarm/index.js'
import { swarmBlobSource } from './blob-source.js'
import type { DaemonConfig } from './config.js'
import { loadOrCreatePeerKey } from './identity.js'
import type { Logger } from './logger.js'

export interface Daemon {
  readonly config: DaemonConfig
  readonly store: Store
  readonly swarm: Swarm
  /** Where the HTTP API listens (the port is real even when 0 was asked for). */
  readonly api: { host: string, port: number }
  stop: () => Promise<void>
}

/**
 * Builds the pieces and starts them in order — store, swarm, HTTP — and stops them in the
 * reverse order, so nothing is served from a store that is closing.
 */
export async function startDaemon (config: DaemonConfig, logger: Logger): Promise<Daemon> {
  const store = await openStore({ dir: config.dataDir, quotaBytes: config.quotaBytes })
  let swarm: Swarm | undefined
  let server: Server | undefined
  let registry: HttpApi | undefined
  const lifetime = new AbortController()
  try {
    const privateKey = await loadOrCreatePeerKey(config.dataDir)
    const swarmKey = config.swarmKeyFile !== undefined ? await readFile(config.swarmKeyFile) : undefined
    swarm = createSwarm({ store, logger: logger.child({ module: 'swarm' }) }, {
      privateKey,
      listen: config.listen,
      bootstrap: config.bootstrap,
      mdns: config.mdns,
      swarmKey,
      gateway: config.gateway,
      maxUploadBytesPerSecond: config.maxUploadBytesPerSecond,
      maxDownloadBytesPerSecond: config.maxDownloadBytesPerSecond,
    })
    await swarm.start()
    const control = createControlApi({ store, swarm }, { gateway: config.gateway })
    registry = createHttpApi({ store, blobSource: swarmBlobSource(store, swarm, logger, lifetime.signal) }, {
      allowPush: config.allowPush, logger: logger.child({ module: 'http' }),
    })
    const registryHandler = registry.handler
    server = createServer({ requestTimeout: 0 }, (req, res) => { void route(req, res, control, registryHandler, logger) })
    const api = await listen(server, config.apiHost, config.apiPort)
    logger.info('daemon started', { peerId: swarm.peerId, addresses: swarm.addresses(), api: `${api.host}:${api.port}`, gateway: config.gateway })
    const started = { swarm, server, registry }
    return {
      config, store, swarm, api,
      stop: async () => {
        lifetime.abort(new Error('the daemon is stopping'))
        await started.registry.close()
        await closeServer(started.server)
        await started.swarm.stop()
        await store.close()
        logger.info('daemon stopped')
      },
    }
  } catch (err) {
    lifetime.abort(err)
    await registry?.close()
    if (server !== undefined) await closeServer(server)
    await swarm?.stop()
    await store.close()
    throw err
  }
}

/** The control API takes `/api/v1/`; the registry API answers everything else (its 404s are JSON). */
async function route (req: IncomingMessage, res: ServerResponse, control: ReturnType<typeof createControlApi>, registry: HttpApi['handler'], logger: Logger): Promise<void> {
  try {
    if (await control(req, res)) return
    registry(req, res)
  } catch (err) {
    logger.error('request failed', { url: req.url, err })
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
    res.end()
  }
}

async function listen (server: Server, host: string, port: number): Promise<{ host: string, port: number }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => { server.off('error', reject); resolve() })
  })
  const address = server.address()
  return { host, port: typeof address === 'object' && address !== null ? address.port : port }
}

async function closeServer (server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>(resolve => { server.close(() => { resolve() }) })
}
