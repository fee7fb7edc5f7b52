import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, waitFor, waitForBundleWithRef, type DaemonProcess } from '../helpers/daemon-process.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from './docker-registry.js'
import { startFrontProxy, type FrontProxy } from './front-proxy.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024

async function skopeo (args: string[]): Promise<string> {
  const quoted = args.map(arg => `'${arg.replaceAll("'", "'\\''")}'`).join(' ')
  const { stdout } = await execFileAsync('sh', ['-c', `umask 022 && exec skopeo ${quoted}`], { maxBuffer: 16 * MIB, timeout: 60_000 })
  return stdout
}

/** Blob name → sha256 of its bytes: equal maps mean equal bytes, not only equal names. */
async function layoutBlobs (layout: string): Promise<Record<string, string>> {
  const dir = join(layout, 'blobs', 'sha256')
  const out: Record<string, string> = {}
  for (const name of (await readdir(dir)).sort()) out[name] = createHash('sha256').update(await readFile(join(dir, name))).digest('hex')
  return out
}

describe.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('pull-through from a real docker-registry', () => {
  let work: string
  let images: GeneratedImages
  let registry: RegistryProcess
  const daemons: DaemonProcess[] = []
  const proxies: FrontProxy[] = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-upstream-'))
    // 6 MiB of base layer: objects of several chunks, so the swarm moves real chunk tables.
    images = await generateImages(join(work, 'images'), { baseBytes: 6 * MIB, seed: 21 })
    registry = await startDockerRegistry(join(work, 'registry'))
    for (const name of ['app1', 'app2', 'multi']) {
      await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${images.layouts[name] ?? ''}:1.0`, `docker://${registry.host}/shoal/${name}:1.0`])
    }
  })

  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill()))
    await Promise.all(proxies.map(async p => await p.close()))
    await registry?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  async function daemon (name: string, upstream: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> {
    const started = await startDaemonProcess(join(work, name), ['--no-mdns', '--upstream', upstream, ...args], env)
    daemons.push(started)
    return started
  }

  async function proxy (auth?: Parameters<typeof startFrontProxy>[0]['auth']): Promise<FrontProxy> {
    const started = await startFrontProxy({ target: registry.url, auth })
    proxies.push(started)
    return started
  }

  it('shares one upstream fetch among concurrent misses, and fetches every blob once', async () => {
    const front = await proxy()
    const edge = await daemon('single-flight', front.url)
    const responses = await Promise.all(Array.from({ length: 5 }, async () => await fetch(`http://${edge.registry}/v2/shoal/app2/manifests/1.0`)))
    const digests = new Set(responses.map(r => r.headers.get('docker-content-digest')))
    for (const response of responses) expect(response.status).toBe(200)
    expect(digests.size).toBe(1)

    // Blobs are fetched when asked for; once a client has asked for all, the image is a bundle.
    const out = join(work, 'out-single-flight')
    await skopeo(['copy', '--src-tls-verify=false', `docker://${edge.registry}/shoal/app2:1.0`, `oci:${out}:1.0`])
    expect(await layoutBlobs(out)).toEqual(await layoutBlobs(images.layouts.app2 ?? ''))
    await waitForBundleWithRef(edge, `${front.host}/shoal/app2:1.0`)
    const fetched = front.log.requests.filter(r => r.method === 'GET' && r.status === 200).map(r => r.path)
    expect(fetched.filter(p => p === '/v2/shoal/app2/manifests/1.0')).toHaveLength(1)
    const blobGets = fetched.filter(p => p.includes('/blobs/'))
    expect(blobGets.length).toBeGreaterThan(0)
    expect(new Set(blobGets).size).toBe(blobGets.length)
    const metrics = await (await fetch(`http://${edge.registry}/metrics`)).text()
    const upstreamBytes = Number(/^shoal_transfer_received_bytes_total\{source="upstream"\} (\d+)$/m.exec(metrics)?.[1])
    expect(upstreamBytes).toBeGreaterThan(6 * MIB)
  })

  it('answers 404 fast for what the upstream lacks, and never asks it about another registry', async () => {
    const front = await proxy()
    const edge = await daemon('misses', front.url)
    const started = performance.now()
    const missing = await fetch(`http://${edge.registry}/v2/shoal/nothing/manifests/1.0`)
    expect(missing.status).toBe(404)
    expect((await missing.json() as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('MANIFEST_UNKNOWN')
    const blob = await fetch(`http://${edge.registry}/v2/shoal/app1/blobs/sha256:${'0'.repeat(64)}`)
    expect(blob.status).toBe(404)
    expect((await blob.json() as { errors: Array<{ code: string }> }).errors[0]?.code).toBe('BLOB_UNKNOWN')
    expect(performance.now() - started).toBeLessThan(2000)
    const asked = front.log.requests.length
    expect(asked).toBe(2)

    // containerd's mirror form for another registry: a local miss, the upstream is not asked.
    const other = await fetch(`http://${edge.registry}/v2/library/alpine/manifests/3.19?ns=docker.io`)
    expect(other.status).toBe(404)
    expect(other.headers.get('oci-namespace')).toBe('docker.io')
    await other.body?.cancel()
    // …while the upstream's own host in ?ns= is forwarded, with the repository as the path names it.
    const mirrored = await fetch(`http://${edge.registry}/v2/shoal/app1/manifests/1.0?ns=${front.host}`)
    expect(mirrored.status).toBe(200)
    expect(mirrored.headers.get('oci-namespace')).toBe(front.host)
    await mirrored.body?.cancel()
    expect(front.log.requests.slice(asked).map(r => r.path)).toContain('/v2/shoal/app1/manifests/1.0')
    expect(front.log.requests.slice(asked).some(r => r.path.includes('alpine'))).toBe(false)
  })

  it('pulls an image index through: the index, every child manifest and every blob', async () => {
    const edge = await daemon('index', registry.url)
    const out = join(work, 'out-multi')
    await skopeo(['copy', '--all', '--src-tls-verify=false', `docker://${edge.registry}/shoal/multi:1.0`, `oci:${out}:1.0`])
    expect(await layoutBlobs(out)).toEqual(await layoutBlobs(images.layouts.multi ?? ''))
    const bundle = await waitForBundleWithRef(edge, `${registry.host}/shoal/multi:1.0`)
    expect(bundle.bytes).toBeGreaterThan(6 * MIB)
  })

  it('gets a token the way Docker Hub wants it (401 challenge, token with basic credentials, retry)', async () => {
    const front = await proxy({ username: 'edge', password: 's3cret', service: 'shoal-test-registry' })
    const edge = await daemon('bearer', front.url, [], { SHOAL_UPSTREAM_USER: 'edge', SHOAL_UPSTREAM_PASSWORD: 's3cret' })
    const out = join(work, 'out-bearer')
    await skopeo(['copy', '--src-tls-verify=false', `docker://${edge.registry}/shoal/app1:1.0`, `oci:${out}:1.0`])
    expect(await layoutBlobs(out)).toEqual(await layoutBlobs(images.layouts.app1 ?? ''))
    expect(front.log.tokenRequests.length).toBeGreaterThanOrEqual(1)
    for (const token of front.log.tokenRequests) {
      expect(token).toEqual({ service: 'shoal-test-registry', scope: 'repository:shoal/app1:pull', authorization: `Basic ${Buffer.from('edge:s3cret').toString('base64')}` })
    }
    // The token is cached: only the first request of the scope was refused.
    expect(front.log.requests.filter(r => r.status === 401)).toHaveLength(1)
    expect(front.log.requests.filter(r => r.status === 200).every(r => r.authorization?.startsWith('Bearer ') === true)).toBe(true)

    const wrong = await daemon('bearer-wrong', front.url, [], { SHOAL_UPSTREAM_USER: 'edge', SHOAL_UPSTREAM_PASSWORD: 'wrong' })
    const refused = await fetch(`http://${wrong.registry}/v2/shoal/app1/manifests/1.0`)
    expect(refused.status).toBe(503)
    const body = await refused.json() as { errors: Array<{ code: string, detail?: { upstream?: string } }> }
    expect(body.errors[0]?.code).toBe('UNAVAILABLE')
    expect(body.errors[0]?.detail?.upstream).toBe('UPSTREAM_UNAUTHORIZED')
  })

  it('pulls through edge A; with the upstream gone, edge B resolves the tag through A and gets the image over the swarm', async () => {
    const a = await daemon('edge-a', registry.url)
    const out = join(work, 'out-a')
    await skopeo(['copy', '--src-tls-verify=false', `docker://${a.registry}/shoal/app1:1.0`, `oci:${out}:1.0`])
    const sourceBlobs = await layoutBlobs(images.layouts.app1 ?? '')
    expect(await layoutBlobs(out)).toEqual(sourceBlobs)
    const bundle = await waitForBundleWithRef(a, `${registry.host}/shoal/app1:1.0`)

    const b = await daemon('edge-b', registry.url, ['--bootstrap', a.address, '--trust', a.peerId])
    await waitFor('B connected to A', async () => (await b.status()).peers.find(p => p.id === a.peerId), 30_000)
    await registry.stop()

    // The upstream is down; the tag comes from A, a peer B trusts, and the blobs over the swarm.
    const outB = join(work, 'out-b')
    await skopeo(['copy', '--src-tls-verify=false', `docker://${b.registry}/shoal/app1:1.0`, `oci:${outB}:1.0`])
    expect(await layoutBlobs(outB)).toEqual(sourceBlobs)
    const fromA = (await b.status()).stats.perPeer[a.peerId]?.bytesDownloaded ?? 0
    expect(fromA).toBeGreaterThanOrEqual(bundle.bytes - 4096)
  })
})
