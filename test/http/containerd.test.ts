import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/http/index.js'
import { randomBytes } from 'node:crypto'
import { enforceQuota, objectBytes, openStore, pushTree, type Store } from '../../src/store/index.js'
import { Containerd, containerdUnavailable } from '../helpers/containerd.js'
import { CopyingSource } from './copying-source.js'
import { pushLayouts, startApi, tempImages, tempStore, topDigest, type RunningApi } from './helpers.js'

const canRun = containerdUnavailable() === undefined

describe.skipIf(!canRun)('registry API as containerd\'s mirror', () => {
  let images: Awaited<ReturnType<typeof tempImages>>
  let origin: Awaited<ReturnType<typeof tempStore>>
  let containerd: Containerd
  let dir: string
  let running: RunningApi | undefined

  beforeAll(async () => {
    images = await tempImages()
    origin = await tempStore()
    await pushLayouts(origin.store, images.images, ['app1', 'app2', 'multi'])
  })

  afterAll(async () => {
    await origin?.close()
    await images?.close()
  })

  // A fresh containerd per test, so no layer is already in its content store.
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-ctd-'))
    containerd = new Containerd(dir)
    await containerd.start()
  })

  afterEach(async () => {
    await running?.api.close()
    running = undefined
    await containerd.destroy()
  })

  async function pull (ref: string): Promise<string> {
    const pulled = await containerd.pull(ref)
    expect(pulled.code, pulled.stderr).toBe(0)
    return await containerd.ctrOk(['images', 'ls'])
  }

  it('pulls and unpacks an image through the mirror (?ns=, HEAD resolve, blobs)', async () => {
    // The daemon's way of mounting the API, with a look at what containerd sends.
    const api = createHttpApi({ store: origin.store })
    const seen: string[] = []
    const server = createServer((req, res) => { seen.push(`${req.method ?? ''} ${req.url ?? ''}`); api.handler(req, res) })
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    try {
      await containerd.hosts('registry.example.com', 'https://registry.example.com', [`http://127.0.0.1:${(server.address() as AddressInfo).port}`])
      const listed = await pull('registry.example.com/shoal/app1:1.0')
      expect(listed).toContain('registry.example.com/shoal/app1:1.0')
      expect(listed).toContain(await topDigest(images.images.layouts.app1 ?? ''))
      expect(seen).toContain('HEAD /v2/shoal/app1/manifests/1.0?ns=registry.example.com')
      expect(seen).toContain(`GET /v2/shoal/app1/blobs/${images.images.baseLayer.digest}?ns=registry.example.com`)
    } finally {
      await api.close()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  })

  it('pulls its platform of a multi-platform index through the mirror', async () => {
    running = await startApi({ store: origin.store })
    await containerd.hosts('registry.example.com', 'https://registry.example.com', [running.base])
    const listed = await pull('registry.example.com/shoal/multi:1.0')
    expect(listed).toContain(await topDigest(images.images.layouts.multi ?? ''))
  })

  it('pulls an image while the quota evicts to make room: nothing containerd reads is evicted between its requests', async () => {
    const app1 = images.images.layouts.app1 ?? ''
    const probe = await tempStore()
    await pushTree(probe.store, app1)
    const appBytes = await objectBytes(probe.store)
    await probe.close()
    // Room for app1 and one 2 MiB bundle: two more make the quota evict, and app1 is the oldest.
    const storeDir = await mkdtemp(join(tmpdir(), 'shoal-ctd-quota-'))
    const store = await openStore({ dir: storeDir, fsync: false, quotaBytes: appBytes + 2.5 * 1024 * 1024 })
    const app1Id = (await pushTree(store, app1)).bundleId
    const api = createHttpApi({ store })
    let evicted: string[] | undefined
    // The first blob request waits while the store fills past its quota and the quota acts:
    // containerd has the manifest by then and wants the config and layers of an image that is
    // no longer in use by any request.
    const server = createServer((req, res) => {
      const pressure = evicted !== undefined || !(req.url ?? '').includes('/blobs/')
        ? Promise.resolve()
        : (async () => {
            evicted = []
            for (const name of ['b', 'c']) {
              const tree = join(storeDir, `tree-${name}`)
              await mkdir(tree)
              await writeFile(join(tree, `${name}.bin`), randomBytes(2 * 1024 * 1024))
              await pushTree(store, tree)
            }
            evicted = await enforceQuota(store)
          })()
      pressure.then(() => { api.handler(req, res) }, (err: unknown) => { res.destroy(err as Error) })
    })
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    try {
      await containerd.hosts('registry.example.com', 'https://registry.example.com', [`http://127.0.0.1:${(server.address() as AddressInfo).port}`])
      expect(await pull('registry.example.com/shoal/app1:1.0')).toContain(await topDigest(app1))
      expect(evicted?.length).toBeGreaterThan(0)
      expect(evicted).not.toContain(app1Id)
      expect(await store.bundleIds()).toContain(app1Id)
    } finally {
      await api.close()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
      await store.close()
      await rm(storeDir, { recursive: true, force: true })
    }
  })

  it('pulls an image whose blobs are still arriving from the blob source', async () => {
    const edge = await tempStore()
    try {
      const target = await origin.store.getRef('registry.example.com/shoal/app2:1.0')
      const bundleId = target?.bundleId ?? ''
      await edge.store.addBundle(await origin.store.getEncodedBundle(bundleId) ?? new Uint8Array(), { expectedId: bundleId })
      await edge.store.setRef({ ref: 'registry.example.com/shoal/app2:1.0', bundleId, manifestDigest: target?.manifestDigest, at: Date.now() })
      const source = new CopyingSource(origin.store, edge.store)
      source.gate.allow(Infinity)
      running = await startApi({ store: edge.store, blobSource: source })
      await containerd.hosts('registry.example.com', 'https://registry.example.com', [running.base])
      expect(await pull('registry.example.com/shoal/app2:1.0')).toContain(target?.manifestDigest)
      const base = await edgeObject(edge.store, images.images.baseLayer.digest)
      expect(source.calls.map(c => c.object)).toContain(base)
      expect(await edge.store.hasObject(base)).toBe(true)
    } finally {
      await running?.api.close()
      running = undefined
      await edge.close()
    }
  })
})

async function edgeObject (store: Store, digest: string): Promise<string> {
  return await store.objectBySha256(digest.slice('sha256:'.length)) ?? ''
}
