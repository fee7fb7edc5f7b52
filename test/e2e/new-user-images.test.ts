import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { fleetFirstBedUnavailable, useFleetFirstBed } from '../helpers/fleet-first-bed.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { writeTar } from '../helpers/tar-builder.js'
import { pushBlob, type RegistryProcess } from '../upstream/docker-registry.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
/** What containerd 1.6 sends with a tag or digest request (FACTS.md). */
const ACCEPT = `${DOCKER_MANIFEST}, ${DOCKER_LIST}, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, */*`
const unavailable = fleetFirstBedUnavailable()

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

/** Pushes blobs and a manifest to the registry as they are, by the distribution API (monolithic uploads). */
async function pushLayout (registry: RegistryProcess, { blobs, manifest }: { blobs: Buffer[], manifest: Buffer }, repo: string, tag: string): Promise<void> {
  for (const blob of blobs) await pushBlob(registry, repo, blob)
  const put = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
  expect(put.status, await put.text()).toBe(201)
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
  const bed = useFleetFirstBed({
    prefix: 'new-user-images',
    images: { baseBytes: 2 * MIB, seed: 91 },
    fill: async (registry, images, work) => {
      const copy = async (source: string, repo: string, extra: string[] = []): Promise<void> => {
        await execFileAsync('skopeo', ['copy', ...extra, '--dest-tls-verify=false', source, `docker://${registry.host}/${repo}`], { timeout: 60_000 })
      }
      await copy(`oci:${images.layouts.app1 ?? ''}:1.0`, 'shoal/docker:1.0', ['--format', 'v2s2'])
      await copy(`oci:${images.layouts.multi ?? ''}:1.0`, 'shoal/dockerlist:1.0', ['--all', '--format', 'v2s2'])
      await copy(`oci:${images.layouts.app2 ?? ''}:1.0`, 'shoal/bydigest:1.0')
      // Pushed as they are (skopeo would gzip the layers, and the empty one with them).
      await pushLayout(registry, await writeSmallLayers(join(work, 'small'), false), 'shoal/small', '1.0')
      await pushLayout(registry, await writeSmallLayers(join(work, 'empty'), true), 'shoal/empty', '1.0')
    },
    edges: [{}, {}],
  })

  /** The registry's own answer for a manifest: its digest and media type. */
  async function atRegistry (repo: string, reference: string): Promise<{ digest: string, type: string }> {
    const res = await fetch(`${bed.registry.url}/v2/${repo}/manifests/${reference}`, { headers: { accept: ACCEPT } })
    expect(res.status).toBe(200)
    const bytes = Buffer.from(await res.arrayBuffer())
    return { digest: sha256(bytes), type: res.headers.get('content-type') ?? '' }
  }

  /** HEAD then GET at the edge, as containerd asks (?ns=): both 200 with the same type, digest and length, and the bytes hash to the digest. */
  async function headAndGet (edge: DaemonProcess, repo: string, reference: string): Promise<{ digest: string, type: string }> {
    const url = `http://${edge.registry}/v2/${repo}/manifests/${reference}?ns=${bed.front.host}`
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
    expect(await headAndGet(bed.edges[0] as DaemonProcess, 'shoal/docker', '1.0')).toEqual(expected)
    await bed.pullThrough(bed.edges[0] as DaemonProcess, 'docker', `${bed.front.host}/shoal/docker:1.0`, 2)
  }, 120_000)

  it('a Docker manifest list by digest, never seen by the fleet: answered as a list, and containerd pulls this platform', async () => {
    const expected = await atRegistry('shoal/dockerlist', '1.0')
    expect(expected.type).toBe(DOCKER_LIST)
    expect(await headAndGet(bed.edges[1] as DaemonProcess, 'shoal/dockerlist', expected.digest)).toEqual(expected)
    await bed.pullThrough(bed.edges[1] as DaemonProcess, 'dockerlist', `${bed.front.host}/shoal/dockerlist@${expected.digest}`, 2)
  }, 120_000)

  it('an OCI image by digest, never seen by the fleet, through an edge without --upstream', async () => {
    const expected = await atRegistry('shoal/bydigest', '1.0')
    await bed.pullThrough(bed.edges[0] as DaemonProcess, 'bydigest', `${bed.front.host}/shoal/bydigest@${expected.digest}`, 3)
  }, 120_000)

  it('30 small layers through a cold edge whose neighbour holds them, and a zero-length blob: each blob once from the registry', async () => {
    const ref = `${bed.front.host}/shoal/small:1.0`
    await bed.pullThrough(bed.edges[0] as DaemonProcess, 'small-1', ref, 30)
    await bed.pullThrough(bed.edges[1] as DaemonProcess, 'small-2', ref, 30)
    const empty = sha256('')
    for (const edge of bed.edges) {
      const url = `http://${edge.registry}/v2/shoal/small/blobs/${empty}?ns=${bed.front.host}`
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
    const fetched = bed.registryBlobFetches('shoal/small')
    expect(fetched.size).toBe(32) // 30 layers, the config and the empty blob
    expect([...fetched].filter(([, count]) => count > 1)).toEqual([])
  }, 180_000)

  it('an image of no layers and the `{}` config', async () => {
    await bed.pullThrough(bed.edges[1] as DaemonProcess, 'empty', `${bed.front.host}/shoal/empty:1.0`, 0)
  }, 120_000)

  it('restarted on its store with the unit\'s settings, its gateway and the registry gone, an edge still serves what it held to containerd', async () => {
    const edge = bed.edges[0] as DaemonProcess
    expect(await edge.stop()).toBe(0)
    await bed.gateway.kill()
    await bed.registry.stop()
    // The unit's environment (its quota); the flags as the first start had them.
    const restarted = await bed.startDaemon(basename(edge.dataDir), ['--bootstrap', bed.gateway.address, '--trust', bed.gateway.peerId], { SHOAL_QUOTA: '10GiB' })
    await bed.pullThrough(restarted, 'restarted-docker', `${bed.front.host}/shoal/docker:1.0`, 2)
    await bed.pullThrough(restarted, 'restarted-small', `${bed.front.host}/shoal/small:1.0`, 30)
    expect(await shoalOk(undefined, ['--api', restarted.api, 'verify'])).toMatch(/^ok: /)
  }, 180_000)
})
