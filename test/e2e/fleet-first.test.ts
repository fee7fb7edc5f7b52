import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { topDigest } from '../../scripts/gen-images.js'
import { waitForBundleWithRef, type DaemonProcess } from '../helpers/daemon-process.js'
import { fleetFirstBedUnavailable, useFleetFirstBed } from '../helpers/fleet-first-bed.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const unavailable = fleetFirstBedUnavailable()

interface Descriptor { digest: string, platform?: { architecture: string } }

/**
 * Issue 8, "fleet first", with real containerd 1.6 and a real docker-registry as the upstream:
 * a gateway with `--upstream`, three edges (the second with its own `--upstream`, the others
 * without), each edge the only mirror of its containerd, whose hosts.toml `server` is a
 * tripwire. Every request that reaches the registry passes a recording proxy in front of it
 * (the registry's access log, as seen from outside): each blob must be fetched from it once
 * for the whole fleet, whatever edge asks and however many at once.
 */
describe.skipIf(unavailable !== undefined)(`containerd pulls any image through any edge, fleet first${unavailable !== undefined ? ` (skipped: ${unavailable})` : ''}`, () => {
  const bed = useFleetFirstBed({
    prefix: 'fleet-first',
    images: { baseBytes: 6 * MIB, seed: 81 },
    fill: async (registry, images) => {
      for (const name of ['app1', 'app2', 'app3', 'multi']) {
        await execFileAsync('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${images.layouts[name] ?? ''}:1.0`, `docker://${registry.host}/shoal/${name}:1.0`], { timeout: 60_000 })
      }
    },
    edges: [{}, { upstream: true }, {}],
  })

  function expectEachBlobOnce (): void {
    const repeated = [...bed.registryBlobFetches()].filter(([, count]) => count > 1)
    expect(repeated).toEqual([])
    expect(bed.tripwire.requests).toEqual([])
  }

  async function blobsOf (layout: string, manifestDigest: string): Promise<string[]> {
    const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', manifestDigest.slice('sha256:'.length)), 'utf8')) as { config: Descriptor, layers: Descriptor[] }
    return [manifest.config.digest, ...manifest.layers.map(l => l.digest)]
  }

  it('a tag no node has seen, through edge 1 (CRI) then 2 and 3 (ctr): the registry serves each blob once', async () => {
    const ref = `${bed.front.host}/shoal/app1:1.0`
    for (const [i, edge] of bed.edges.entries()) await bed.pullThrough(edge, `seq-${i + 1}`, ref, 2, i === 0 ? 'cri' : 'ctr')
    const blobs = await blobsOf(bed.images.layouts.app1 ?? '', await topDigest(bed.images.layouts.app1 ?? ''))
    const fetched = bed.registryBlobFetches()
    for (const blob of blobs) expect(fetched.get(blob), blob).toBe(1)
    expectEachBlobOnce()
    // Only shoal's own fetch client reached the registry (containerd never fell back).
    expect(new Set(bed.front.log.requests.map(r => r.userAgent?.split('/')[0]))).toEqual(new Set(['node']))
    // The image became a bundle with its ref on the gateway, announced to the fleet.
    await waitForBundleWithRef(bed.gateway, ref)
    // Three pulls one after another, each a containerd pull through a cold edge: 61 s once in a
    // clean-clone suite at load 25-34, past the default 60 s.
  }, 180_000)

  it('all edges pull a never-seen tag at the same moment: still each blob once', async () => {
    const ref = `${bed.front.host}/shoal/app2:1.0`
    await Promise.all(bed.edges.map(async (edge, i) => { await bed.pullThrough(edge, `together-${i + 1}`, ref, 3) }))
    const fetched = bed.registryBlobFetches()
    for (const blob of await blobsOf(bed.images.layouts.app2 ?? '', await topDigest(bed.images.layouts.app2 ?? ''))) expect(fetched.get(blob), blob).toBe(1)
    expectEachBlobOnce()
  })

  it('a multi-platform index: only the requested platform\'s blobs come from the registry', async () => {
    const ref = `${bed.front.host}/shoal/multi:1.0`
    await bed.pullThrough(bed.edges[0] as DaemonProcess, 'multi', ref, 2)
    const layout = bed.images.layouts.multi ?? ''
    const imageIndex = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', (await topDigest(layout)).slice('sha256:'.length)), 'utf8')) as { manifests: Descriptor[] }
    const amd64 = await blobsOf(layout, imageIndex.manifests.find(m => m.platform?.architecture === 'amd64')?.digest ?? '')
    const arm64 = await blobsOf(layout, imageIndex.manifests.find(m => m.platform?.architecture === 'arm64')?.digest ?? '')
    const arm64Only = arm64.filter(b => !amd64.includes(b))
    expect(arm64Only.length).toBeGreaterThan(0)
    const fetched = bed.registryBlobFetches()
    for (const blob of arm64Only) expect(fetched.get(blob), `arm64 blob ${blob}`).toBeUndefined()
    for (const blob of amd64) expect(fetched.get(blob), `amd64 blob ${blob}`).toBe(1)
    expectEachBlobOnce()
  })

  it('with the registry stopped after one edge holds an image, every other edge still pulls it', async () => {
    const ref = `${bed.front.host}/shoal/app3:1.0`
    await bed.pullThrough(bed.edges[0] as DaemonProcess, 'stopped-1', ref, 2)
    // The gateway makes the image a bundle with its ref once edge 1's containerd has every blob.
    await waitForBundleWithRef(bed.gateway, ref)
    await bed.registry.stop()
    await bed.pullThrough(bed.edges[1] as DaemonProcess, 'stopped-2', ref, 2)
    await bed.pullThrough(bed.edges[2] as DaemonProcess, 'stopped-3', ref, 2)
    expectEachBlobOnce()
  })
})
