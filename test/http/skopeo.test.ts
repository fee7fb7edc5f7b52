import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pushTree, verifyStore, type Store } from '../../src/store/index.js'
import { layoutBlobs, pushLayouts, readBlob, skopeo, startApi, tempImages, tempStore, topDigest, type RunningApi } from './helpers.js'

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'

interface Inspect { Digest: string, Architecture: string, Os: string, Layers: string[], RepoTags: string[] }

// skopeo 1.9 (Debian) against a real socket: the client containerd's mirror users and
// gateway operators actually run.
describe('registry API with skopeo', () => {
  let images: Awaited<ReturnType<typeof tempImages>>
  let stored: Awaited<ReturnType<typeof tempStore>>
  let store: Store
  let running: RunningApi
  let work: string

  beforeAll(async () => {
    images = await tempImages()
    stored = await tempStore()
    store = stored.store
    work = await mkdtemp(join(tmpdir(), 'shoal-http-skopeo-'))
    await pushLayouts(store, images.images, ['app1', 'multi'])
    // A Docker schema 2 image in an OCI layout: skopeo converts the manifest, keeps the layers.
    await skopeo(['copy', '--format', 'v2s2', `oci:${images.images.layouts.app1 ?? ''}:1.0`, `oci:${join(work, 'docker1')}:1.0`])
    await pushTree(store, join(work, 'docker1'), { refs: ['registry.example.com/shoal/docker1:1.0'] })
    running = await startApi({ store }, { allowPush: true })
  })

  afterAll(async () => {
    await running?.api.close()
    await stored?.close()
    await images?.close()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  const docker = (name: string): string => `docker://${running.host}/${name}`

  it('copies an image out to an OCI layout with every blob identical to the source', async () => {
    const out = join(work, 'pulled-app1')
    await skopeo(['copy', '--src-tls-verify=false', docker('registry.example.com/shoal/app1:1.0'), `oci:${out}:1.0`])
    expect(await layoutBlobs(out)).toEqual(await layoutBlobs(images.images.layouts.app1 ?? ''))
  })

  it('inspects an OCI image', async () => {
    const info = JSON.parse(await skopeo(['inspect', '--tls-verify=false', docker('registry.example.com/shoal/app1:1.0')])) as Inspect
    expect(info.Digest).toBe(await topDigest(images.images.layouts.app1 ?? ''))
    expect(info).toMatchObject({ Architecture: 'amd64', Os: 'linux', RepoTags: ['1.0'] })
    expect(info.Layers).toContain(images.images.baseLayer.digest)
  })

  it('inspects a Docker media type image and serves it with the Docker media type', async () => {
    const name = 'registry.example.com/shoal/docker1:1.0'
    const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', docker(name)])) as { mediaType: string }
    expect(raw.mediaType).toBe(DOCKER_MANIFEST)
    const info = JSON.parse(await skopeo(['inspect', '--tls-verify=false', docker(name)])) as Inspect
    expect(info.Digest).toBe(await topDigest(join(work, 'docker1')))
    expect(info.Layers).toContain(images.images.baseLayer.digest)
    const response = await fetch(`${running.base}/v2/registry.example.com/shoal/docker1/manifests/1.0`, { method: 'HEAD' })
    expect(response.headers.get('content-type')).toBe(DOCKER_MANIFEST)
  })

  it('inspects a multi-platform index raw, and one platform of it with --override-arch', async () => {
    const multi = images.images.layouts.multi ?? ''
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', docker('registry.example.com/shoal/multi:1.0')])
    expect(Buffer.from(raw).equals(await readBlob(multi, await topDigest(multi)))).toBe(true)
    const arm = JSON.parse(await skopeo(['inspect', '--override-arch', 'arm64', '--tls-verify=false', docker('registry.example.com/shoal/multi:1.0')])) as Inspect
    expect(arm).toMatchObject({ Architecture: 'arm64', Os: 'linux' })
    const index = JSON.parse(raw) as { manifests: Array<{ digest: string, platform: { architecture: string } }> }
    const armManifest = JSON.parse((await readBlob(multi, index.manifests.find(m => m.platform.architecture === 'arm64')?.digest ?? '')).toString()) as { layers: Array<{ digest: string }> }
    expect(arm.Layers).toEqual(armManifest.layers.map(l => l.digest))
  })

  it('takes a push, files it as a bundle and ref, and serves it back identically', async () => {
    const app2 = images.images.layouts.app2 ?? ''
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${app2}:1.0`, docker('registry.example.com/team/app:1.0')])
    const ref = await store.getRef('registry.example.com/team/app:1.0')
    expect(ref?.manifestDigest).toBe(await topDigest(app2))
    const bundle = await store.requireBundle(ref?.bundleId ?? '')
    const paths = bundle.manifest.entries.map(e => e.path)
    expect(paths).toEqual(expect.arrayContaining(['./oci-layout', './index.json', ...Object.keys(await layoutBlobs(app2)).map(h => `./blobs/sha256/${h}`)]))
    expect((await verifyStore(store, { bundleId: ref?.bundleId })).ok).toBe(true)

    const out = join(work, 'pulled-app')
    await skopeo(['copy', '--src-tls-verify=false', docker('registry.example.com/team/app:1.0'), `oci:${out}:1.0`])
    expect(await layoutBlobs(out)).toEqual(await layoutBlobs(app2))
  })

  it('takes a multi-platform push (--all) and serves the index and both platforms back', async () => {
    const multi = images.images.layouts.multi ?? ''
    await skopeo(['copy', '--all', '--dest-tls-verify=false', `oci:${multi}:1.0`, docker('registry.example.com/team/multi:1.0')])
    expect((await store.getRef('registry.example.com/team/multi:1.0'))?.manifestDigest).toBe(await topDigest(multi))
    const out = join(work, 'pulled-multi')
    await skopeo(['copy', '--all', '--src-tls-verify=false', docker('registry.example.com/team/multi:1.0'), `oci:${out}:1.0`])
    expect(await layoutBlobs(out)).toEqual(await layoutBlobs(multi))
  })

  it('files a push without a registry host under the default registry, converting to Docker v2s2 on the way', async () => {
    await skopeo(['copy', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${images.images.layouts.app3 ?? ''}:1.0`, docker('team/app3:2.0')])
    const ref = await store.getRef('localhost/team/app3:2.0')
    expect(ref).toBeDefined()
    const index = JSON.parse((await readFile(store.objectPath(indexObjectOf(await store.requireBundle(ref?.bundleId ?? ''))))).toString()) as { manifests: Array<{ mediaType: string, annotations: Record<string, string> }> }
    expect(index.manifests[0]).toMatchObject({
      mediaType: DOCKER_MANIFEST,
      annotations: { 'io.containerd.image.name': 'localhost/team/app3:2.0', 'org.opencontainers.image.ref.name': '2.0' },
    })
    const info = JSON.parse(await skopeo(['inspect', '--tls-verify=false', docker('team/app3:2.0')])) as Inspect
    expect(info.Digest).toBe(ref?.manifestDigest)
  })
})

function indexObjectOf (bundle: { manifest: { entries: Array<{ path: string, checksum: string }> } }): string {
  const entry = bundle.manifest.entries.find(e => e.path === './index.json')
  if (entry === undefined) throw new Error('the bundle has no index.json')
  return entry.checksum
}
