import { join } from 'node:path'
import type { Server } from 'node:http'
import { readFile } from 'node:fs/promises'
import {
  AccessPolicy, closeListener, createControlApi, createHttpApi, createMetrics, createNodeHandler, createHttpServer, listenOn, readStatus, summarizeFleet,
  formatListenAddress, type HttpApi, type ListenAddress, type Metrics, type ServingAddresses, type StatusResponse,
} from '../http/index.js'
import { openStore, type Store } from '../store/index.js'
import { createSwarm, type Swarm } from '../swarm/index.js'
import { createUpstream, type Upstream } from '../upstream/index.js'
import { swarmBlobSource } from './blob-source.js'
import { createContentSources } from './content-sources.js'
import { ImageAssembler } from './image-assembler.js'
import { PullThrough } from './pull-through.js'
import { corruptingStore } from './byzantine.js'
import { daemonLabels, DEFAULT_DIRECT_IO } from './config.js'
import { ConfigError, flagOf, settingLabel, settingOf, type DaemonConfig } from '../settings/index.js'
import { AddressInUseError } from './errors.js'
import { loadOrCreatePeerKey } from './identity.js'
import { formatLabels } from '../labels/index.js'
import { PreheatKeeper } from './preheat-keeper.js'
import { CpuShortness, eventLoopDelay } from './cpu-shortness.js'
import { createQuotaKeeper } from './quota-keeper.js'
import { createReadiness } from './readiness.js'
import { REGISTRY_DRAIN_MS, RequestDrain } from './request-drain.js'
import { nodeStatusSource } from './node-status.js'
import { SHOAL_VERSION } from '../version.js'
import type { Logger } from './logger.js'

export interface Daemon {
  readonly config: DaemonConfig
  readonly store: Store
  readonly swarm: Swarm
  /** Where each listener is (ports are real even when 0 was asked for). */
  readonly listeners: DaemonListeners
  readonly metrics: Metrics
  stop: () => Promise<void>
}

export interface DaemonListeners {
  /** The control API (the CLI's). */
  api: ListenAddress
  /** The registry mirror. */
  registry: ListenAddress
  /** `/metrics` and the status page, when on their own address. */
  metrics?: ListenAddress
}

interface Listener { server: Server, address: ListenAddress | undefined }

/** Smallest token we accept: a guessable one would make the TCP control API open. */
const MIN_TOKEN_LENGTH = 16

/**
 * Builds the pieces and starts them in order — store, swarm, HTTP — and stops them in the
 * reverse order, so nothing is served from a store that is closing.
 */
/** What the operator does not set but a test may shorten (the operator's settings are DaemonConfig). */
export interface DaemonInit {
  /** How long one-blob bundles stay once their image's bundle holds their blobs (ImageAssemblerInit.foldAfterMs: FOLD_BLOB_BUNDLES_AFTER_MS unless given). */
  foldBlobBundlesAfterMs?: number
  /**
   * The registry's wait for an arriving blob's first chunk (HttpApiInit.firstChunkTimeoutMs:
   * FIRST_CHUNK_TIMEOUT_MS unless given): a test lengthens it to show that an answer came from
   * the swarm's word, not from this timer.
   */
  firstChunkTimeoutMs?: number
  /** How long a registry request looks for a holder of a bundle it lacks (blob-source.ts HTTP_MANIFEST_SEARCH_TIMEOUT_MS unless given), likewise. */
  manifestSearchTimeoutMs?: number
  /** How long a held tag is answered before it is re-resolved, at the upstream or with the fleet (TAG_REVALIDATE_AFTER_MS unless given): a test that moves a tag sets 0. */
  tagRevalidateAfterMs?: number
}

