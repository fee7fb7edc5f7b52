import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import type { DaemonConfig } from '../../src/daemon/index.js'
import { pushTree } from '../../src/store/index.js'
import { generateSwarmKey } from '../../src/swarm/index.js'
import { registryOf, useStartedDaemons, type TestDaemon } from '../helpers/daemon-in-process.js'
import { until } from '../helpers/until.js'
import { DOCKER_REGISTRY_BIN } from '../upstream/docker-registry.js'
import { useProxiedRegistry } from '../upstream/front-proxy.js'
import { bundleDescriptionOf, unnamedImage, type WrittenImage } from './image-layout.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const NEXT = 'a source failed for this digest before the first byte: asking the next sources'
/**
 * The edges' first-chunk wait, far past the test's own timeout: an answer can only come from the
 * swarm's word that the bundle has no holder (Swarm.untilNoHolder), never from that timer.
 */
const NO_TIMER = { firstChunkTimeoutMs: 30 * 60_000 }
/** What the failed source's reason says when the swarm judged that nobody holds the object. */
const NO_HOLDER = 'the fleet has no holder of it'

/**
 * Issue 8's order: the fleet's bundles, the fleet's pull-through (blobs), this node's own
 * upstream. When the bundle a trusted peer named brings no chunk (its holder lied and was
 * banned, or no holder answers at all), the edge goes on to the next sources instead of a 404:
 * with a 404 containerd fetches from the far registry itself (or fails, with no fallback in
 * hosts.toml), and the fleet's "registry once" is lost. Before: a 404 after the first-chunk wait
 * (a blob) or after a minute of silence (a manifest).
 */
