import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateImages, GENERATED_REGISTRY } from '../../scripts/gen-images.js'
import { canMountOwnNamespace, ownMount, startDaemonProcess, waitFor } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

describe.skipIf(!canMountOwnNamespace())('a disk that fills during a pull', () => {
  const tempDir = useTempDirs()

  it('stops the pull with a clear error, leaves the store verifying clean, and the pull resumes once there is room', async () => {
    const dir = await tempDir()
    const tree = join(dir, 'tree')
    await mkdir(tree)
    await writeFile(join(tree, 'big.bin'), randomBytes(24 * MIB))
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const data = join(dir, 'edge')
    await mkdir(data)
    // The edge's data dir is a 12 MiB tmpfs in its own mount namespace: half the bundle fits,
    // so the pull is refused before a chunk is fetched (Store.requireRoomForBundle; it used to
    // fill the disk and stop at ENOSPC). Its control socket lives outside it, where the CLI can see it.
    const edge = await startDaemonProcess(data, ['--no-mdns', '--bootstrap', gateway.address, '--api', join(dir, 'edge.sock')], {}, {
      wrap: ownMount(data, 'tmpfs', 'size=12m'),
    })
    try {
      const id = await shoalOk(undefined, ['--api', gateway.api, 'push', tree])
      const full = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
      expect(full.code).not.toBe(0)
      expect(full.stderr).toMatch(/needs \d+ bytes and the store's disk has \d+ free/)
      // Clean: every object and every held chunk re-hashes right; what is absent is only the
      // unfinished bundle's rest (verify counts that as missing, not bad).
      const verify = JSON.parse((await shoal(undefined, ['--api', edge.api, '--json', 'verify'])).stdout) as { bad: unknown[], missing: Array<{ bundleId: string }> }
      expect(verify.bad).toEqual([])
      expect(verify.missing.length).toBeGreaterThan(0)
      expect(new Set(verify.missing.map(m => m.bundleId))).toEqual(new Set([id]))
      // Room again (the same tmpfs, grown): the same pull completes from where it stopped.
      execFileSync('nsenter', ['-t', String(edge.child.pid), '-m', 'mount', '-o', 'remount,size=64m', data])
      const resumed = await shoal(undefined, ['--api', edge.api, 'pull', id], { timeoutMs: 120_000 })
      expect(resumed.code, resumed.stderr).toBe(0)
      expect(await shoalOk(undefined, ['--api', edge.api, 'verify', id])).toContain('ok')
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  })

  it('answers a layer the disk has no room for with a 503, keeps its gateway when the disk filled during the fleet pull containerd started, and serves the layer once there is room', async () => {
    const dir = await tempDir()
    const images = await generateImages(join(dir, 'images'), { baseBytes: 24 * MIB, seed: 67 })
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const data = join(dir, 'edge')
    await mkdir(data)
    // Room for the image when its pull starts (a pull the disk has no room for is not started,
    // disk-full-room.test.ts); paced, so another writer can fill the disk while it runs.
    const edge = await startDaemonProcess(data, ['--no-mdns', '--bootstrap', gateway.address, '--trust', gateway.peerId, '--api', join(dir, 'edge.sock'), '--max-download', '4MB/s'], {}, {
      wrap: ownMount(data, 'tmpfs', 'size=40m'),
    })
    const inEdge = (...command: string[]): string => execFileSync('nsenter', ['-t', String(edge.child.pid), '-m', ...command], { encoding: 'utf8' })
    try {
      await shoalOk(undefined, ['--api', gateway.api, 'push', images.layouts.app1 ?? ''])
      // As containerd asks: ?ns= names the image's registry. The tag comes from the gateway's
      // record or, asked before it came, from the gateway itself: the same bundle pull either way.
      const ns = `?ns=${GENERATED_REGISTRY.split('/')[0] ?? ''}`
      const base = `http://${edge.registry}/v2/shoal/app1`
      const manifest = await waitFor('the edge to resolve the tag', async () => {
        const res = await fetch(`${base}/manifests/1.0${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
        return res.status === 200 ? await res.json() as { layers: Array<{ digest: string, size: number }> } : undefined
      })
      const layer = [...manifest.layers].sort((a, b) => b.size - a.size)[0]
      if (layer === undefined) throw new Error('the image has no layer')
      // The manifest's request started the image's pull; once it is under way, another writer
      // takes all but 2 MiB of the disk (the pull writes on meanwhile).
      await waitFor('the pull to be under way', async () => (await edge.status()).stats.bytesDownloaded >= 4 * MIB ? true : undefined)
      const [blocks, size] = inEdge('stat', '-f', '-c', '%a %S', data).trim().split(' ').map(Number)
      inEdge('fallocate', '-l', String((blocks ?? 0) * (size ?? 0) - 2 * MIB), join(data, 'filler'))
      // The layer does not fit now: said at once, before a byte (before: a 200, cut when the disk filled).
      const refused = await fetch(`${base}/blobs/${layer.digest}${ns}`)
      expect(refused.status).toBe(503)
      expect((await refused.json() as { errors: Array<{ message: string }> }).errors[0]?.message).toMatch(/store's disk has \d+ free.*shoal gc/)
      // The pull stops where the disk filled.
      await waitFor('the pull to stop at the full disk', async () => edge.logs().includes('"pull for an HTTP client failed"') ? true : undefined)
      expect(JSON.parse((await shoal(undefined, ['--api', edge.api, '--json', 'verify'])).stdout)).toMatchObject({ bad: [] })
      inEdge('rm', join(data, 'filler'))
      // Before: the gateway deferred the re-asks of the chunks it had sent on this connection
      // (the edge had dropped them), the edge counted each as a refusal and banned its gateway
      // for 30 min, and this GET stopped after the bytes held until its 60 s stall cut it.
      const served = await fetch(`${base}/blobs/${layer.digest}${ns}`)
      expect(served.status).toBe(200)
      expect(`sha256:${createHash('sha256').update(Buffer.from(await served.arrayBuffer())).digest('hex')}`).toBe(layer.digest)
      expect((await edge.status()).peers.find(p => p.id === gateway.peerId)?.banned).toBe(false)
      expect(edge.logs()).not.toContain('"peer banned"')
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  }, 180_000)
})
