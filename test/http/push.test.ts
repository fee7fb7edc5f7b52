import { randomBytes } from 'node:crypto'
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { validateLayout } from '../../src/oci/index.js'
import { bundleOfTree, exportTree, verifyStore, type Store } from '../../src/store/index.js'
import { expectRegistryError, objectCount, sha256Of, startApi, tempStore, type RunningApi } from './helpers.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const NAME = '/v2/registry.example.com/team/app'

describe('registry API, push side', () => {
  let stored: Awaited<ReturnType<typeof tempStore>>
  let store: Store
  let running: RunningApi
  let work: string

  beforeEach(async () => {
    stored = await tempStore()
    store = stored.store
    running = await startApi({ store }, { allowPush: true, defaultRegistry: 'gateway.local' })
  })

  afterEach(async () => {
    await running.api.close()
    await stored.close()
  })

  beforeAll(async () => { work = await mkdtemp(join(tmpdir(), 'shoal-http-push-')) })
  afterAll(async () => { await rm(work, { recursive: true, force: true }) })

  const request = async (path: string, init: RequestInit = {}): Promise<Response> => await fetch(path.startsWith('http') ? path : running.base + path, init)
  const digestOf = (bytes: Buffer): string => `sha256:${sha256Of(bytes)}`

  async function pushMonolithic (bytes: Buffer): Promise<string> {
    const digest = digestOf(bytes)
    const response = await request(`${NAME}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes })
    expect(response.status).toBe(201)
    return digest
  }

  async function pushImage (layers: Buffer[]): Promise<{ manifest: Buffer, digest: string, config: Buffer }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }))
    await pushMonolithic(config)
    for (const layer of layers) await pushMonolithic(layer)
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: layers.map(l => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(l), size: l.length })),
    }))
    return { manifest, digest: digestOf(manifest), config }
  }

  it('takes a monolithic upload (POST ?digest=) and serves the blob back', async () => {
    const bytes = randomBytes(5000)
    const digest = digestOf(bytes)
    const response = await request(`${NAME}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: bytes })
    expect(response.status).toBe(201)
    expect(response.headers.get('location')).toBe(`${NAME}/blobs/${digest}`)
    expect(response.headers.get('docker-content-digest')).toBe(digest)
    const head = await request(`${NAME}/blobs/${digest}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe('5000')
    expect(Buffer.from(await (await request(`${NAME}/blobs/${digest}`)).arrayBuffer()).equals(bytes)).toBe(true)
  })

  it('takes a chunked upload: POST, PATCHes in order, status, PUT ?digest=', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 123)
    const digest = digestOf(bytes)
    const start = await request(`${NAME}/blobs/uploads/`, { method: 'POST' })
    expect(start.status).toBe(202)
    const uuid = start.headers.get('docker-upload-uuid') ?? ''
    expect(start.headers.get('location')).toBe(`${NAME}/blobs/uploads/${uuid}`)
    expect(start.headers.get('range')).toBe('0-0')
    let location = start.headers.get('location') ?? ''

    const cut = 1024 * 1024
    const first = await request(location, { method: 'PATCH', body: bytes.subarray(0, cut), headers: { 'Content-Range': `0-${cut - 1}`, 'Content-Type': 'application/octet-stream' } })
    expect(first.status).toBe(202)
    expect(first.headers.get('range')).toBe(`0-${cut - 1}`)
    location = first.headers.get('location') ?? ''

    // distribution-spec: a chunk that does not start where the last ended is a 416 saying where we are.
    const outOfOrder = await request(location, { method: 'PATCH', body: bytes.subarray(cut + 10, cut + 20), headers: { 'Content-Range': `${cut + 10}-${cut + 19}` } })
    expect(outOfOrder.headers.get('range')).toBe(`0-${cut - 1}`)
    expect(outOfOrder.headers.get('location')).toBe(location)
    await expectRegistryError(outOfOrder, 'RANGE_INVALID')

    const status = await request(location)
    expect(status.status).toBe(204)
    expect(status.headers.get('range')).toBe(`0-${cut - 1}`)

    // A streamed PATCH without Content-Range (what skopeo sends) appends.
    const second = await request(location, { method: 'PATCH', body: bytes.subarray(cut) })
    expect(second.status).toBe(202)
    expect(second.headers.get('range')).toBe(`0-${bytes.length - 1}`)

    const done = await request(`${location}?digest=${digest}`, { method: 'PUT' })
    expect(done.status).toBe(201)
    expect(done.headers.get('docker-content-digest')).toBe(digest)
    expect(Buffer.from(await (await request(`${NAME}/blobs/${digest}`)).arrayBuffer()).equals(bytes)).toBe(true)
    await expectRegistryError(await request(location), 'BLOB_UPLOAD_UNKNOWN')
  })

  it('takes the last chunk in the completing PUT', async () => {
    const bytes = randomBytes(3000)
    const digest = digestOf(bytes)
    const location = (await request(`${NAME}/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? ''
    await request(location, { method: 'PATCH', body: bytes.subarray(0, 1000) })
    const done = await request(`${location}?digest=${digest}`, { method: 'PUT', body: bytes.subarray(1000), headers: { 'Content-Range': `1000-${bytes.length - 1}` } })
    expect(done.status).toBe(201)
    expect((await request(`${NAME}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(200)
  })

  it('refuses an upload whose digest does not match with DIGEST_INVALID, and stores nothing', async () => {
    const before = await objectCount(stored.dir)
    const bytes = randomBytes(4096)
    const wrong = digestOf(randomBytes(16))
    await expectRegistryError(await request(`${NAME}/blobs/uploads/?digest=${wrong}`, { method: 'POST', body: bytes }), 'DIGEST_INVALID')
    const location = (await request(`${NAME}/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? ''
    await request(location, { method: 'PATCH', body: bytes })
    const body = await expectRegistryError(await request(`${location}?digest=${wrong}`, { method: 'PUT' }), 'DIGEST_INVALID')
    expect(body.errors[0]?.detail).toEqual({ digest: wrong, actual: digestOf(bytes) })
    expect(await objectCount(stored.dir)).toBe(before)
    expect(await store.objectBySha256(wrong.slice(7))).toBeUndefined()
    expect(await store.objectBySha256(sha256Of(bytes))).toBeUndefined()
    expect((await request(`${NAME}/blobs/${digestOf(bytes)}`, { method: 'HEAD' })).status).toBe(404)
    expect((await readdir(store.layout.tmp)).filter(f => f.startsWith('upload-'))).toEqual([])
  })

  it('refuses a monolithic upload with a malformed digest before opening a session', async () => {
    await expectRegistryError(await request(`${NAME}/blobs/uploads/?digest=sha256:nothex`, { method: 'POST', body: 'abc' }), 'DIGEST_INVALID')
    expect((await readdir(store.layout.tmp)).filter(f => f.startsWith('upload-'))).toEqual([])
  })

  it('refuses a completing PUT without a digest, and a PATCH to an unknown or foreign session', async () => {
    const location = (await request(`${NAME}/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? ''
    await expectRegistryError(await request(location, { method: 'PUT' }), 'DIGEST_INVALID')
    await expectRegistryError(await request(`${NAME}/blobs/uploads/${crypto.randomUUID()}`, { method: 'PATCH', body: 'x' }), 'BLOB_UPLOAD_UNKNOWN')
    await expectRegistryError(await request(`${NAME}/blobs/uploads/not-a-session`, { method: 'PATCH', body: 'x' }), 'BLOB_UPLOAD_UNKNOWN')
    const foreign = location.replace('/team/app/', '/team/other/')
    await expectRegistryError(await request(foreign, { method: 'PATCH', body: 'x' }), 'BLOB_UPLOAD_UNKNOWN')
  })

  it('cancels an upload with DELETE and removes its staging file', async () => {
    const location = (await request(`${NAME}/blobs/uploads/`, { method: 'POST' })).headers.get('location') ?? ''
    await request(location, { method: 'PATCH', body: randomBytes(1000) })
    expect((await readdir(store.layout.tmp)).filter(f => f.startsWith('upload-'))).toHaveLength(1)
    expect((await request(location, { method: 'DELETE' })).status).toBe(204)
    expect((await readdir(store.layout.tmp)).filter(f => f.startsWith('upload-'))).toEqual([])
    await expectRegistryError(await request(location, { method: 'PATCH', body: 'x' }), 'BLOB_UPLOAD_UNKNOWN')
  })

  it('mounts a blob it holds from another repository (201), and falls back to an upload otherwise (202)', async () => {
    const digest = await pushMonolithic(randomBytes(100))
    const mounted = await request(`/v2/registry.example.com/other/app/blobs/uploads/?mount=${digest}&from=team/app`, { method: 'POST' })
    expect(mounted.status).toBe(201)
    expect(mounted.headers.get('location')).toBe(`/v2/registry.example.com/other/app/blobs/${digest}`)
    const fallback = await request(`/v2/registry.example.com/other/app/blobs/uploads/?mount=sha256:${'1'.repeat(64)}&from=team/app`, { method: 'POST' })
    expect(fallback.status).toBe(202)
    expect(fallback.headers.get('docker-upload-uuid')).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('makes a pushed manifest a bundle that is an OCI layout of the image, with the ref pointing at it', async () => {
    const layers = [randomBytes(2 * 1024 * 1024 + 7), randomBytes(700)]
    const { manifest, digest } = await pushImage(layers)
    const response = await request(`${NAME}/manifests/1.0`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })
    expect(response.status).toBe(201)
    expect(response.headers.get('docker-content-digest')).toBe(digest)
    expect(response.headers.get('location')).toBe(`${NAME}/manifests/${digest}`)

    const ref = await store.getRef('registry.example.com/team/app:1.0')
    expect(ref?.manifestDigest).toBe(digest)
    const revisions = await store.revisions('registry.example.com/team/app:1.0')
    expect(revisions.at(-1)).toMatchObject({ ref: 'registry.example.com/team/app:1.0', bundleId: ref?.bundleId, manifestDigest: digest })
    expect((await verifyStore(store, { bundleId: ref?.bundleId })).ok).toBe(true)

    const out = join(work, `export-${ref?.bundleId ?? ''}`)
    await exportTree(store, ref?.bundleId ?? '', out)
    await validateLayout(out)
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as unknown
    expect(index).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{
        mediaType: OCI_MANIFEST,
        digest,
        size: manifest.length,
        annotations: { 'io.containerd.image.name': 'registry.example.com/team/app:1.0', 'org.opencontainers.image.ref.name': '1.0' },
      }],
    })
    // The bundle is the one a push of that directory would make: same tree, same chunk tables.
    expect((await bundleOfTree(out)).bundleId).toBe(ref?.bundleId)

    const served = await request(`${NAME}/manifests/1.0`)
    expect(Buffer.from(await served.arrayBuffer()).equals(manifest)).toBe(true)
    expect(served.headers.get('content-type')).toBe(OCI_MANIFEST)
  })

  it('builds chunk tables of blobs uploaded before a restart by reading them again', async () => {
    const { manifest } = await pushImage([randomBytes(3 * 1024 * 1024)])
    // A fresh API has no memory of the uploads' chunk tables.
    await running.api.close()
    running = await startApi({ store }, { allowPush: true })
    expect((await request(`${NAME}/manifests/2.0`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(201)
    const ref = await store.getRef('registry.example.com/team/app:2.0')
    expect((await verifyStore(store, { bundleId: ref?.bundleId })).ok).toBe(true)
  })

  it('refuses a manifest naming blobs it does not hold with MANIFEST_BLOB_UNKNOWN, listing them', async () => {
    const { manifest } = await pushImage([randomBytes(10)])
    const parsed = JSON.parse(manifest.toString()) as { layers: Array<{ digest: string, size: number, mediaType: string }> }
    const missing = `sha256:${'e'.repeat(64)}`
    parsed.layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: missing, size: 5 })
    const response = await request(`${NAME}/manifests/1.0`, { method: 'PUT', body: JSON.stringify(parsed), headers: { 'Content-Type': OCI_MANIFEST } })
    const body = await expectRegistryError(response, 'MANIFEST_BLOB_UNKNOWN')
    expect(body.errors[0]?.detail).toEqual({ digest: missing, missing: [missing] })
    expect(await store.getRef('registry.example.com/team/app:1.0')).toBeUndefined()
  })

  it('refuses a manifest that is not JSON, of an unknown type, too large, or with a wrong size', async () => {
    const put = async (body: string | Buffer, type = OCI_MANIFEST): Promise<Response> => await request(`${NAME}/manifests/1.0`, { method: 'PUT', body, headers: { 'Content-Type': type } })
    await expectRegistryError(await put('not json'), 'MANIFEST_INVALID')
    await expectRegistryError(await put(JSON.stringify({ schemaVersion: 1, name: 'x' })), 'MANIFEST_INVALID')
    await expectRegistryError(await put(JSON.stringify({ schemaVersion: 2, mediaType: 'application/x-thing', config: {}, layers: [] }), 'application/x-thing'), 'MANIFEST_INVALID')
    await expectRegistryError(await put(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] })), 'MANIFEST_INVALID')
    await expectRegistryError(await put(Buffer.alloc(4 * 1024 * 1024 + 1, 0x20)), 'MANIFEST_INVALID')
    const { manifest } = await pushImage([randomBytes(10)])
    const parsed = JSON.parse(manifest.toString()) as { layers: Array<{ size: number }> }
    const [layer] = parsed.layers
    if (layer !== undefined) layer.size = 11
    const body = await expectRegistryError(await put(JSON.stringify(parsed)), 'MANIFEST_INVALID')
    expect(body.errors[0]?.detail).toMatchObject({ size: 10, declared: 11 })
  })

  it('refuses a digest push whose body does not hash to the digest with DIGEST_INVALID', async () => {
    const { manifest } = await pushImage([randomBytes(10)])
    await expectRegistryError(await request(`${NAME}/manifests/sha256:${'0'.repeat(64)}`, { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } }), 'DIGEST_INVALID')
  })

  it('stores a digest push without a tag, for an index pushed after it', async () => {
    const child = await pushImage([randomBytes(10)])
    const pushed = await request(`${NAME}/manifests/${child.digest}`, { method: 'PUT', body: child.manifest, headers: { 'Content-Type': OCI_MANIFEST } })
    expect(pushed.status).toBe(201)
    expect(await store.refNames()).toEqual([])
    expect((await request(`${NAME}/manifests/${child.digest}`)).status).toBe(200)
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.manifest.length, platform: { architecture: 'amd64', os: 'linux' } }],
    }))
    expect((await request(`${NAME}/manifests/multi`, { method: 'PUT', body: index, headers: { 'Content-Type': OCI_INDEX } })).status).toBe(201)
    const ref = await store.getRef('registry.example.com/team/app:multi')
    const paths = (await store.requireBundle(ref?.bundleId ?? '')).manifest.entries.map(e => e.path)
    // The index, the child manifest, its config and its layer.
    expect(paths.filter(p => p.startsWith('./blobs/sha256/') && !p.endsWith('/'))).toHaveLength(4)
  })

  it('refuses an index whose child manifest is damaged in the store with MANIFEST_INVALID, and makes no bundle', async () => {
    const child = await pushImage([randomBytes(10)])
    expect((await request(`${NAME}/manifests/${child.digest}`, { method: 'PUT', body: child.manifest, headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(201)
    // Same size, other bytes: only hashing the child again tells.
    const object = (await store.objectBySha256(child.digest.slice('sha256:'.length))) ?? ''
    const path = store.objectPath(object)
    await chmod(path, 0o600)
    await writeFile(path, Buffer.alloc(child.manifest.length, 0x20))
    const index = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: child.digest, size: child.manifest.length, platform: { architecture: 'amd64', os: 'linux' } }],
    }))
    const body = await expectRegistryError(await request(`${NAME}/manifests/multi`, { method: 'PUT', body: index, headers: { 'Content-Type': OCI_INDEX } }), 'MANIFEST_INVALID')
    expect(body.errors[0]?.message).toContain(`child manifest ${child.digest} is damaged in this store`)
    expect(await store.refNames()).toEqual([])
  })

  it('files a push without a registry host under the configured default registry', async () => {
    const { manifest } = await pushImage([randomBytes(10)])
    expect((await request('/v2/team/app/manifests/1.0', { method: 'PUT', body: manifest, headers: { 'Content-Type': OCI_MANIFEST } })).status).toBe(201)
    expect(await store.refNames()).toEqual(['gateway.local/team/app:1.0'])
    expect((await request('/v2/team/app/manifests/1.0', { method: 'HEAD' })).status).toBe(200)
    expect((await request('/v2/gateway.local/team/app/manifests/1.0', { method: 'HEAD' })).status).toBe(200)
  })
})
