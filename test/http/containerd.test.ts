import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createHttpApi } from '../../src/http/index.js'
import { randomBytes } from 'node:crypto'
import { enforceQuota, objectBytes, openStore, pushTree, type Store } from '../../src/store/index.js'
import { CopyingSource } from './copying-source.js'
import { pushLayouts, startApi, tempImages, tempStore, topDigest, type RunningApi } from './helpers.js'

const execFileAsync = promisify(execFile)
const canRun = process.getuid?.() === 0 && existsSync('/usr/bin/containerd') && existsSync('/usr/bin/ctr')

/** containerd with its own root, state and socket (FACTS.md "Real clients"), without the CRI plugin. */
class Containerd {
  private child: ChildProcess | undefined
  readonly socket: string
  readonly hostsDir: string

  constructor (readonly dir: string) {
    this.socket = join(dir, 'containerd.sock')
    this.hostsDir = join(dir, 'hosts')
  }

  async start (): Promise<void> {
    const config = join(this.dir, 'config.toml')
    await writeFile(config, [
      'version = 2', `root = "${join(this.dir, 'root')}"`, `state = "${join(this.dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${this.socket}"`, '',
    ].join('\n'))
    const child = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('containerd did not boot within 10 s')) }, 10_000)
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`containerd exited with ${String(code)}`)) })
      child.stderr?.on('data', (data: Buffer) => {
        if (data.toString().includes('containerd successfully booted')) { clearTimeout(timer); resolve() }
      })
    })
  }

  async stop (): Promise<void> {
    const child = this.child
    if (child === undefined || child.exitCode !== null) return
    const exited = new Promise(resolve => { child.once('exit', resolve) })
    child.kill('SIGTERM')
    await exited
  }

  /** Points `registry` at a mirror the way a node's hosts.toml does (deploy/). */
  async mirror (registry: string, mirrorUrl: string): Promise<void> {
    await mkdir(join(this.hostsDir, registry), { recursive: true })
    await writeFile(join(this.hostsDir, registry, 'hosts.toml'), [
      `server = "https://${registry}"`, `[host."${mirrorUrl}"]`, '  capabilities = ["pull", "resolve"]', '',
    ].join('\n'))
  }

  async ctr (args: string[]): Promise<string> {
    const { stdout } = await execFileAsync('ctr', ['--address', this.socket, ...args], { timeout: 30_000 })
    return stdout
  }
}

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
    await containerd.stop()
    await rm(dir, { recursive: true, force: true })
  })

  async function pull (ref: string): Promise<string> {
    await containerd.ctr(['image', 'pull', '--hosts-dir', containerd.hostsDir, ref])
    return await containerd.ctr(['image', 'ls'])
  }

  it('pulls and unpacks an image through the mirror (?ns=, HEAD resolve, blobs)', async () => {
    // The daemon's way of mounting the API, with a look at what containerd sends.
    const api = createHttpApi({ store: origin.store })
    const seen: string[] = []
    const server = createServer((req, res) => { seen.push(`${req.method ?? ''} ${req.url ?? ''}`); api.handler(req, res) })
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    try {
      await containerd.mirror('registry.example.com', `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
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
    await containerd.mirror('registry.example.com', running.base)
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
      await containerd.mirror('registry.example.com', `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
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
      await containerd.mirror('registry.example.com', running.base)
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
