import { createServer, type Server } from 'node:http'
import { readFile } from 'node:fs/promises'
import { createControlApi, createHttpApi, createMetrics, createNodeHandler, type HttpApi, type Metrics } from '../http/index.js'
import { openStore, type Store } from '../store/index.js'
import { createSwarm, type Swarm } from '../swarm/index.js'
import { createUpstream, type Upstream } from '../upstream/index.js'
import { swarmBlobSource } from './blob-source.js'
import { corruptingStore } from './byzantine.js'
import type { DaemonConfig } from './config.js'
import { loadOrCreatePeerKey } from './identity.js'
import type { Logger } from './logger.js'

export interface Daemon {
  readonly config: DaemonConfig
  readonly store: Store
  readonly swarm: Swarm
  /** Where the HTTP API listens (the port is real even when 0 was asked for). */
  readonly api: { host: string, port: number }
  readonly metrics: Metrics
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
  let upstream: Upstream | undefined
  const lifetime = new AbortController()
  const metrics = createMetrics()
  try {
    const privateKey = await loadOrCreatePeerKey(config.dataDir)
    const swarmKey = config.swarmKeyFile !== undefined ? await readFile(config.swarmKeyFile) : undefined
    const byzantine = process.env.SHOAL_TEST_CORRUPT_CHUNKS === '1'
    if (byzantine) logger.warn('SHOAL_TEST_CORRUPT_CHUNKS=1: this node serves corrupt chunks, for fault tests only')
    swarm = createSwarm({ store: byzantine ? corruptingStore(store) : store, logger: logger.child({ module: 'swarm' }) }, {
      privateKey,
      listen: config.listen,
      bootstrap: config.bootstrap,
      mdns: config.mdns,
      swarmKey,
      gateway: config.gateway,
      maxUploadBytesPerSecond: config.maxUploadBytesPerSecond,
      maxDownloadBytesPerSecond: config.maxDownloadBytesPerSecond,
      trust: config.trust,
    })
    await swarm.start()
    const publishing = swarm
    // Every ref set here (push, registry push, pull-through) is signed and sent to the fleet;
    // neighbours apply it only if they trust this node's key (by default, their gateway's).
    store.on('ref:set', ref => {
      publishing.publishRefs([ref]).catch((err: unknown) => { logger.warn('publishing a ref record failed', { ref: ref.ref, err }) })
    })
    metrics.watchSwarm(swarm)
    const running = swarm
    const control = createControlApi({ store, swarm }, { gateway: config.gateway })
    if (config.upstream !== undefined) {
      const credentials = config.upstreamUser !== undefined && config.upstreamPassword !== undefined ? { username: config.upstreamUser, password: config.upstreamPassword } : undefined
      upstream = createUpstream({ store }, { url: config.upstream, credentials, onBytesReceived: bytes => { metrics.upstreamBytes(bytes) } })
    }
    registry = createHttpApi({ store, blobSource: swarmBlobSource(store, swarm, logger, lifetime.signal), upstream }, {
      allowPush: config.allowPush,
      logger: logger.child({ module: 'http' }),
      // A name without a registry host means the upstream's (`library/alpine` → docker.io/library/alpine).
      defaultRegistry: upstream?.namespace,
      onPulledThrough: image => {
        metrics.pullThroughDuration.observe(image.seconds)
        running.announce(image.bundleId).catch((err: unknown) => { logger.warn('announcing a pulled-through image failed', { bundleId: image.bundleId, err }) })
      },
    })
    server = createServer({ requestTimeout: 0 }, createNodeHandler({ registry: registry.handler, control, metrics, logger }))
    const api = await listen(server, config.apiHost, config.apiPort)
    logger.info('daemon started', { peerId: swarm.peerId, addresses: swarm.addresses(), api: `${api.host}:${api.port}`, gateway: config.gateway, upstream: upstream?.url.origin })
    const started = { swarm, server, registry, upstream }
    return {
      config, store, swarm, api, metrics,
      stop: async () => {
        lifetime.abort(new Error('the daemon is stopping'))
        await started.registry.close()
        await started.upstream?.close()
        await closeServer(started.server)
        await started.swarm.stop()
        await store.close()
        logger.info('daemon stopped')
      },
    }
  } catch (err) {
    lifetime.abort(err)
    await registry?.close()
    await upstream?.close()
    if (server !== undefined) await closeServer(server)
    await swarm?.stop()
    await store.close()
    throw err
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
