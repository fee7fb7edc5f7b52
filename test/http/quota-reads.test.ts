import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { enforceQuota, objectBytes, openStore, pushTree, type Store } from '../../src/store/index.js'
import { useTempDirs } from '../helpers/temp-dir.js'
import { readBlob, startApi, tempImages, topDigest, type RunningApi } from './helpers.js'

const MIB = 1024 * 1024
const NAME = 'registry.example.com/shoal/app1'

interface ImageManifest { config: { digest: string }, layers: Array<{ digest: string }> }

/**
 * A registry client reads an image request by request (manifest, config, layers, as containerd
 * does). Between two requests nothing streams, yet the quota must not evict the image then:
 * the client's next GET would 404.
 */
describe('the quota and a registry client reading an image', () => {
  const tempDir = useTempDirs()
  const closing: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close()
  })

  /** A store holding app1 (the oldest bundle), with room for it and one 2 MiB tree more. */
  async function setUp (): Promise<{ store: Store, running: RunningApi, app1: string, layout: string, pressure: () => Promise<string[]> }> {
    const images = await tempImages()
    closing.push(images.close)
    const app1 = images.images.layouts.app1 ?? ''
    const probe = await openStore({ dir: await tempDir(), fsync: false })
    await pushTree(probe, app1)
    const appBytes = await objectBytes(probe)
    await probe.close()
    const store = await openStore({ dir: await tempDir(), fsync: false, quotaBytes: appBytes + 2.5 * MIB })
    closing.push(async () => { await store.close() })
    const app1Id = (await pushTree(store, app1)).bundleId
    const running = await startApi({ store })
    closing.push(async () => { await running.api.close() })
    /** Two newer 2 MiB bundles, so one bundle must go; returns what the quota evicted. */
    const pressure = async (): Promise<string[]> => {
      for (const name of ['b', 'c']) {
        const tree = join(await tempDir(), name)
        await mkdir(tree)
        await writeFile(join(tree, `${name}.bin`), randomBytes(2 * MIB))
        await pushTree(store, tree)
      }
      const evicted = await enforceQuota(store)
      expect(evicted.length).toBeGreaterThan(0)
      return evicted
    }
    return { store, running, app1: app1Id, layout: app1, pressure }
  }

  it('without a reader, the image is the least recently used bundle and the quota evicts it', async () => {
    const { store, app1, pressure } = await setUp()
    expect(await pressure()).toContain(app1)
    expect(await store.bundleIds()).not.toContain(app1)
  })

  async function expectBlobs (running: RunningApi, layout: string, digests: string[]): Promise<void> {
    for (const digest of digests) {
      const response = await fetch(`${running.base}/v2/${NAME}/blobs/${digest}`)
      expect(response.status).toBe(200)
      expect(Buffer.from(await response.arrayBuffer()).equals(await readBlob(layout, digest))).toBe(true)
    }
  }

  it('keeps the image whose manifest a client fetched, so its config and layers still come after the pressure', async () => {
    const { store, running, app1, layout, pressure } = await setUp()
    const response = await fetch(`${running.base}/v2/${NAME}/manifests/1.0`)
    expect(response.status).toBe(200)
    expect(response.headers.get('docker-content-digest')).toBe(await topDigest(layout))
    const manifest = JSON.parse(await response.text()) as ImageManifest
    expect(await pressure()).not.toContain(app1)
    expect(await store.bundleIds()).toContain(app1)
    await expectBlobs(running, layout, [manifest.config.digest, ...manifest.layers.map(l => l.digest)])
  })

  it('keeps the image a client fetched a blob of by digest alone', async () => {
    const { store, running, app1, layout, pressure } = await setUp()
    const manifest = JSON.parse((await readBlob(layout, await topDigest(layout))).toString()) as ImageManifest
    await expectBlobs(running, layout, [manifest.config.digest])
    expect(await pressure()).not.toContain(app1)
    expect(await store.bundleIds()).toContain(app1)
    await expectBlobs(running, layout, manifest.layers.map(l => l.digest))
  })
})
