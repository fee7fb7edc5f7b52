import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pushTree, type Store } from '../../src/store/index.js'
import {
  expectRegistryError, pushLayouts, readBlob, sha256Of, startApi, tempImages, tempStore, topDigest, type RunningApi,
} from './helpers.js'

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
// What containerd sends when it resolves a tag (FACTS.md "Real clients").
const CONTAINERD_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
  OCI_MANIFEST, OCI_INDEX, '*/*',
].join(', ')

describe('registry API, pull side', () => {
  let images: Awaited<ReturnType<typeof tempImages>>
  let stored: Awaited<ReturnType<typeof tempStore>>
  let store: Store
  let running: RunningApi
  let app1: string
  let baseLayer: { digest: string, size: number }
  let baseBytes: Buffer

  beforeAll(async () => {
    images = await tempImages()
    stored = await tempStore()
    store = stored.store
    await pushLayouts(store, images.images, ['app1', 'multi'])
    // More tags of app1, for pagination.
    await pushTree(store, images.images.layouts.app1 ?? '', { refs: ['registry.example.com/shoal/app1:1.1', 'registry.example.com/shoal/app1:2.0'] })
    running = await startApi({ store })
    app1 = images.images.layouts.app1 ?? ''
    baseLayer = images.images.baseLayer
    baseBytes = await readBlob(app1, baseLayer.digest)
  })

  afterAll(async () => {
    await running?.api.close()
    await stored?.close()
    await images?.close()
  })

  const get = async (path: string, init: RequestInit = {}): Promise<Response> => await fetch(running.base + path, init)
  const blobPath = (digest: string): string => `/v2/registry.example.com/shoal/app1/blobs/${digest}`

  it('answers GET /v2/ with 200 {} and the API version header', async () => {
    const response = await get('/v2/')
    expect(response.status).toBe(200)
    expect(response.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    expect(await response.json()).toEqual({})
  })

  it('serves a manifest by tag: its bytes, its own media type, length and digest', async () => {
    const digest = await topDigest(app1)
    const response = await get('/v2/registry.example.com/shoal/app1/manifests/1.0')
    const bytes = Buffer.from(await response.arrayBuffer())
    expect(response.status).toBe(200)
    expect(bytes.equals(await readBlob(app1, digest))).toBe(true)
    expect(response.headers.get('content-type')).toBe(OCI_MANIFEST)
    expect(response.headers.get('content-length')).toBe(String(bytes.length))
    expect(response.headers.get('docker-content-digest')).toBe(digest)
  })

  it('answers HEAD on a manifest with the same headers and no body', async () => {
    const response = await get('/v2/registry.example.com/shoal/app1/manifests/1.0', { method: 'HEAD', headers: { Accept: CONTAINERD_ACCEPT } })
    expect(response.status).toBe(200)
    expect(response.headers.get('docker-content-digest')).toBe(await topDigest(app1))
    expect(Number(response.headers.get('content-length'))).toBeGreaterThan(0)
    expect((await response.arrayBuffer()).byteLength).toBe(0)
  })

  it('resolves containerd mirror requests (?ns=) and echoes the namespace as OCI-Namespace', async () => {
    const head = await get('/v2/shoal/app1/manifests/1.0?ns=registry.example.com', { method: 'HEAD', headers: { Accept: CONTAINERD_ACCEPT } })
    expect(head.status).toBe(200)
    expect(head.headers.get('oci-namespace')).toBe('registry.example.com')
    const blob = await get(`/v2/shoal/app1/blobs/${baseLayer.digest}?ns=registry.example.com`)
    expect(blob.headers.get('oci-namespace')).toBe('registry.example.com')
    expect(sha256Of(Buffer.from(await blob.arrayBuffer()))).toBe(baseLayer.digest.slice(7))
    const miss = await get('/v2/shoal/app1/manifests/9.9?ns=registry.example.com')
    expect(miss.headers.get('oci-namespace')).toBe('registry.example.com')
    await expectRegistryError(miss, 'MANIFEST_UNKNOWN')
    // The same repository under another upstream is another image.
    await expectRegistryError(await get('/v2/shoal/app1/manifests/1.0?ns=other.example.com'), 'MANIFEST_UNKNOWN')
  })

  it('serves an image index with the index media type, and its children by digest', async () => {
    const multi = images.images.layouts.multi ?? ''
    const response = await get('/v2/registry.example.com/shoal/multi/manifests/1.0')
    expect(response.headers.get('content-type')).toBe(OCI_INDEX)
    const index = JSON.parse(await response.text()) as { manifests: Array<{ digest: string, platform: { architecture: string } }> }
    for (const child of index.manifests) {
      const byDigest = await get(`/v2/registry.example.com/shoal/multi/manifests/${child.digest}`)
      expect(byDigest.status).toBe(200)
      expect(byDigest.headers.get('content-type')).toBe(OCI_MANIFEST)
      expect(byDigest.headers.get('docker-content-digest')).toBe(child.digest)
      expect(Buffer.from(await byDigest.arrayBuffer()).equals(await readBlob(multi, child.digest))).toBe(true)
    }
  })

  it('does not serve a layer as a manifest', async () => {
    await expectRegistryError(await get(`/v2/registry.example.com/shoal/app1/manifests/${baseLayer.digest}`), 'MANIFEST_UNKNOWN')
  })

  it('serves a blob whole with length, digest, Accept-Ranges and octet-stream', async () => {
    const response = await get(blobPath(baseLayer.digest))
    const bytes = Buffer.from(await response.arrayBuffer())
    expect(response.status).toBe(200)
    expect(bytes.equals(baseBytes)).toBe(true)
    expect(response.headers.get('content-length')).toBe(String(baseLayer.size))
    expect(response.headers.get('docker-content-digest')).toBe(baseLayer.digest)
    expect(response.headers.get('accept-ranges')).toBe('bytes')
    expect(response.headers.get('content-type')).toBe('application/octet-stream')
    const head = await get(blobPath(baseLayer.digest), { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('content-length')).toBe(String(baseLayer.size))
  })

  it.each([
    ['bytes=0-9', 0, 9],
    ['bytes=1048570-1048600', 1048570, 1048600],
    ['bytes=2097152-', 2097152, -1],
    ['bytes=-100', -100, -1],
    ['bytes=3000000-99999999', 3000000, -1],
  ])('answers Range %s with 206, Content-Range and exactly those bytes', async (range, from, to) => {
    const size = baseBytes.length
    const start = from < 0 ? size + from : from
    const end = to < 0 ? size - 1 : to
    const response = await get(blobPath(baseLayer.digest), { headers: { Range: range } })
    expect(response.status).toBe(206)
    expect(response.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`)
    expect(response.headers.get('content-length')).toBe(String(end - start + 1))
    expect(Buffer.from(await response.arrayBuffer()).equals(baseBytes.subarray(start, end + 1))).toBe(true)
  })

  it.each([
    'bytes=99999999-', 'bytes=-0', 'bytes=10-5', 'bytes=-5-10', 'bytes=--3', 'bytes=123456789012345678901234-',
    'bytes=0-1,5-6', 'bytes=x-y', 'chunks=0-1',
  ])('refuses Range %s with 416 RANGE_INVALID and Content-Range bytes */size', async (range) => {
    const response = await get(blobPath(baseLayer.digest), { headers: { Range: range } })
    expect(response.headers.get('content-range')).toBe(`bytes */${baseLayer.size}`)
    await expectRegistryError(response, 'RANGE_INVALID')
  })

  it('answers an unknown manifest, blob or repository with a fast 404', async () => {
    const started = performance.now()
    await expectRegistryError(await get('/v2/registry.example.com/shoal/app1/manifests/nope'), 'MANIFEST_UNKNOWN')
    await expectRegistryError(await get(`/v2/registry.example.com/shoal/app1/manifests/sha256:${'0'.repeat(64)}`), 'MANIFEST_UNKNOWN')
    await expectRegistryError(await get(blobPath(`sha256:${'0'.repeat(64)}`)), 'BLOB_UNKNOWN')
    const head = await get(blobPath(`sha256:${'0'.repeat(64)}`), { method: 'HEAD' })
    expect(head.status).toBe(404)
    expect((await head.arrayBuffer()).byteLength).toBe(0)
    await expectRegistryError(await get('/v2/registry.example.com/nobody/tags/list'), 'NAME_UNKNOWN')
    expect(performance.now() - started).toBeLessThan(1000)
  })

  it.each([
    '/v2/registry.example.com/Shoal/app1/manifests/1.0',
    '/v2/registry.example.com/shoal//app1/manifests/1.0',
    '/v2/registry.example.com/-shoal/app1/manifests/1.0',
    `/v2/registry.example.com/${'a'.repeat(300)}/manifests/1.0`,
    '/v2/shoal/app1/manifests/1.0?ns=bad/host',
    '/v2/registry.example.com/shoal/app%ZZ1/manifests/1.0',
  ])('refuses a malformed name (%s) with NAME_INVALID or a JSON 404', async (path) => {
    const response = await get(path)
    const body = await expectRegistryError(response, response.status === 404 ? 'NOT_FOUND' : 'NAME_INVALID')
    expect(body.errors).toHaveLength(1)
  })

  it.each([
    'sha256:abc', `sha256:${'A'.repeat(64)}`, `sha256:${'z'.repeat(64)}`, `sha512:${'a'.repeat(128)}`, 'md5:d41d8cd98f00b204e9800998ecf8427e', 'sha256:',
  ])('refuses a malformed or unsupported digest (%s) with DIGEST_INVALID', async (digest) => {
    await expectRegistryError(await get(blobPath(digest)), 'DIGEST_INVALID')
    await expectRegistryError(await get(`/v2/registry.example.com/shoal/app1/manifests/${digest}`), 'DIGEST_INVALID')
  })

  it('refuses a malformed tag with TAG_INVALID', async () => {
    await expectRegistryError(await get('/v2/registry.example.com/shoal/app1/manifests/.x'), 'TAG_INVALID')
  })

  it.each(['/', '/index.html', '/v1/', '/v2/x', '/v2/registry.example.com/shoal/app1/other/1.0', '/api/v1/status', '//v2/'])(
    'answers %s, which is not the API, with a JSON 404',
    async (path) => {
      await expectRegistryError(await get(path), 'NOT_FOUND')
    })

  it('refuses a method a route does not have with 405 UNSUPPORTED and Allow', async () => {
    const response = await get('/v2/registry.example.com/shoal/app1/manifests/1.0', { method: 'DELETE' })
    expect(response.headers.get('allow')).toBe('GET, HEAD, PUT')
    await expectRegistryError(response, 'UNSUPPORTED')
  })

  it('refuses pushes when pushes are off', async () => {
    const name = '/v2/registry.example.com/shoal/app1'
    await expectRegistryError(await get(`${name}/blobs/uploads/`, { method: 'POST' }), 'UNSUPPORTED')
    await expectRegistryError(await get(`${name}/blobs/uploads/?digest=sha256:${'0'.repeat(64)}`, { method: 'POST', body: 'x' }), 'UNSUPPORTED')
    await expectRegistryError(await get(`${name}/manifests/1.0`, { method: 'PUT', body: '{}', headers: { 'Content-Type': OCI_MANIFEST } }), 'UNSUPPORTED')
    await expectRegistryError(await get(`${name}/blobs/uploads/00000000-0000-0000-0000-000000000000`, { method: 'PATCH', body: 'x' }), 'UNSUPPORTED')
    expect(await store.getRef('registry.example.com/shoal/app1:1.0')).toBeDefined()
  })

  it('lists tags in order, n at a time, with a Link header to the next page', async () => {
    const all = await get('/v2/registry.example.com/shoal/app1/tags/list')
    expect(await all.json()).toEqual({ name: 'registry.example.com/shoal/app1', tags: ['1.0', '1.1', '2.0'] })
    const first = await get('/v2/registry.example.com/shoal/app1/tags/list?n=2')
    expect(await first.json()).toEqual({ name: 'registry.example.com/shoal/app1', tags: ['1.0', '1.1'] })
    const link = first.headers.get('link')
    expect(link).toBe('</v2/registry.example.com/shoal/app1/tags/list?n=2&last=1.1>; rel="next"')
    const next = await get(/<([^>]+)>/.exec(link ?? '')?.[1] ?? '')
    expect(await next.json()).toEqual({ name: 'registry.example.com/shoal/app1', tags: ['2.0'] })
    expect(next.headers.get('link')).toBeNull()
    const mirror = await get('/v2/shoal/app1/tags/list?ns=registry.example.com&n=1&last=1.0')
    expect(await mirror.json()).toEqual({ name: 'shoal/app1', tags: ['1.1'] })
    expect(mirror.headers.get('link')).toContain('ns=registry.example.com')
    await expectRegistryError(await get('/v2/registry.example.com/shoal/app1/tags/list?n=-1'), 'PAGINATION_NUMBER_INVALID')
  })

  it('lists the catalog of repositories', async () => {
    const response = await get('/v2/_catalog')
    expect(await response.json()).toEqual({ repositories: ['registry.example.com/shoal/app1', 'registry.example.com/shoal/multi'] })
    const page = await get('/v2/_catalog?n=1')
    expect(await page.json()).toEqual({ repositories: ['registry.example.com/shoal/app1'] })
    expect(page.headers.get('link')).toContain('last=registry.example.com%2Fshoal%2Fapp1')
  })

  it('answers /healthz with ok', async () => {
    const response = await get('/healthz')
    expect(response.status).toBe(200)
    expect(await response.text()).toBe('ok')
  })
})
