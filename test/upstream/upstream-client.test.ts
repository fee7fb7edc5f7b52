import { createHash } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openStore, type Store } from '../../src/store/index.js'
import { createUpstream, type Upstream, type UpstreamInit } from '../../src/upstream/index.js'

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** A registry of our own making (node:http) that misbehaves on purpose, one handler per test. */
async function fakeRegistry (handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string, server: Server, close: () => Promise<void> }> {
  const server = createServer(handler)
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    },
  }
}

describe('the upstream client against a misbehaving registry', () => {
  let dir: string
  let store: Store
  const closers: Array<() => Promise<void>> = []

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-upstream-client-'))
    store = await openStore({ dir, fsync: false })
  })

  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function upstreamFor (handler: (req: IncomingMessage, res: ServerResponse) => void, init: Partial<UpstreamInit> = {}): Promise<Upstream> {
    const registry = await fakeRegistry(handler)
    closers.push(registry.close)
    const upstream = createUpstream({ store }, { url: registry.url, ...init })
    closers.push(async () => { await upstream.close() })
    return upstream
  }

  /** Nothing half-written is left: the staging area is empty and the digest is unknown to the store. */
  async function expectNothingStored (hex: string): Promise<void> {
    expect(await readdir(store.layout.tmp)).toEqual([])
    expect(await store.objectBySha256(hex)).toBeUndefined()
  }

  it('refuses a blob whose bytes do not hash to its digest, storing nothing', async () => {
    const good = Buffer.from('the real layer')
    const hex = sha256(good)
    const upstream = await upstreamFor((_req, res) => { res.end('a forged layer') })
    await expect(upstream.fetchBlob('team/app', `sha256:${hex}`, { signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'UPSTREAM_DIGEST_MISMATCH' })
    await expectNothingStored(hex)
  })

  it('stores a good blob as an object findable by its sha256', async () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 5, 7)
    const hex = sha256(bytes)
    let received = 0
    const upstream = await upstreamFor((_req, res) => { res.end(bytes) }, { onBytesReceived: n => { received += n } })
    await upstream.fetchBlob('team/app', `sha256:${hex}`, { signal: AbortSignal.timeout(5000), size: bytes.length })
    const object = await store.objectBySha256(hex)
    expect(object).toBeDefined()
    expect(await store.hasObject(object ?? '')).toBe(true)
    expect(received).toBe(bytes.length)
    expect(await readdir(store.layout.tmp)).toEqual([])
  })

  it('cuts off a body longer than its descriptor says, declared or not', async () => {
    const bytes = Buffer.alloc(4096, 1)
    const hex = sha256(bytes)
    const declared = await upstreamFor((_req, res) => { res.end(bytes) })
    await expect(declared.fetchBlob('team/app', `sha256:${hex}`, { signal: AbortSignal.timeout(5000), size: 100 })).rejects.toMatchObject({ code: 'UPSTREAM_TOO_LARGE' })
    const chunked = await upstreamFor((_req, res) => { res.write(bytes.subarray(0, 2048)); res.end(bytes.subarray(2048)) })
    await expect(chunked.fetchBlob('team/app', `sha256:${hex}`, { signal: AbortSignal.timeout(5000), size: 100 })).rejects.toMatchObject({ code: 'UPSTREAM_TOO_LARGE' })
    await expectNothingStored(hex)
  })

  it('gives up on a body that stalls, and removes its staging file', async () => {
    const hex = sha256(Buffer.from('never finished'))
    const upstream = await upstreamFor((_req, res) => {
      res.writeHead(200, { 'content-length': 14 })
      res.write('never')
    }, { bodyIdleTimeoutMs: 200 })
    const started = performance.now()
    await expect(upstream.fetchBlob('team/app', `sha256:${hex}`, { signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' })
    expect(performance.now() - started).toBeLessThan(2000)
    await expectNothingStored(hex)
  })

  it('refuses a manifest whose bytes disagree with the registry\'s Docker-Content-Digest', async () => {
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 2 }, layers: [] }))
    const upstream = await upstreamFor((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': `sha256:${'b'.repeat(64)}` })
      res.end(manifest)
    })
    await expect(upstream.fetchManifest('team/app', '1.0', { signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'UPSTREAM_DIGEST_MISMATCH' })
    expect(await store.objectBySha256(sha256(manifest))).toBeUndefined()
  })

  it('reports 404 as not found and 5xx as unavailable, with the status', async () => {
    let status = 404
    const upstream = await upstreamFor((_req, res) => { res.writeHead(status).end() })
    await expect(upstream.fetchManifest('team/app', '1.0', { signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'UPSTREAM_NOT_FOUND' })
    status = 502
    await expect(upstream.fetchManifest('team/app', '2.0', { signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 502 })
  })

  it('answers a Basic challenge with the credentials, and does not carry them across a redirect to another origin', async () => {
    const bytes = Buffer.from('layer bytes in object storage')
    const hex = sha256(bytes)
    const storage: Array<string | undefined> = []
    const objectStore = await fakeRegistry((req, res) => { storage.push(req.headers.authorization); res.end(bytes) })
    closers.push(objectStore.close)
    const seen: Array<string | undefined> = []
    const upstream = await upstreamFor((req, res) => {
      seen.push(req.headers.authorization)
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' }).end()
        return
      }
      res.writeHead(307, { location: `${objectStore.url}/bucket/${hex}` }).end()
    }, { credentials: { username: 'u', password: 'p' } })
    await upstream.fetchBlob('team/app', `sha256:${hex}`, { signal: AbortSignal.timeout(5000) })
    expect(seen).toEqual([undefined, `Basic ${Buffer.from('u:p').toString('base64')}`])
    expect(storage).toEqual([undefined])
    expect(await store.objectBySha256(hex)).toBeDefined()
  })

  it('files Docker Hub under docker.io and asks it for official images under library/', async () => {
    const asked: string[] = []
    const fakeFetch: typeof fetch = async (input) => {
      asked.push(String(input))
      return new Response(null, { status: 404 })
    }
    const hub = createUpstream({ store }, { url: 'https://registry-1.docker.io', fetch: fakeFetch })
    closers.push(async () => { await hub.close() })
    expect(hub.namespace).toBe('docker.io')
    expect(hub.serves('docker.io')).toBe(true)
    expect(hub.serves('ghcr.io')).toBe(false)
    await expect(hub.fetchManifest('alpine', '3.19', { signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'UPSTREAM_NOT_FOUND' })
    await expect(hub.fetchManifest('team/app', '1.0', { signal: AbortSignal.timeout(5000) })).rejects.toMatchObject({ code: 'UPSTREAM_NOT_FOUND' })
    expect(asked).toEqual(['https://registry-1.docker.io/v2/library/alpine/manifests/3.19', 'https://registry-1.docker.io/v2/team/app/manifests/1.0'])
  })

  it('refuses an upstream URL that is not a registry root', () => {
    expect(() => createUpstream({ store }, { url: 'ftp://example.com' })).toThrow(expect.objectContaining({ code: 'UPSTREAM_CONFIG_INVALID' }) as Error)
    expect(() => createUpstream({ store }, { url: 'https://example.com/v2/' })).toThrow(expect.objectContaining({ code: 'UPSTREAM_CONFIG_INVALID' }) as Error)
    expect(() => createUpstream({ store }, { url: 'not a url' })).toThrow(expect.objectContaining({ code: 'UPSTREAM_CONFIG_INVALID' }) as Error)
  })

  it('stops a fetch in flight when closed', async () => {
    const hex = sha256(Buffer.from('slow'))
    let arrived: () => void = () => {}
    const requested = new Promise<void>(resolve => { arrived = resolve })
    const upstream = await upstreamFor((_req, res) => { res.writeHead(200, { 'content-length': 4 }); res.write('s'); arrived() })
    const fetching = upstream.fetchBlob('team/app', `sha256:${hex}`, { signal: AbortSignal.timeout(10_000) })
    await requested
    await upstream.close()
    await expect(fetching).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' })
    await expectNothingStored(hex)
  })
})