export async function startDaemon (config: DaemonConfig, logger: Logger, init: DaemonInit = {}): Promise<Daemon> {
  const store = await openStore({ dir: config.dataDir, quotaBytes: config.quotaBytes, directIo: config.directIo ?? DEFAULT_DIRECT_IO })
  if (store.directIo.refused !== undefined) logger.info('the data directory\'s filesystem refuses O_DIRECT: pulled chunks are written through the page cache', { dataDir: config.dataDir, reason: store.directIo.refused })
  // A refusal after that (a remount, an overlay that took the probe's file but not others): the
  // store carries on through the page cache, the chunk that met it included.
  store.on('direct-io:refused', ({ code, op, path }) => {
    logger.warn('the data directory\'s filesystem refused O_DIRECT after taking it at start: pulled chunks are written through the page cache from now on, and pulls carry on', { dataDir: config.dataDir, code, op, path })
  })
  // Every write path adds a bundle or completes an object; the keeper evicts after each.
  const quota = createQuotaKeeper(store, logger.child({ module: 'quota' }))
  let swarm: Swarm | undefined
  const listeners: Listener[] = []
  /** The registry mirror's listener and its requests under way, drained before a stop cuts them. */
  let mirror: { server: Server, requests: RequestDrain } | undefined
  let registry: HttpApi | undefined
  let upstream: Upstream | undefined
  let assembler: ImageAssembler | undefined
  let preheats: PreheatKeeper | undefined
  /** The content sources' writes that follow an answer (a manifest answered from memory). */
  let sourceWrites: { close: () => Promise<void> } | undefined
  const lifetime = new AbortController()
  const metrics = createMetrics()
  const labels = daemonLabels(config)
  // Tight holder sets only while short of CPU (scheduler.ts): the event loop's delay says when.
  const loopDelay = eventLoopDelay()
  const cpuShortness = new CpuShortness(loopDelay, {
    onChange: (short, delayMs) => {
      // A change is rare (hysteresis over 10 s of windows) and says why a pull's shape changed.
      logger.info(short ? 'short of CPU: requests kept to a few edge holders at once' : 'CPU to spare again: every holder asked', { loopDelayMs: Math.round(delayMs) })
    },
  })
  /** Stops whatever was started, in the reverse order: after a failed start as after a good one. */
  const shutdown = async (reason: unknown): Promise<void> => {
    lifetime.abort(reason)
    await registry?.close()
    // A manifest answered from memory is still being written: its write ends before the store closes.
    await sourceWrites?.close()
    swarm?.serveFleet(undefined)
    swarm?.serveFleetBlobs(undefined)
    await upstream?.close()
    await assembler?.close()
    await preheats?.close()
    await closeAll(listeners)
    await swarm?.stop()
    await quota.close()
    await store.close()
    loopDelay.stop()
  }
  try {
    const privateKey = await loadOrCreatePeerKey(config.dataDir)
    const swarmKey = config.swarmKeyFile !== undefined ? await readSetting(config.swarmKeyFile, 'swarm key file', 'swarmKeyFile') : undefined
    const token = config.apiTokenFile !== undefined ? await readToken(config.apiTokenFile) : undefined
    // An open fleet also turns pull-through for the fleet off both ways (content-sources.ts
    // pullThroughForPeers): said at start, as a gateway deployed without the optional key saw
    // every edge's miss go to the registry with nothing saying why.
    if (swarmKey === undefined) logger.warn(`no swarm key: any peer that reaches this node's libp2p port may join the fleet, so this node neither asks the fleet's nodes with an upstream to pull its misses through nor pulls through for them with its own; make one with \`shoal keygen swarm FILE\` and give it to every node with ${settingLabel('swarmKeyFile')}`)
    const byzantine = process.env.SHOAL_TEST_CORRUPT_CHUNKS === '1'
    if (byzantine) logger.warn('SHOAL_TEST_CORRUPT_CHUNKS=1: this node serves corrupt chunks, for fault tests only')
    swarm = createSwarm({ store: byzantine ? corruptingStore(store) : store, preheats: store, logger: logger.child({ module: 'swarm' }) }, {
      privateKey,
      listen: config.listen,
      lanePort: config.lanePort,
      laneMinRateBytesPerSecond: config.laneMinRateBytesPerSecond,
      bootstrap: config.bootstrap,
      mdns: config.mdns,
      swarmKey,
      gateway: config.gateway,
      maxUploadBytesPerSecond: config.maxUploadBytesPerSecond,
      maxDownloadBytesPerSecond: config.maxDownloadBytesPerSecond,
      trust: config.trust,
      status: {
        source: nodeStatusSource({ store, swarm: () => swarm }, { labels, version: SHOAL_VERSION, dataDir: config.dataDir }),
        intervalMs: config.statusIntervalMs,
      },
      banFile: join(config.dataDir, 'bans.json'),
      scheduler: { cpuShort: now => cpuShortness.short(now) },
    })
    try {
      await swarm.start()
    } catch (err) {
      throw listenFailure(err, config.listen) ?? err
    }
    // Once, so an operator can see whose tags this node will follow (and why a tag does not move).
    logger.info('ref records are accepted from these publishers', { trusted: swarm.trustedPublishers, fromTrust: config.trust.length, gateway: config.gateway })
    const publishing = swarm
    // Every ref set here (push, registry push, pull-through) is signed and sent to the fleet;
    // neighbours apply it only if they trust this node's key (--trust, usually the gateway's).
    store.on('ref:set', ref => {
      // A ref set here moves a tag for every node that trusts this one: always worth a line.
      if (ref.previous !== ref.bundleId) logger.info(ref.previous === undefined ? 'ref set' : 'ref moved', { ref: ref.ref, bundleId: ref.bundleId, previous: ref.previous, manifestDigest: ref.manifestDigest, local: ref.local })
      // A ref made from what the fleet said is not this node's to sign (RefTarget.local).
      if (ref.local === true) return
      publishing.publishRefs([ref]).catch((err: unknown) => { logger.warn('publishing a ref record failed', { ref: ref.ref, err }) })
    })
    store.on('ref:updated', update => {
      if (update.previous !== update.bundleId) logger.info('ref moved by a trusted record', { ref: update.ref, bundleId: update.bundleId, previous: update.previous, publisher: update.publisher })
    })
    // Said once at info: an operator learns the bound is reached; each later one is at debug
    // and counted (Store.heardRefsEvicted).
    let evictionSaid = false
    store.on('ref:evicted', evicted => {
      if (evictionSaid) {
        logger.debug('ref heard from another publisher evicted', evicted)
        return
      }
      evictionSaid = true
      logger.info('refs heard from other publishers are over their bound: the oldest go, with their records and history (said once; each one is counted)', evicted)
    })
    metrics.watchSwarm(swarm)
    metrics.watchStore(store)
    preheats = new PreheatKeeper({ store, swarm, logger: logger.child({ module: 'preheat' }), labels, onCounts: counts => { metrics.preheats(counts) } })
    await preheats.start()
    const running = swarm
    const keeper = preheats
    metrics.watchFleet(async () => summarizeFleet(running.fleetView(), await store.listBundles(), { maxNodes: 0, preheats: keeper.status() }))
    // Filled in once the listeners are up: status names them (an operator's hosts.toml and scrape config point there).
    const serving: ServingAddresses = {}
    const control = createControlApi({ store, swarm, preheats, logger: logger.child({ module: 'control' }) }, { gateway: config.gateway, labels, maxPushBytes: config.quotaBytes, serving })
    if (config.upstream !== undefined) {
      const credentials = config.upstreamUser !== undefined && config.upstreamPassword !== undefined ? { username: config.upstreamUser, password: config.upstreamPassword } : undefined
      upstream = createUpstream({ store }, { url: config.upstream, credentials, onBytesReceived: bytes => { metrics.upstreamBytes(bytes) } })
    }
    const httpLogger = logger.child({ module: 'http' })
    assembler = new ImageAssembler({
      store,
      logger: httpLogger,
      foldAfterMs: init.foldBlobBundlesAfterMs,
      onAssembled: image => {
        metrics.pullThroughDuration.observe(image.seconds)
        running.announce(image.bundleId).catch((err: unknown) => { logger.warn('announcing a pulled-through image failed', { bundleId: image.bundleId, err }) })
      },
    })
    const pullThrough = upstream === undefined ? undefined : new PullThrough({ store, upstream, assembler, logger: httpLogger, lifetime: lifetime.signal, tagRevalidateAfterMs: init.tagRevalidateAfterMs })
    const blobSource = swarmBlobSource(store, swarm, logger, lifetime.signal, { manifestSearchTimeoutMs: init.manifestSearchTimeoutMs })
    const sources = createContentSources({ store, swarm, blobSource, pullThrough, pullThroughForPeers: swarmKey !== undefined, assembler, logger: logger.child({ module: 'sources' }), lifetime: lifetime.signal, tagRevalidateAfterMs: init.tagRevalidateAfterMs })
    sourceWrites = sources
    swarm.serveFleet(sources.respond)
    swarm.serveFleetBlobs(sources.respondBlob)
    registry = createHttpApi({ store, blobSource, sources }, {
      allowPush: config.allowPush,
      logger: httpLogger,
      // A name without a registry host means the upstream's (`library/alpine` → docker.io/library/alpine).
      defaultRegistry: upstream?.namespace,
      firstChunkTimeoutMs: init.firstChunkTimeoutMs,
    })
    // With no token and no networks named, only this machine may push (its own skopeo, a CI job).
    const pushNetworks = config.pushNetworks.length > 0 || token !== undefined ? config.pushNetworks : ['127.0.0.0/8', '::1/128']
    const access = new AccessPolicy({ token, allowedHosts: config.allowedHosts, pushNetworks })
    const components = { store, swarm, preheats: keeper }
    const status = async (): Promise<StatusResponse> => await readStatus(components, { gateway: config.gateway, labels, serving })
    const ready = createReadiness(components, { gateway: config.gateway, bootstrap: config.bootstrap })
    const open = async (address: ListenAddress, handler: ReturnType<typeof createNodeHandler>, job: keyof typeof LISTENER_JOBS): Promise<ListenAddress> => {
      const listener: Listener = { server: createHttpServer(handler), address: undefined }
      listeners.push(listener)
      if (job === 'registry') mirror = { server: listener.server, requests: new RequestDrain(listener.server) }
      try {
        listener.address = await listenOn(listener.server, address, httpLogger)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err
        throw new AddressInUseError(LISTENER_JOBS[job].name, formatListenAddress(address), LISTENER_JOBS[job].remedy, { cause: err })
      }
      return listener.address
    }
    const separateMetrics = config.metrics !== undefined
    const registryAddress = await open(config.registry, createNodeHandler({
      registry: registry.handler, access, logger: httpLogger, metrics, ready,
      ...(separateMetrics ? {} : { status }),
    }, { allowPush: config.allowPush }), 'registry')
    const metricsAddress = config.metrics !== undefined ? await open(config.metrics, createNodeHandler({ metrics, status, ready, access, logger: httpLogger }), 'metrics') : undefined
    const apiAddress = await open(config.api, createNodeHandler({ control, access, logger: httpLogger }, { controlOverTcp: config.api.kind === 'tcp' }), 'api')
    const addresses: DaemonListeners = { api: apiAddress, registry: registryAddress, ...(metricsAddress !== undefined ? { metrics: metricsAddress } : {}) }
    serving.registry = formatListenAddress(registryAddress)
    if (metricsAddress !== undefined) serving.metrics = formatListenAddress(metricsAddress)
    logger.info('daemon started', {
      peerId: swarm.peerId, addresses: swarm.addresses(), api: formatListenAddress(apiAddress), registry: formatListenAddress(registryAddress),
      metrics: metricsAddress !== undefined ? formatListenAddress(metricsAddress) : undefined, gateway: config.gateway, upstream: upstream?.url.origin,
      labels: formatLabels(labels), directIo: store.directIo.on,
    })
    return {
      config, store, swarm, listeners: addresses, metrics,
      stop: async () => {
        // containerd's downloads under way finish first (a cut layer sent it to the upstream
        // registry), with the swarm and every source still running; new connections are refused.
        if (mirror !== undefined) {
          const left = await mirror.requests.drain(mirror.server, REGISTRY_DRAIN_MS)
          if (left > 0) logger.warn('stopping with registry responses still under way: they are cut', { responses: left, waitedMs: REGISTRY_DRAIN_MS })
        }
        await shutdown(new Error('the daemon is stopping'))
        logger.info('daemon stopped')
      },
    }
  } catch (err) {
    await shutdown(err)
    throw err
  }
}

