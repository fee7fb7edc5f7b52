import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { Containerd, containerdUnavailable, tearDownWork } from '../helpers/containerd.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { startTripwire, type Tripwire } from '../helpers/http-relay.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { writeTar } from '../helpers/tar-builder.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'
import { startFrontProxy, type FrontProxy } from '../upstream/front-proxy.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
/** What containerd 1.6 sends with a tag or digest request (FACTS.md). */
const ACCEPT = `${DOCKER_MANIFEST}, ${DOCKER_LIST}, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*`
const unavailable = containerdUnavailable() ??
  (existsSync('/usr/bin/skopeo') ? undefined : 'skopeo is not installed') ??
  (existsSync(DOCKER_REGISTRY_BIN) ? undefined : 'docker-registry is not installed')

function sha256 (bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/**
 * The blobs and manifest of one OCI image with 30 layers of a few KiB and a zero-length blob
 * beside them, or, with `emptyConfig`, the `{}` config and no layers (an artifact's shape).
 */
async function writeSmallLayers (dir: string, emptyConfig: boolean): Promise<{ blobs: Buffer[], manifest: Buffer }> {
  await mkdir(dir, { recursive: true })
  const written: Buffer[] = []
  const put = async (bytes: Buffer): Promise<{ digest: string, size: number }> => {
    const digest = sha256(bytes)
    written.push(bytes)
    return { digest, size: bytes.length }
  }
  const layers: Array<{ mediaType: string, digest: string, size: number }> = []
  if (!emptyConfig) {
    for (let i = 0; i < 30; i++) {
      const tarPath = join(dir, `layer-${i}.tar`)
      await writeTar(tarPath, [{ name: `small/${i}.txt`, content: Buffer.from(`layer ${i} `.repeat(200 + i * 37)) }])
      layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...await put(await readFile(tarPath)) })
      await rm(tarPath)
    }
    // A zero-length blob in the repository, named by no manifest: containerd 1.6 refuses a
    // descriptor of size 0 itself ("reports content size of zero"), from any registry, so it is
    // asked for over HTTP.
    await put(Buffer.alloc(0))
  }
  const config = emptyConfig
    ? Buffer.from('{}')
    : Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(l => l.digest) }, config: {} }))
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...await put(config) }, layers }))
  return { blobs: written, manifest }
}

/**
 * The audit of 2026-12-07 (issue 8, a new user's path), items 2, 3 and 5 of its brief: pulls
 * by digest of images the fleet never saw, Docker schema2 manifests and manifest lists (as
 * `docker push` and `skopeo --format v2s2` make them), and many small layers with a zero-length
 * one, through edges started as shipped (the CLI, no `--upstream` on the edges) with a gateway
 * whose upstream is a real docker-registry, and real containerd whose hosts.toml `server` is a
 * tripwire (a fall-back would hide a failure of the edge). These are guards: they passed on
 * the code they were written against.
 */
