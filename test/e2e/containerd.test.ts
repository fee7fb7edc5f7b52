import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, topDigest, type GeneratedImages } from '../../scripts/gen-images.js'
import { Containerd, containerdUnavailable, tearDownWork } from '../helpers/containerd.js'
import { expectCompleteAndUnpacked } from '../helpers/containerd-image-check.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { startHttpRelay, startTripwire, type HttpRelay, type Tripwire } from '../helpers/http-relay.js'
import { shoalOk } from '../helpers/shoal-cli.js'

const execFileAsync = promisify(execFile)

const REGISTRY = 'registry.example.com'
const MIB = 1024 * 1024
const unavailable = containerdUnavailable() ?? (existsSync('/usr/bin/skopeo') ? undefined : 'skopeo is not installed')

interface Revision { ref: string, bundleId: string, manifestDigest?: string, publisher?: string }

/**
 * Issue #4: a real containerd (its own root, state and socket under a temp dir) pulls through
 * an edge daemon named as the only mirror in its hosts.toml. The hosts.toml `server` is a
 * tripwire: containerd falling back to it fails the test.
 */
describe.skipIf(unavailable !== undefined)(`containerd pulling through an edge daemon${unavailable !== undefined ? ` (skipped: ${unavailable})` : ''}`, () => {
  let work: string
  let images: GeneratedImages
  let gateway: DaemonProcess
  let tripwire: Tripwire
  const daemons: DaemonProcess[] = []
  const relays: HttpRelay[] = []
  let containerd: Containerd | undefined

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-e2e-ctd-'))
    images = await generateImages(join(work, 'images'), { baseBytes: 6 * MIB, seed: 44 })
    gateway = await startDaemon('gateway', ['--gateway', '--allow-push'])
    tripwire = await startTripwire()
  })

  // A fresh containerd per test, so no blob is already in its content store.
  afterEach(async () => {
    await containerd?.destroy()
    containerd = undefined
    await Promise.all(relays.splice(0).map(async r => { await r.close() }))
  })

  afterAll(async () => {
    expect(await tearDownWork(work, { containerd, daemons, servers: [tripwire] })).toEqual([])
  })

  async function startDaemon (name: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', ...args])
    daemons.push(daemon)
    return daemon
  }

  async function startEdge (name: string): Promise<DaemonProcess> {
    // --trust: the edge follows the gateway's tags (a bootstrap peer is not trusted by itself).
    return await startDaemon(name, ['--bootstrap', gateway.address, '--trust', gateway.peerId])
  }

  /** containerd whose hosts.toml for registry.example.com names `mirror` only, the tripwire as `server`. */
  async function startContainerd (name: string, mirror: string): Promise<Containerd> {
    containerd = new Containerd(join(work, name))
    await containerd.start()
    await containerd.hosts(REGISTRY, tripwire.url, [mirror])
    tripwire.requests.splice(0)
    return containerd
  }

  /** Waits until the gateway's signed record for `ref` has reached `edge`. */
  async function waitForRecord (edge: DaemonProcess, ref: string, bundleId?: string): Promise<Revision> {
    return await waitFor(`the record of ${ref} on ${edge.dataDir}`, async () => {
      const revisions = await edge.request<Revision[]>('GET', `/api/v1/revisions?ref=${encodeURIComponent(ref)}`)
      return revisions.find(r => r.publisher === gateway.peerId && (bundleId === undefined || r.bundleId === bundleId))
    }, 30_000)
  }


  /** HEAD of a blob on a daemon's registry API, in containerd's mirror form: 200 only when held whole. */
  async function blobStatus (daemon: DaemonProcess, repository: string, digest: string): Promise<number> {
    const response = await fetch(`http://${daemon.registry}/v2/${repository}/blobs/${digest}?ns=${REGISTRY}`, { method: 'HEAD' })
    return response.status
  }

  async function imageLine (ctd: Containerd, ref: string): Promise<string | undefined> {
    return (await ctd.ctrOk(['images', 'ls'])).split('\n').find(l => l.startsWith(`${ref} `))
  }

  it('pulls a multi-layer image only the gateway held: the blobs come through the swarm while containerd waits', async () => {
    const ref = `${REGISTRY}/shoal/app2:1.0`
    const layout = images.layouts.app2 ?? ''
    const bundleId = await shoalOk(undefined, ['--api', gateway.api, 'push', layout])
    const edge = await startEdge('edge-fresh')
    await waitForRecord(edge, ref, bundleId)
    // The edge knows the tag, but holds none of the image and has downloaded nothing.
    const before = await edge.status()
    expect(before.bundles.filter(b => b.complete)).toEqual([])
    expect(before.stats.bytesDownloaded).toBe(0)
    expect(await blobStatus(edge, 'shoal/app2', images.baseLayer.digest)).toBe(404)

    const ctd = await startContainerd('containerd-fresh', `http://${edge.registry}`)
    const pulled = await ctd.pull(ref)
    expect(pulled.code, pulled.stderr).toBe(0)

    expect(await imageLine(ctd, ref)).toContain(await topDigest(layout))
    await expectCompleteAndUnpacked(ctd, ref, { layers: 3 })
    expect(tripwire.requests).toEqual([])
    // What containerd got, the edge fetched from the gateway through the swarm meanwhile.
    const after = await edge.status()
    expect(after.bundles.find(b => b.id === bundleId)?.complete).toBe(true)
    expect(after.stats.perPeer[gateway.peerId]?.bytesDownloaded ?? 0).toBeGreaterThanOrEqual(images.baseLayer.size)
    expect(await blobStatus(edge, 'shoal/app2', images.baseLayer.digest)).toBe(200)
  })

  it('resumes a blob download cut mid-body with Range: bytes=N-, answered 206, and completes', async () => {
    const ref = `${REGISTRY}/shoal/app1:1.0`
    const layout = images.layouts.app1 ?? ''
    const bundleId = await shoalOk(undefined, ['--api', gateway.api, 'push', layout])
    const edge = await startEdge('edge-cut')
    await waitForRecord(edge, ref, bundleId)
    // The edge holds the image whole, so what is under test is the resumption alone.
    expect(await shoalOk(undefined, ['--api', edge.api, 'pull', ref])).toBe(bundleId)

    // Between containerd and the edge: the first GET of the largest blob (the base layer)
    // is cut off after CUT_AT body bytes, not on a chunk boundary.
    const CUT_AT = 2 * MIB + 12_345
    const size = images.baseLayer.size
    const blobPath = `/v2/shoal/app1/blobs/${images.baseLayer.digest}`
    let cuts = 0
    const relay = await startHttpRelay(edge.registry, request => {
      if (request.method !== 'GET' || !request.url.startsWith(blobPath) || cuts > 0) return undefined
      cuts++
      return CUT_AT
    })
    relays.push(relay)
    const ctd = await startContainerd('containerd-cut', relay.url)

    // containerd 1.6.20 retries within the same pull: one `ctr images pull` succeeds.
    const pulled = await ctd.pull(ref)
    expect(pulled.code, pulled.stderr).toBe(0)
    const gets = relay.requests.filter(r => r.method === 'GET' && r.url.startsWith(blobPath))
    expect(gets.map(r => ({ range: r.headers.range, status: r.status, bytes: r.bytes, cut: r.cut }))).toEqual([
      { range: undefined, status: 200, bytes: CUT_AT, cut: true },
      // It asks for exactly the bytes it did not get.
      { range: `bytes=${CUT_AT}-`, status: 206, bytes: size - CUT_AT, cut: false },
    ])
    expect(gets[1]?.responseHeaders?.['content-range']).toBe(`bytes ${CUT_AT}-${size - 1}/${size}`)
    expect(await imageLine(ctd, ref)).toContain(await topDigest(layout))
    await expectCompleteAndUnpacked(ctd, ref, { layers: 2 })
    expect(tripwire.requests).toEqual([])
  })

  it('serves an image pushed to the gateway with skopeo from another edge', async () => {
    const ref = `${REGISTRY}/team/pushed:1.0`
    const layout = images.layouts.app3 ?? ''
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:1.0`, `docker://${gateway.registry}/${ref}`], { timeout: 60_000 })
    const edge = await startEdge('edge-pushed')
    const record = await waitForRecord(edge, ref)
    expect(record.manifestDigest).toBe(await topDigest(layout))
    expect(await blobStatus(edge, 'team/pushed', images.baseLayer.digest)).toBe(404)

    const ctd = await startContainerd('containerd-pushed', `http://${edge.registry}`)
    const pulled = await ctd.pull(ref)
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(await imageLine(ctd, ref)).toContain(await topDigest(layout))
    await expectCompleteAndUnpacked(ctd, ref, { layers: 2 })
    expect(tripwire.requests).toEqual([])
    expect((await edge.status()).bundles.find(b => b.id === record.bundleId)?.complete).toBe(true)
  })
})