/** Each HTTP listener by its job, as an address-in-use error names it, with the setting that moves it. */
const LISTENER_JOBS = {
  registry: { name: 'the registry mirror', remedy: `give ${settingLabel('registry')} another address and name that one in containerd's hosts.toml` },
  metrics: { name: 'the metrics listener', remedy: `give ${settingLabel('metrics')} another address` },
  api: { name: 'the control API', remedy: `give ${settingLabel('api')} another address` },
} as const

/**
 * libp2p's refusal of a listen address that is taken, as an operator can act on: its own text
 * names a setting of libp2p's (`transportManager.faultTolerance`) and carries a stack trace.
 */
function listenFailure (err: unknown, listen: readonly string[]): AddressInUseError | undefined {
  if (!(err instanceof Error) || err.name !== 'UnsupportedListenAddressesError' || !err.message.includes('EADDRINUSE')) return undefined
  const lines = err.message.split('\n').map(line => line.trim())
  const taken = listen.filter(address => lines.some(line => line.startsWith(`${address}: `) && line.includes('EADDRINUSE')))
  return new AddressInUseError('libp2p', taken.length > 0 ? taken.join(', ') : listen.join(', '), `give ${settingLabel('listen')} another address (the data lane takes its port + 1 unless ${flagOf(settingOf('lanePort'))} says otherwise)`, { cause: err })
}

async function closeAll (listeners: Listener[]): Promise<void> {
  // A drained listener no longer listens, but may still hold the responses it was not let finish.
  await Promise.all(listeners.map(async l => { if (l.server.listening) await closeListener(l.server, l.address); else l.server.closeAllConnections() }))
}

/** Reads a file a setting names; an error names the setting, so the operator knows which one to fix. */
async function readSetting (path: string, what: string, field: keyof DaemonConfig): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (err) {
    throw new ConfigError(`cannot read the ${what} ${path}, given by ${settingLabel(field)}: ${(err as Error).message}`, { cause: err })
  }
}

async function readToken (path: string): Promise<string> {
  const token = (await readSetting(path, 'API token file', 'apiTokenFile')).toString('utf8').trim()
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new ConfigError(`the API token in ${path} must be one word of at least ${MIN_TOKEN_LENGTH} characters; make one with \`head -c 32 /dev/urandom | base64 > ${path}\``)
  }
  return token
}
