import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { generateImages, GENERATED_REGISTRY } from '../../scripts/gen-images.js'
import { canMountOwnNamespace, ownMount, startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { useTempDirs } from '../helpers/temp-dir.js'

const MIB = 1024 * 1024

interface Manifest { config: { digest: string }, layers: Array<{ digest: string, size: number }> }

/** Bytes in use on the filesystem mounted at `dir` inside the daemon's own mount namespace. */
function usedBytes (daemon: DaemonProcess, dir: string): number {
  const [blocks, free, size] = execFileSync('nsenter', ['-t', String(daemon.child.pid), '-m', 'stat', '-f', '-c', '%b %f %S', dir], { encoding: 'utf8' }).trim().split(' ').map(Number)
  return ((blocks ?? 0) - (free ?? 0)) * (size ?? 0)
}

/** How often `line` was logged. */
function count (daemon: DaemonProcess, line: string): number {
  return daemon.logs().split(line).length - 1
}

const NOT_STARTED = '"pull for an HTTP client not started: the disk has no room for what the bundle lacks'

describe.skipIf(!canMountOwnNamespace())('the room a pull needs, checked before it starts', () => {
  const tempDir = useTempDirs()

  /** A gateway holding the app1 image (a 24 MiB base layer) and an edge trusting it on a tmpfs of `tmpfs` (mount options). */
  async function fleet (dir: string, tmpfs: string, edgeArgs: string[] = []): Promise<{ gateway: DaemonProcess, edge: DaemonProcess, data: string, base: string, ns: string }> {
    const images = await generateImages(join(dir, 'images'), { baseBytes: 24 * MIB, seed: 71 })
    const gateway = await startDaemonProcess(join(dir, 'gateway'), ['--no-mdns', '--gateway'])
    const data = join(dir, 'edge')
    await mkdir(data)
    let edge: DaemonProcess
    try {
      edge = await startDaemonProcess(data, ['--no-mdns', '--bootstrap', gateway.address, '--trust', gateway.peerId, '--api', join(dir, 'edge.sock'), ...edgeArgs], {}, {
        wrap: ownMount(data, 'tmpfs', tmpfs),
      })
      await shoalOk(undefined, ['--api', gateway.api, 'push', images.layouts.app1 ?? ''])
    } catch (err) {
      await gateway.stop()
      throw err
    }
    // As containerd asks: ?ns= names the image's registry. The tag comes from the gateway's
    // record or, asked before it came, from the gateway itself: the same bundle pull either way.
    return { gateway, edge, data, base: `http://${edge.registry}/v2/shoal/app1`, ns: `?ns=${GENERATED_REGISTRY.split('/')[0] ?? ''}` }
  }

  async function manifestOf (base: string, ns: string): Promise<Manifest> {
    return await waitFor('the edge to resolve the tag', async () => {
      const res = await fetch(`${base}/manifests/1.0${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      return res.status === 200 ? await res.json() as Manifest : undefined
    })
  }

  async function sha256Of (res: Response): Promise<string> {
    return `sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`
  }

  it('refuses the image\'s pull before a chunk of it is fetched when the disk has no room for it, says so once, still serves a blob that fits, and pulls once there is room', async () => {
    const dir = await tempDir()
    const { gateway, edge, data, base, ns } = await fleet(dir, 'size=12m')
    try {
      const before = usedBytes(edge, data)
      const manifest = await manifestOf(base, ns)
      const layer = [...manifest.layers].sort((a, b) => b.size - a.size)[0]
      if (layer === undefined) throw new Error('the image has no layer')
      await waitFor('the pull to be refused (or to fail)', async () => count(edge, NOT_STARTED) + count(edge, '"pull for an HTTP client failed"') > 0 ? true : undefined)
      // Before: the manifest's request started the bundle's pull, which filled the disk (~11 MiB
      // of the 24 MiB layer, then ENOSPC), leaving nothing for containerd or its unpack.
      expect(usedBytes(edge, data) - before).toBeLessThan(MIB)
      // containerd's retries: the manifest again, the config (which fits: fetched alone), the layer (503).
      for (let i = 0; i < 2; i++) expect((await fetch(`${base}/manifests/1.0${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).status).toBe(200)
      const config = await fetch(`${base}/blobs/${manifest.config.digest}${ns}`)
      expect(config.status).toBe(200)
      expect(await sha256Of(config)).toBe(manifest.config.digest)
      for (let i = 0; i < 2; i++) expect((await fetch(`${base}/blobs/${layer.digest}${ns}`)).status).toBe(503)
      expect(usedBytes(edge, data) - before).toBeLessThan(MIB)
      expect(count(edge, NOT_STARTED)).toBe(1)
      // What to do, in the one line: the reason names the bytes and the remedy.
      expect(edge.logs().split('\n').find(l => l.includes(NOT_STARTED))).toMatch(/needs \d+ bytes and the store's disk has \d+ free[^"]*shoal gc/)
      expect(edge.logs()).not.toContain('"pull for an HTTP client failed"')
      // Room again (the same tmpfs, grown): the next request pulls it, no timer needed.
      execFileSync('nsenter', ['-t', String(edge.child.pid), '-m', 'mount', '-o', 'remount,size=64m', data])
      const served = await fetch(`${base}/blobs/${layer.digest}${ns}`)
      expect(served.status).toBe(200)
      expect(await sha256Of(served)).toBe(layer.digest)
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  }, 180_000)

  it('does not refuse a pull the quota makes room for: what it would evict is evicted first', async () => {
    const dir = await tempDir()
    // 40 MiB of disk, a 32 MiB quota; an old 20 MiB bundle leaves ~19 MiB free for the image's 24 MiB.
    const { gateway, edge, base, ns } = await fleet(dir, 'size=40m', ['--quota', String(32 * MIB)])
    try {
      const tree = join(dir, 'old')
      await mkdir(tree)
      await writeFile(join(tree, 'old.bin'), randomBytes(20 * MIB))
      const old = await shoalOk(undefined, ['--api', edge.api, 'push', tree])
      const manifest = await manifestOf(base, ns)
      const layer = [...manifest.layers].sort((a, b) => b.size - a.size)[0]
      if (layer === undefined) throw new Error('the image has no layer')
      // Before: a 503 (the room check saw ~19 MiB free); evicted only as the pull's objects
      // completed, the room would come after the disk had filled.
      const served = await fetch(`${base}/blobs/${layer.digest}${ns}`)
      expect(served.status).toBe(200)
      expect(await sha256Of(served)).toBe(layer.digest)
      expect(edge.logs()).toContain('"evicted bundles to make room on the disk for a pull, within the quota"')
      expect(count(edge, NOT_STARTED)).toBe(0)
      expect((await edge.status()).bundles.map(b => b.id)).not.toContain(old)
    } finally {
      await edge.stop()
      await gateway.stop()
    }
  }, 180_000)
})