describe.skipIf(unavailable !== undefined)(`a new user's images through an edge without --upstream${unavailable !== undefined ? ` (skipped: ${unavailable})` : ''}`, () => {
  let work: string
  let images: GeneratedImages
  let registry: RegistryProcess
  let front: FrontProxy
  let tripwire: Tripwire
  let gateway: DaemonProcess
  let edges: DaemonProcess[] = []
  const daemons: DaemonProcess[] = []
  const containerds: Containerd[] = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-new-user-images-'))
    await shoalOk(undefined, ['keygen', 'swarm', join(work, 'swarm.key')])
    images = await generateImages(join(work, 'images'), { baseBytes: 2 * MIB, seed: 91 })
    registry = await startDockerRegistry(join(work, 'registry'))
    const copy = async (source: string, repo: string, extra: string[] = []): Promise<void> => {
      await execFileAsync('skopeo', ['copy', ...extra, '--dest-tls-verify=false', source, `docker://${registry.host}/${repo}`], { timeout: 60_000 })
    }
    await copy(`oci:${images.layouts.app1 ?? ''}:1.0`, 'shoal/docker:1.0', ['--format', 'v2s2'])
    await copy(`oci:${images.layouts.multi ?? ''}:1.0`, 'shoal/dockerlist:1.0', ['--all', '--format', 'v2s2'])
    await copy(`oci:${images.layouts.app2 ?? ''}:1.0`, 'shoal/bydigest:1.0')
    // Pushed as they are (skopeo would gzip the layers, and the empty one with them).
    await pushLayout(await writeSmallLayers(join(work, 'small'), false), 'shoal/small', '1.0')
    await pushLayout(await writeSmallLayers(join(work, 'empty'), true), 'shoal/empty', '1.0')
    front = await startFrontProxy({ target: registry.url })
    tripwire = await startTripwire()
    gateway = await startDaemon('gateway', ['--gateway', '--upstream', front.url])
    const edgeArgs = ['--bootstrap', gateway.address, '--trust', gateway.peerId]
    edges = [await startDaemon('edge1', edgeArgs), await startDaemon('edge2', edgeArgs)]
    for (const edge of edges) await waitFor(`${edge.dataDir} connected to the gateway`, async () => (await edge.status()).peers.find(p => p.id === gateway.peerId && !p.banned), 30_000)
  }, 180_000)

  afterEach(async () => {
    await Promise.all(containerds.splice(0).map(async c => { await c.destroy() }))
  })

  afterAll(async () => {
    const registryServer = { close: async () => { await registry?.stop() } }
    expect(await tearDownWork(work, { containerds, daemons, servers: [tripwire, front, registryServer] })).toEqual([])
  })

  /** Pushes blobs and a manifest to the registry as they are, by the distribution API (monolithic uploads). */
  async function pushLayout ({ blobs, manifest }: { blobs: Buffer[], manifest: Buffer }, repo: string, tag: string): Promise<void> {
    for (const blob of blobs) {
      const started = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' })
      expect(started.status).toBe(202)
      const location = new URL(started.headers.get('location') ?? '', registry.url)
      location.searchParams.set('digest', sha256(blob))
      const put = await fetch(location, { method: 'PUT', body: blob, headers: { 'content-type': 'application/octet-stream' } })
      expect(put.status, await put.text()).toBe(201)
    }
    const put = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
    expect(put.status, await put.text()).toBe(201)
  }

  async function startDaemon (name: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', '--swarm-key', join(work, 'swarm.key'), ...args])
    daemons.push(daemon)
    return daemon
  }

  /** A fresh containerd with `edge` as its only mirror and the tripwire as its server; pulls `ref` and checks it complete and unpacked. */
  async function pull (edge: DaemonProcess, name: string, ref: string, layers: number): Promise<void> {
    const ctd = new Containerd(join(work, `containerd-${name}`))
    containerds.push(ctd)
    await ctd.start()
    await ctd.hosts(front.host, tripwire.url, [`http://${edge.registry}`])
    const pulled = await ctd.pull(ref)
    expect(pulled.code, `${pulled.stderr}\n${edge.logs().slice(-4000)}`).toBe(0)
    const check = await ctd.ctrOk(['images', 'check'])
    const line = check.split('\n').find(l => l.startsWith(`${ref} `)) ?? ''
    expect(line, check).toMatch(/\bcomplete \((\d+)\/\1\)/)
    const snapshots = (await ctd.ctrOk(['snapshots', 'ls'])).trim().split('\n').slice(1)
    expect(snapshots.filter(s => /\bCommitted\b/.test(s)), snapshots.join('\n')).toHaveLength(layers)
    expect(tripwire.requests).toEqual([])
  }

  /** The registry's own answer for a manifest: its digest and media type. */
  async function atRegistry (repo: string, reference: string): Promise<{ digest: string, type: string }> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT } })
    expect(res.status).toBe(200)
    const bytes = Buffer.from(await res.arrayBuffer())
    return { digest: sha256(bytes), type: res.headers.get('content-type') ?? '' }
  }

  /** HEAD then GET at the edge, as containerd asks (?ns=): both 200 with the same type, digest and length, and the bytes hash to the digest. */
  async function headAndGet (edge: DaemonProcess, repo: string, reference: string): Promise<{ digest: string, type: string }> {
    const url = `http://${edge.registry}/v2/${repo}/manifests/${reference}?ns=${front.host}`
    const head = await fetch(url, { method: 'HEAD', headers: { accept: ACCEPT } })
    const get = await fetch(url, { headers: { accept: ACCEPT } })
    const bytes = Buffer.from(await get.arrayBuffer())
    expect([head.status, get.status]).toEqual([200, 200])
    for (const header of ['content-type', 'docker-content-digest', 'content-length']) expect(head.headers.get(header), header).toBe(get.headers.get(header))
    expect(get.headers.get('docker-content-digest')).toBe(sha256(bytes))
    expect(Number(get.headers.get('content-length'))).toBe(bytes.length)
    return { digest: sha256(bytes), type: get.headers.get('content-type') ?? '' }
  }

  it('a Docker schema2 image by tag: the edge answers its media type and digest as the registry does, HEAD and GET agree, containerd pulls', async () => {
    const expected = await atRegistry('shoal/docker', '1.0')
    expect(expected.type).toBe(DOCKER_MANIFEST)
    expect(await headAndGet(edges[0] as DaemonProcess, 'shoal/docker', '1.0')).toEqual(expected)
    await pull(edges[0] as DaemonProcess, 'docker', `${front.host}/shoal/docker:1.0`, 2)
  }, 120_000)

  it('a Docker manifest list by digest, never seen by the fleet: answered as a list, and containerd pulls this platform', async () => {
    const expected = await atRegistry('shoal/dockerlist', '1.0')
    expect(expected.type).toBe(DOCKER_LIST)
    expect(await headAndGet(edges[1] as DaemonProcess, 'shoal/dockerlist', expected.digest)).toEqual(expected)
    await pull(edges[1] as DaemonProcess, 'dockerlist', `${front.host}/shoal/dockerlist@${expected.digest}`, 2)
  }, 120_000)

  it('an OCI image by digest, never seen by the fleet, through an edge without --upstream', async () => {
    const expected = await atRegistry('shoal/bydigest', '1.0')
    await pull(edges[0] as DaemonProcess, 'bydigest', `${front.host}/shoal/bydigest@${expected.digest}`, 3)
  }, 120_000)

  it('30 small layers through a cold edge whose neighbour holds them, and a zero-length blob: each blob once from the registry', async () => {
    const ref = `${front.host}/shoal/small:1.0`
    await pull(edges[0] as DaemonProcess, 'small-1', ref, 30)
    await pull(edges[1] as DaemonProcess, 'small-2', ref, 30)
    const empty = sha256('')
    for (const edge of edges) {
      const url = `http://${edge.registry}/v2/shoal/small/blobs/${empty}?ns=${front.host}`
      const get = await fetch(url)
      expect([get.status, get.headers.get('content-length'), get.headers.get('docker-content-digest')]).toEqual([200, '0', empty])
      expect((await get.arrayBuffer()).byteLength).toBe(0)
      // A HEAD is not pulled through (a pusher's question); once the GET's blob is stored it is held.
      const head = await waitFor('the empty blob held', async () => {
        const res = await fetch(url, { method: 'HEAD' })
        return res.status === 200 ? res : undefined
      }, 30_000)
      expect(head.headers.get('content-length')).toBe('0')
    }
    const fetched = new Map<string, number>()
    for (const request of front.log.requests) {
      const match = /\/shoal\/small\/blobs\/(sha256:[0-9a-f]{64})$/.exec(request.path)
      if (request.method === 'GET' && request.status === 200 && match?.[1] !== undefined) fetched.set(match[1], (fetched.get(match[1]) ?? 0) + 1)
    }
    expect(fetched.size).toBe(32) // 30 layers, the config and the empty blob
    expect([...fetched].filter(([, count]) => count > 1)).toEqual([])
  }, 180_000)

  it('an image of no layers and the `{}` config', async () => {
    await pull(edges[1] as DaemonProcess, 'empty', `${front.host}/shoal/empty:1.0`, 0)
  }, 120_000)

  it('restarted on its store with the unit\'s settings, its gateway and the registry gone, an edge still serves what it held to containerd', async () => {
    const edge = edges[0] as DaemonProcess
    expect(await edge.stop()).toBe(0)
    await gateway.kill()
    await registry.stop()
    // The unit's environment (its quota); the flags as the first start had them.
    const restarted = await startDaemonProcess(edge.dataDir, ['--no-mdns', '--swarm-key', join(work, 'swarm.key'), '--bootstrap', gateway.address, '--trust', gateway.peerId], { SHOAL_QUOTA: '10GiB' })
    daemons.push(restarted)
    await pull(restarted, 'restarted-docker', `${front.host}/shoal/docker:1.0`, 2)
    await pull(restarted, 'restarted-small', `${front.host}/shoal/small:1.0`, 30)
    expect(await shoalOk(undefined, ['--api', restarted.api, 'verify'])).toMatch(/^ok: /)
  }, 180_000)
})
