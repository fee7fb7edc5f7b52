import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { treeManifest as manifestOf } from '../helpers/tree-manifest.js'



const MIB = 1024 * 1024

/**
 * Each test starts up to six daemon processes and a dozen CLI processes: on two shared cores
 * that alone takes 30 s at load 20. The pulls carry their own 120 s deadlines, which name the
 * step that hung; the test's limit only has to stay above them.
 */
const FLEET_TEST_TIMEOUT_MS = 180_000

/** Separate daemon processes on loopback, as on separate machines. */
describe('a fleet of daemons', { timeout: FLEET_TEST_TIMEOUT_MS }, () => {
  let work: string
  let image: string
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    const { mkdtemp } = await import('node:fs/promises')
    const { tmpdir } = await import('node:os')
    work = await mkdtemp(join(tmpdir(), 'shoal-e2e-'))
    const images = await generateImages(join(work, 'images'), { baseBytes: 24 * MIB, seed: 7 })
    image = images.layouts.app1 ?? join(work, 'images', 'app1')
  })

  afterAll(async () => {
    await Promise.all(daemons.map(async d => await d.kill()))
    const { rm } = await import('node:fs/promises')
    await rm(work, { recursive: true, force: true })
  })

  async function start (name: string, args: string[] = []): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', ...args])
    daemons.push(daemon)
    return daemon
  }

  it('spreads a bundle from one gateway to four edges pulling at once, byte-identical, the gateway sending it about once, and a late joiner gets it from the edges', async () => {
    const gateway = await start('gateway', ['--gateway'])
    const id = await shoalOk(undefined, ['--api', gateway.api, 'push', image])
    const edges = await Promise.all([1, 2, 3, 4].map(async n => await start(`edge${n}`, ['--bootstrap', gateway.address])))
    const results = await Promise.all(edges.map(async edge => await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })))
    for (const result of results) expect(result.code, result.stderr).toBe(0)

    const bundleBytes = (await gateway.status()).bundles[0]?.bytes ?? 0
    expect(bundleBytes).toBeGreaterThan(24 * MIB)
    for (const [n, edge] of edges.entries()) {
      const verify = await shoal(undefined, ['--api', edge.api, 'verify', id])
      expect(verify.code, verify.stdout).toBe(0)
      const out = join(work, `out${n}`)
      expect((await shoal(undefined, ['--api', edge.api, 'pull', id, out])).code).toBe(0)
      expect(await manifestOf(out)).toBe(await manifestOf(image))
      const status = await edge.status()
      expect(status.stats.bytesDownloaded).toBeGreaterThanOrEqual(bundleBytes)
      expect(status.stats.chunksRejected).toBe(0)
    }
    const uploaded = (await gateway.status()).stats.bytesUploaded
    expect(uploaded).toBeGreaterThanOrEqual(bundleBytes)
    // The rest flowed between edges: the gateway sent the bundle about once, not once per edge.
    expect(uploaded).toBeLessThanOrEqual(1.5 * bundleBytes)

    // A late joiner gets most of its bytes from the edges.
    const late = await start('late', ['--bootstrap', gateway.address, ...edges.map(e => ['--bootstrap', e.address]).flat()])
    expect((await shoal(undefined, ['--api', late.api, 'pull', id], { timeoutMs: 120_000 })).code).toBe(0)
    const lateStats = (await late.status()).stats
    const fromGateway = lateStats.perPeer[gateway.peerId]?.bytesDownloaded ?? 0
    expect(lateStats.bytesDownloaded).toBeGreaterThanOrEqual(bundleBytes)
    expect(fromGateway).toBeLessThan(lateStats.bytesDownloaded / 2)
  })

  it('resumes a pull after kill -9 without fetching a verified chunk again', async () => {
    const gateway = await start('gw-resume', ['--gateway', '--max-upload', '6MiB'])
    const id = await shoalOk(undefined, ['--api', gateway.api, 'push', image])
    const edgeDir = join(work, 'edge-resume')
    const edge = await startDaemonProcess(edgeDir, ['--no-mdns', '--bootstrap', gateway.address])
    daemons.push(edge)
    const pulling = shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
    await waitFor('half the bundle on the edge', async () => {
      const bundle = (await edge.status()).bundles.find(b => b.id === id)
      return bundle !== undefined && bundle.presentBytes > bundle.bytes / 2 ? bundle : undefined
    })
    await edge.kill()
    expect((await pulling).code).not.toBe(0)

    const restarted = await startDaemonProcess(edgeDir, ['--no-mdns', '--bootstrap', gateway.address])
    daemons.push(restarted)
    const detail = await restarted.request<{ bytes: number, presentBytes: number, objects: Array<{ size: number, state: string, chunks?: { have: number, of: number } }> }>('GET', `/api/v1/bundles/${id}`)
    const chunksHeld = detail.objects.reduce((sum, o) => sum + (o.state === 'complete' ? Math.ceil(o.size / MIB) : o.chunks?.have ?? 0), 0)
    const chunksTotal = detail.objects.reduce((sum, o) => sum + Math.ceil(o.size / MIB), 0)
    expect(chunksHeld).toBeGreaterThan(0)
    expect((await shoal(undefined, ['--api', restarted.api, 'pull', id], { timeoutMs: 120_000 })).code).toBe(0)
    const stats = (await restarted.status()).stats
    expect(stats.chunksFetchedTwice).toBe(0)
    expect(stats.chunksDownloaded).toBe(chunksTotal - chunksHeld)
    expect((await shoal(undefined, ['--api', restarted.api, 'verify', id])).code).toBe(0)
  })

  it('completes a pull from the others when a serving peer dies mid-transfer', async () => {
    const gateway = await start('gw-vanish', ['--gateway', '--max-upload', '8MiB'])
    const id = await shoalOk(undefined, ['--api', gateway.api, 'push', image])
    const holder = await start('holder', ['--bootstrap', gateway.address, '--max-upload', '8MiB'])
    expect((await shoal(undefined, ['--api', holder.api, 'pull', id], { timeoutMs: 120_000 })).code).toBe(0)
    const edge = await start('edge-vanish', ['--bootstrap', gateway.address, '--bootstrap', holder.address])
    const pulling = shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
    await waitFor('the edge receiving from the holder', async () => {
      const fromHolder = (await edge.status()).stats.perPeer[holder.peerId]?.bytesDownloaded ?? 0
      return fromHolder > 2 * MIB ? fromHolder : undefined
    })
    await holder.kill()
    const result = await pulling
    expect(result.code, result.stderr).toBe(0)
    expect((await shoal(undefined, ['--api', edge.api, 'verify', id])).code).toBe(0)
  })

  it('bans a daemon that serves corrupt chunks and completes the pull from the others', async () => {
    const gateway = await start('gw-liar', ['--gateway', '--max-upload', '8MiB'])
    const id = await shoalOk(undefined, ['--api', gateway.api, 'push', image])
    const liar = await startDaemonProcess(join(work, 'liar'), ['--no-mdns', '--bootstrap', gateway.address], { SHOAL_TEST_CORRUPT_CHUNKS: '1' })
    daemons.push(liar)
    expect((await shoal(undefined, ['--api', liar.api, 'pull', id], { timeoutMs: 120_000 })).code).toBe(0)
    const edge = await start('edge-liar', ['--bootstrap', gateway.address, '--bootstrap', liar.address])
    // Its pull once found no holder for 120 s in a loaded run, with nothing to say why; in 9 runs
    // under load since (load 10-23, 2026-12-06) it passed. A failure now shows who joined and left.
    onTestFailed(() => { console.log(`edge log:\n${notDebug(edge.logs())}\ngateway log:\n${notDebug(gateway.logs())}\nliar log:\n${notDebug(liar.logs())}`) })
    const result = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
    expect(result.code, result.stderr).toBe(0)
    const status = await edge.status()
    expect(status.stats.bans).toBeGreaterThanOrEqual(1)
    expect(status.stats.chunksRejected).toBeGreaterThanOrEqual(1)
    expect(status.peers.find(p => p.id === liar.peerId)?.banned).toBe(true)
    const verify = await shoal(undefined, ['--api', edge.api, 'verify', id])
    expect(verify.code, verify.stdout).toBe(0)
  })
})

/** A daemon's log without its debug lines, but for neighbours joining and leaving: who it could ask. */
function notDebug (log: string): string {
  return log.split('\n').filter(line => !line.includes('"level":"debug"') || line.includes('neighbour')).join('\n').slice(-12_000)
}
