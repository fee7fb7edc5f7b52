import { createHash } from 'node:crypto'
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { Containerd, containerdUnavailable, tearDownWork } from '../helpers/containerd.js'
import { expectCompleteAndUnpacked } from '../helpers/containerd-image-check.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { startTripwire, type Tripwire } from '../helpers/http-relay.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { freePort } from '../upstream/docker-registry.js'
import { REGISTRY_DRAIN_MS } from '../../src/daemon/request-drain.js'

const REGISTRY = 'registry.example.com'
const MIB = 1024 * 1024
/** The base layer: at the gateway's 8 MB/s upload cap it takes ~6 s to reach the edge, so SIGTERM lands mid-layer. */
const BASE_BYTES = 48 * MIB
/** How long a daemon may take to exit after SIGTERM: the registry's drain (REGISTRY_DRAIN_MS), then HTTP, the swarm, the store in order. */
const EXIT_BOUND_MS = REGISTRY_DRAIN_MS + 15_000
const unavailable = containerdUnavailable()

/**
 * SIGTERM of an edge daemon while containerd pulls a layer through it (the layer arriving
 * from the gateway through the swarm as containerd reads it), then the edge restarted on the
 * same data dir and registry port, as systemd would. Real containerd, real daemons.
 */
describe.skipIf(unavailable !== undefined)(`SIGTERM of an edge mid-layer${unavailable !== undefined ? ` (skipped: ${unavailable})` : ''}`, () => {
  let work: string | undefined
  let tripwire: Tripwire | undefined
  let containerd: Containerd | undefined
  const daemons: DaemonProcess[] = []

  afterAll(async () => {
    expect(await tearDownWork(work, { containerd, daemons, servers: [tripwire] })).toEqual([])
  })

  async function start (dir: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(dir, ['--no-mdns', ...args])
    daemons.push(daemon)
    return daemon
  }

  async function verifyClean (node: DaemonProcess): Promise<void> {
    const result = await shoal(undefined, ['--api', node.api, '--json', 'verify'])
    expect((JSON.parse(result.stdout) as { bad: unknown[] }).bad, result.stdout).toEqual([])
  }

  it('lets the layer under way finish, exits in bounded time, restarts with a consistent store serving no half object, and containerd has a verified image', async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-e2e-sigterm-'))
    const images = await generateImages(join(work, 'images'), { baseBytes: BASE_BYTES, seed: 91 })
    const ref = `${REGISTRY}/shoal/app1:1.0`
    const gateway = await start(join(work, 'gateway'), ['--gateway', '--max-upload', '8MB/s'])
    const bundleId = await shoalOk(undefined, ['--api', gateway.api, 'push', images.layouts.app1 ?? ''])
    // A fixed registry port, as deployed: containerd's retry finds the restarted edge there.
    const port = await freePort()
    const edgeArgs = ['--bootstrap', gateway.address, '--trust', gateway.peerId, '--registry', `127.0.0.1:${port}`]
    const edgeDir = join(work, 'edge')
    let edge = await start(edgeDir, edgeArgs)
    expect(edge.registry).toBe(`127.0.0.1:${port}`)
    await waitFor('the ref record on the edge', async () => {
      const revisions = await edge.request<Array<{ bundleId: string }>>('GET', `/api/v1/revisions?ref=${encodeURIComponent(ref)}`)
      return revisions.find(r => r.bundleId === bundleId)
    }, 30_000)

    tripwire = await startTripwire()
    containerd = new Containerd(join(work, 'containerd'))
    await containerd.start()
    await containerd.hosts(REGISTRY, tripwire.url, [`http://127.0.0.1:${port}`])
    const firstPull = containerd.pull(ref)

    // Mid-layer: a third of the base layer has reached the edge (containerd reads it as it comes).
    await waitFor('a third of the base layer at the edge', async () => ((await edge.status()).stats.bytesDownloaded >= BASE_BYTES / 3 ? true : undefined), 60_000)
    const termAt = performance.now()
    const code = await Promise.race([edge.stop(), new Promise<'late'>((resolve) => { setTimeout(() => { resolve('late') }, EXIT_BOUND_MS).unref() })])
    const exitMs = performance.now() - termAt
    console.log(`edge exited ${String(code)} ${Math.round(exitMs)} ms after SIGTERM, mid-layer`)
    expect(code).not.toBe('late')
    expect(code).toBe(0)

    // Restarted on its data dir: the store verifies, and the base layer is served whole or not at all.
    edge = await start(edgeDir, edgeArgs)
    await verifyClean(edge)
    const blobUrl = `http://127.0.0.1:${port}/v2/shoal/app1/blobs/${images.baseLayer.digest}?ns=${REGISTRY}`
    const head = await fetch(blobUrl, { method: 'HEAD' })
    if (head.status === 200) {
      const body = Buffer.from(await (await fetch(blobUrl)).arrayBuffer())
      expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(images.baseLayer.digest)
    }
    console.log(`after the restart: base layer HEAD ${head.status}; staging left: ${JSON.stringify(await readdir(join(edgeDir, 'tmp')).catch(() => []))}`)

    // The layer under way was let finish: containerd's pull completes, without falling back to
    // the upstream (the tripwire). On main the body was cut at SIGTERM, and containerd asked
    // the upstream for the layer and failed the pull ("unexpected EOF").
    const pulled = await firstPull
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(tripwire.requests).toEqual([])
    await expectCompleteAndUnpacked(containerd, ref)
    await verifyClean(edge)
  }, 300_000)
})