describe.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('a blob or manifest whose fleet bundle brings nothing before the first byte', () => {
  const daemons = useStartedDaemons('next-source')
  const bed = useProxiedRegistry(() => daemons.work)

  /** An image written as an OCI layout and copied, digests kept, to the registry as `next/<name>:1.0`. */
  async function imageAtRegistry (name: string, layerBytes: number): Promise<WrittenImage> {
    const image = await unnamedImage(join(daemons.work, `image-${name}`), `registry.example.com/next/${name}:1.0`, layerBytes)
    await execFileAsync('skopeo', ['copy', '--preserve-digests', '--dest-tls-verify=false', `oci:${image.dir}:1.0`, `docker://${bed.registry.host}/next/${name}:1.0`], { timeout: 60_000 })
    return image
  }

  function upstreamBlobGets (digest: string, since: number): number {
    return bed.front.log.requests.slice(since).filter(r => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`)).length
  }

  async function blobOf (url: string): Promise<{ status: number, digest: string }> {
    const res = await fetch(url)
    return { status: res.status, digest: `sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}` }
  }

  it('streams the layer from its upstream, once, when the fleet\'s only holder of it serves corrupt chunks', async () => {
    const image = await imageAtRegistry('liar', 4 * MIB)
    // Read once, at the holder's start: only the holder lies (byzantine.ts).
    process.env.SHOAL_TEST_CORRUPT_CHUNKS = '1'
    const holder = await daemons.start('holder-liar').finally(() => { delete process.env.SHOAL_TEST_CORRUPT_CHUNKS })
    await pushTree(holder.daemon.store, image.dir)
    const edge = await daemons.start('edge-liar', { upstream: bed.front.url, bootstrap: [holder.daemon.swarm.addresses()[0] ?? ''], trust: [holder.daemon.swarm.peerId] }, NO_TIMER)
    await until('the edge connected to the holder', async () => edge.daemon.swarm.peers().some(p => p.connected) ? true : undefined)

    const since = bed.front.log.requests.length
    expect(await blobOf(`${registryOf(edge.daemon)}/v2/next/liar/blobs/${image.layerDigest}?ns=${bed.front.host}`)).toEqual({ status: 200, digest: image.layerDigest })
    // The holder named its bundle for the digest (the bundle's description is honest), its chunk failed the check.
    expect(edge.logs.find(line => line.msg === NEXT)).toMatchObject({ digest: image.layerDigest, failed: 'fleet-bundle', reason: expect.stringContaining(NO_HOLDER) })
    expect(upstreamBlobGets(image.layerDigest, since)).toBe(1)
  }, 120_000)

  /**
   * An edge that holds the image's bundle description (a pull from a holder since gone) and none
   * of its objects: by default with the registry as its upstream; `config` replaces that.
   */
  async function describedHere (name: string, config: Partial<DaemonConfig> = { upstream: bed.front.url }): Promise<{ image: WrittenImage, edge: TestDaemon }> {
    const image = await imageAtRegistry(name, 4 * MIB)
    const encoded = await bundleDescriptionOf(image.dir, join(daemons.work, `store-${name}`))
    const edge = await daemons.start(`edge-${name}`, config, NO_TIMER)
    await edge.daemon.store.addBundle(encoded)
    expect(await edge.daemon.store.objectBySha256(image.layerDigest.slice('sha256:'.length))).toBeDefined()
    return { image, edge }
  }

  it('streams the layer from its upstream, once, when the bundle that names it here has no holder left', async () => {
    const { image, edge } = await describedHere('gone')
    const since = bed.front.log.requests.length
    expect(await blobOf(`${registryOf(edge.daemon)}/v2/next/gone/blobs/${image.layerDigest}?ns=${bed.front.host}`)).toEqual({ status: 200, digest: image.layerDigest })
    expect(edge.logs.find(line => line.msg === NEXT)).toMatchObject({ digest: image.layerDigest, failed: 'fleet-bundle', reason: expect.stringContaining(NO_HOLDER) })
    expect(upstreamBlobGets(image.layerDigest, since)).toBe(1)
  }, 120_000)

  it('answers a manifest by digest from its upstream when the bundle that names it here has no holder left', async () => {
    const { image, edge } = await describedHere('gone-manifest')
    const res = await fetch(`${registryOf(edge.daemon)}/v2/next/gone-manifest/manifests/${image.manifestDigest}?ns=${bed.front.host}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(res.status).toBe(200)
    expect(`sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`).toBe(image.manifestDigest)
    expect(edge.logs.find(line => line.msg === NEXT)).toMatchObject({ digest: image.manifestDigest, failed: 'fleet-bundle', reason: expect.stringContaining(NO_HOLDER) })
    expect(bed.front.log.requests.filter(r => r.method === 'GET' && r.path.endsWith(`/manifests/${image.manifestDigest}`)).length).toBe(1)
  }, 120_000)

  it('has the gateway pull the manifest and the layer through when the edge has no upstream and the bundle here has no holder left', async () => {
    // A node pulls through for its peers only in a fleet closed with a swarm key.
    const swarmKeyFile = join(daemons.work, 'swarm.key')
    await writeFile(swarmKeyFile, generateSwarmKey())
    const gateway = await daemons.start('gateway-edge-only', { upstream: bed.front.url, gateway: true, swarmKeyFile })
    const since = bed.front.log.requests.length
    const { image, edge } = await describedHere('edge-only', { swarmKeyFile, bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId] })
    await until('the edge connected to the gateway', async () => edge.daemon.swarm.peers().some(p => p.connected) ? true : undefined)
    const ns = `?ns=${bed.front.host}`

    const res = await fetch(`${registryOf(edge.daemon)}/v2/next/edge-only/manifests/${image.manifestDigest}${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(res.status).toBe(200)
    expect(`sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`).toBe(image.manifestDigest)
    expect(edge.logs.find(line => line.msg === NEXT && line.digest === image.manifestDigest)).toMatchObject({ failed: 'fleet-bundle', reason: expect.stringContaining(NO_HOLDER) })
    expect(gateway.logs.find(line => line.msg === 'pulled through for the fleet')).toMatchObject({ digest: image.manifestDigest })

    expect(await blobOf(`${registryOf(edge.daemon)}/v2/next/edge-only/blobs/${image.layerDigest}${ns}`)).toEqual({ status: 200, digest: image.layerDigest })
    expect(edge.logs.find(line => line.msg === NEXT && line.digest === image.layerDigest)).toMatchObject({ failed: 'fleet-bundle', reason: expect.stringContaining(NO_HOLDER) })
    // The registry served each once, to the gateway: the edge has no upstream.
    expect(bed.front.log.requests.slice(since).filter(r => r.method === 'GET' && r.path.endsWith(`/manifests/${image.manifestDigest}`)).length).toBe(1)
    expect(upstreamBlobGets(image.layerDigest, since)).toBe(1)
  }, 120_000)
})
