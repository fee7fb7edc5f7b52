import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, expect } from 'vitest'
import { generateImages, type GeneratedImages, type GenerateImagesOptions } from '../../scripts/gen-images.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'
import { startFrontProxy, type FrontProxy } from '../upstream/front-proxy.js'
import { Containerd, containerdUnavailable, tearDownWork } from './containerd.js'
import { expectCompleteAndUnpacked } from './containerd-image-check.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from './daemon-process.js'
import { startTripwire, type Tripwire } from './http-relay.js'
import { shoalOk } from './shoal-cli.js'

/** The bed's start: generating the images, filling the registry, the gateway and the edges connecting (180 s for a loaded machine). */
const START_TIMEOUT_MS = 180_000
/** How long an edge may take to be connected to the gateway once both run. */
const CONNECT_TIMEOUT_MS = 30_000

/** Why the bed cannot run here (containerd, skopeo or docker-registry missing, not root), or undefined when it can. */
export function fleetFirstBedUnavailable (): string | undefined {
  return containerdUnavailable() ??
    (existsSync('/usr/bin/skopeo') ? undefined : 'skopeo is not installed') ??
    (existsSync(DOCKER_REGISTRY_BIN) ? undefined : 'docker-registry is not installed')
}

export interface FleetFirstBedInit {
  /** The temp dir is `shoal-<prefix>-…`. */
  prefix: string
  /** The images generated into `work/images` (scripts/gen-images.ts), for `fill` and the tests. */
  images: GenerateImagesOptions
  /** Puts what the tests pull into the registry, before any daemon starts (skopeo copies, pushes). */
  fill: (registry: RegistryProcess, images: GeneratedImages, work: string) => Promise<void>
  /** One entry per edge, in order; `upstream`: that edge has its own `--upstream` (the front proxy), as the gateway has. */
  edges: Array<{ upstream?: boolean }>
}

/** What useFleetFirstBed started, for the tests of its describe block. */
export interface FleetFirstBed {
  readonly work: string
  readonly images: GeneratedImages
  /** The real docker-registry: the tests stop it to show the fleet serves without it. */
  readonly registry: RegistryProcess
  /** The recording proxy in front of the registry: every node's `--upstream`, and the registry host containerd asks for. */
  readonly front: FrontProxy
  /** Every containerd's hosts.toml `server`: a request there is a fall-back that would hide an edge's failure. */
  readonly tripwire: Tripwire
  readonly gateway: DaemonProcess
  readonly edges: DaemonProcess[]
  /** Starts `shoal daemon` in `work/name` (an edge restarted on its store: the same name) in the bed's keyed fleet, killed after the tests. */
  startDaemon: (name: string, args: string[], env?: NodeJS.ProcessEnv) => Promise<DaemonProcess>
  /** A fresh containerd (destroyed after the test) with `edge` as its only mirror for the front proxy's host, the tripwire as its server. */
  containerdFor: (edge: DaemonProcess, name: string, options?: { cri?: boolean }) => Promise<Containerd>
  /**
   * Pulls `ref` through `edge` with a fresh containerd — with `ctr images pull`, or through the
   * CRI (ImageService.PullImage, as the kubelet does; the image lands in the k8s.io namespace)
   * — and checks it complete and unpacked into `layers` snapshots, with nothing asked of the tripwire.
   */
  pullThrough: (edge: DaemonProcess, name: string, ref: string, layers: number, client?: 'ctr' | 'cri') => Promise<void>
  /** Blob digest → how many times the registry served it whole (200) so far, in `repository` or in all. */
  registryBlobFetches: (repository?: string) => Map<string, number>
}

interface Started {
  work: string
  images: GeneratedImages
  registry: RegistryProcess
  front: FrontProxy
  tripwire: Tripwire
  gateway: DaemonProcess
  edges: DaemonProcess[]
}

/**
 * Issue 8's "fleet first" bed for the calling describe block, with real containerd 1.6 and a
 * real docker-registry as the upstream: a gateway with `--upstream`, the edges `init.edges`
 * names, all in a fleet closed with a swarm key (a node pulls through for its peers only
 * there), every edge connected to the gateway before the first test. Every request that reaches
 * the registry passes a recording proxy in front of it (the registry's access log, as seen from
 * outside). Each test's containerds go after it; the rest after the block, which fails if
 * anything is left mounted under the temp dir.
 */
