import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import type { BundleSummary, RefRevision } from '../../src/store/index.js'
import { Containerd, containerdUnavailable, mountsUnder } from '../helpers/containerd.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { startTripwire, type Tripwire } from '../helpers/http-relay.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const unavailable = containerdUnavailable() ??
  (existsSync('/usr/bin/skopeo') ? undefined : 'skopeo is not installed') ??
  (existsSync(DOCKER_REGISTRY_BIN) ? undefined : 'docker-registry is not installed')

/**
 * Issue 8, a loose end of pull-through, with real containerd and docker-registry: an image an
 * edge pulls through the fleet is made a bundle on the gateway (from its upstream) and on the
 * edge (from what the gateway said). Afterwards the edge's ref for the tag is the gateway's
 * signed record, not one the edge signed itself: a node that trusts the edge never hears of
 * the tag from it.
 */
describe.skipIf(unavailable !== undefined)(`an image assembled from a pull-through${unavailable !== undefined ? ` (skipped: ${unavailable})` : ''}`, () => {
  let work: string
  let images: GeneratedImages
  let registry: RegistryProcess
  let tripwire: Tripwire
  let gateway: DaemonProcess
  let edge: DaemonProcess
  let follower: DaemonProcess
  let ctd: Containerd | undefined
  const daemons: DaemonProcess[] = []
  let ref: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-assembled-'))
    await shoalOk(undefined, ['keygen', 'swarm', join(work, 'swarm.key')])
    images = await generateImages(join(work, 'images'), { baseBytes: 3 * MIB, seed: 88 })
    registry = await startDockerRegistry(join(work, 'registry'))
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app1 ?? ''}:1.0`, `docker://${registry.host}/shoal/app1:1.0`], { timeout: 60_000 })
    ref = `${registry.host}/shoal/app1:1.0`
    tripwire = await startTripwire()
    gateway = await startDaemon('gateway', ['--gateway', '--upstream', registry.url])
    edge = await startDaemon('edge', ['--bootstrap', gateway.address, '--trust', gateway.peerId])
    // Trusts the edge only: any record the edge signs for the tag would be applied here.
    follower = await startDaemon('follower', ['--bootstrap', edge.address, '--trust', edge.peerId])
    await waitFor('the edge connected to the gateway', async () => (await edge.status()).peers.find(p => p.id === gateway.peerId), 30_000)
    await waitFor('the follower connected to the edge', async () => (await follower.status()).peers.find(p => p.id === edge.peerId), 30_000)
  }, 180_000)

  afterAll(async () => {
    await ctd?.destroy()
    await Promise.all(daemons.map(async d => { await d.kill() }))
    await tripwire?.close()
    await registry?.stop()
    if (work === undefined) return
    const leftMounted = await mountsUnder(work)
    await rm(work, { recursive: true, force: true })
    expect(leftMounted).toEqual([])
  })

  async function startDaemon (name: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', '--swarm-key', join(work, 'swarm.key'), ...args])
    daemons.push(daemon)
    return daemon
  }

  const bundles = async (daemon: DaemonProcess): Promise<BundleSummary[]> => await daemon.request<BundleSummary[]>('GET', '/api/v1/bundles')
  const revisions = async (daemon: DaemonProcess): Promise<Array<RefRevision & { local?: boolean }>> =>
    await daemon.request<RefRevision[]>('GET', `/api/v1/revisions?ref=${encodeURIComponent(ref)}`)
  /** The "image made a bundle" lines a daemon logged for the ref. */
  const assembledLines = (daemon: DaemonProcess): Array<Record<string, unknown>> => daemon.logs().split('\n').flatMap(line => {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>
      return entry.msg === 'image made a bundle' && entry.ref === ref ? [entry] : []
    } catch {
      return []
    }
  })

  it('keeps the gateway\'s record for the tag on the edge, and the edge publishes none of its own', async () => {
    ctd = new Containerd(join(work, 'containerd'))
    await ctd.start()
    await ctd.hosts(registry.host, tripwire.url, [`http://${edge.registry}`])
    const pulled = await ctd.pull(ref)
    expect(pulled.code, `${pulled.stderr}\n${edge.logs().slice(-4000)}`).toBe(0)
    expect(tripwire.requests).toEqual([])

    // Both nodes made the image the same bundle. (Whatever one-blob bundles there were fold
    // into it 10 min later: test/daemon/fold-blob-bundles.test.ts.)
    const onGateway = await waitFor('the gateway\'s image bundle', async () => assembledLines(gateway)[0], 60_000)
    const onEdge = await waitFor('the edge\'s image bundle', async () => assembledLines(edge)[0], 60_000)
    expect(onEdge.bundleId).toBe(onGateway.bundleId)
    for (const daemon of [gateway, edge]) {
      expect((await bundles(daemon)).find(b => b.id === onGateway.bundleId)).toMatchObject({ complete: true, refs: [ref] })
    }

    // Every blob is served by both, whole and right.
    for (const daemon of [gateway, edge]) {
      for (const digest of [images.baseLayer.digest]) {
        const response = await fetch(`http://${daemon.registry}/v2/shoal/app1/blobs/${digest}?ns=${encodeURIComponent(registry.host)}`)
        expect(response.status).toBe(200)
        expect(`sha256:${createHash('sha256').update(Buffer.from(await response.arrayBuffer())).digest('hex')}`).toBe(digest)
      }
    }

    // The tag on the edge is the gateway's signed record, whichever of the two assembled first.
    const history = await waitFor('the gateway\'s record on the edge', async () => {
      const all = await revisions(edge)
      return all.at(-1)?.publisher === gateway.peerId ? all : undefined
    }, 30_000)
    expect(history.every(r => r.publisher === gateway.peerId || r.local === true)).toBe(true)

    // The follower trusts the edge alone: a record the edge signed for the tag would reach it.
    // A ref the edge's operator sets does: once that one is there, the tag's would have been too.
    const marker = `${registry.host}/shoal/marker:1.0`
    await shoalOk(undefined, ['--api', edge.api, 'push', images.layouts.app2 ?? '', '--ref', marker])
    await waitFor('the edge\'s own record on the follower', async () => (await follower.request<RefRevision[]>('GET', `/api/v1/revisions?ref=${encodeURIComponent(marker)}`)).at(-1), 30_000)
    expect(await revisions(follower)).toEqual([])
  }, 240_000)
})