export function useFleetFirstBed (init: FleetFirstBedInit): FleetFirstBed {
  let started: Started | undefined
  let work: string | undefined
  let tripwire: Tripwire | undefined
  let front: FrontProxy | undefined
  let registry: RegistryProcess | undefined
  const daemons: DaemonProcess[] = []
  const containerds: Containerd[] = []

  const bed = (): Started => {
    if (started === undefined) throw new Error('useFleetFirstBed: the bed starts in beforeAll; use it inside a test')
    return started
  }

  const startDaemon = async (name: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> => {
    if (work === undefined) throw new Error('useFleetFirstBed: no temp dir yet')
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', '--swarm-key', join(work, 'swarm.key'), ...args], env)
    daemons.push(daemon)
    return daemon
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), `shoal-${init.prefix}-`))
    await shoalOk(undefined, ['keygen', 'swarm', join(work, 'swarm.key')])
    const images = await generateImages(join(work, 'images'), init.images)
    registry = await startDockerRegistry(join(work, 'registry'))
    await init.fill(registry, images, work)
    front = await startFrontProxy({ target: registry.url })
    tripwire = await startTripwire()
    const gateway = await startDaemon('gateway', ['--gateway', '--upstream', front.url])
    const edgeArgs = ['--bootstrap', gateway.address, '--trust', gateway.peerId]
    const edges: DaemonProcess[] = []
    for (const [i, edge] of init.edges.entries()) {
      edges.push(await startDaemon(`edge${i + 1}`, edge.upstream === true ? [...edgeArgs, '--upstream', front.url] : edgeArgs))
    }
    for (const edge of edges) await waitFor(`${edge.dataDir} connected to the gateway`, async () => (await edge.status()).peers.find(p => p.id === gateway.peerId && !p.banned), CONNECT_TIMEOUT_MS)
    started = { work, images, registry, front, tripwire, gateway, edges }
  }, START_TIMEOUT_MS)

  afterEach(async () => {
    await Promise.all(containerds.splice(0).map(async c => { await c.destroy() }))
  })

  afterAll(async () => {
    const registryServer = { close: async () => { await registry?.stop() } }
    expect(await tearDownWork(work, { containerds, daemons, servers: [tripwire, front, registryServer] })).toEqual([])
  })

  const containerdFor = async (edge: DaemonProcess, name: string, options: { cri?: boolean } = {}): Promise<Containerd> => {
    const { work, front, tripwire } = bed()
    const ctd = new Containerd(join(work, `containerd-${name}`), options)
    containerds.push(ctd)
    await ctd.start()
    await ctd.hosts(front.host, tripwire.url, [`http://${edge.registry}`])
    return ctd
  }

  return {
    get work () { return bed().work },
    get images () { return bed().images },
    get registry () { return bed().registry },
    get front () { return bed().front },
    get tripwire () { return bed().tripwire },
    get gateway () { return bed().gateway },
    get edges () { return bed().edges },
    startDaemon,
    containerdFor,
    pullThrough: async (edge, name, ref, layers, client = 'ctr') => {
      const ctd = await containerdFor(edge, name, { cri: client === 'cri' })
      if (client === 'cri') {
        await ctd.criPull(ref)
      } else {
        const pulled = await ctd.pull(ref)
        expect(pulled.code, `${pulled.stderr}\n${edge.logs().slice(-4000)}`).toBe(0)
      }
      await expectCompleteAndUnpacked(ctd, ref, { layers, namespace: client === 'cri' ? 'k8s.io' : undefined })
      expect(bed().tripwire.requests).toEqual([])
    },
    registryBlobFetches: (repository) => {
      const counts = new Map<string, number>()
      for (const request of bed().front.log.requests) {
        const match = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(request.path)
        if (request.method !== 'GET' || request.status !== 200 || match?.[2] === undefined) continue
        if (repository !== undefined && match[1] !== repository) continue
        counts.set(match[2], (counts.get(match[2]) ?? 0) + 1)
      }
      return counts
    },
  }
}
