import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, topDigest, type GeneratedImages } from '../../scripts/gen-images.js'
import { createContentSources, createLogger, ImageAssembler, PullThrough } from '../../src/daemon/index.js'
import { createHttpApi, type HttpApi } from '../../src/http/index.js'
import { openStore, type Store } from '../../src/store/index.js'
import { createUpstream, type Upstream } from '../../src/upstream/index.js'
import { waitFor } from '../helpers/daemon-process.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from './docker-registry.js'

const execFileAsync = promisify(execFile)

describe.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('a pulled-through tag that moves upstream', () => {
  let work: string
  let images: GeneratedImages
  let registry: RegistryProcess
  let store: Store
  let upstream: Upstream
  let api: HttpApi
  let assembler: ImageAssembler
  let base: string

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-tag-ttl-'))
    images = await generateImages(join(work, 'images'), { baseBytes: 1024 * 1024, seed: 41 })
    registry = await startDockerRegistry(join(work, 'registry'))
    store = await openStore({ dir: join(work, 'store'), fsync: false })
    upstream = createUpstream({ store }, { url: registry.url })
    // Re-resolve on every request: the test moves the tag and expects it followed at once.
    assembler = new ImageAssembler({ store })
    const pullThrough = new PullThrough({ store, upstream, assembler, tagRevalidateAfterMs: 0, tagRevalidateTimeoutMs: 1000 })
    const sources = createContentSources({ store, pullThrough, assembler, logger: createLogger('warn') })
    api = createHttpApi({ store, sources }, { defaultRegistry: upstream.namespace })
    base = `http://127.0.0.1:${(await api.listen('127.0.0.1', 0)).port}`
  })

  afterAll(async () => {
    await api?.close()
    await upstream?.close()
    await assembler?.close()
    await store?.close()
    await registry?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  async function tagAt (name: string): Promise<void> {
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts[name] ?? ''}:1.0`, `docker://${registry.host}/shoal/app:1.0`])
  }

  /** A client pulls the whole image through (blobs are fetched on demand; then it becomes a bundle with its ref). */
  async function pullAll (label: string): Promise<void> {
    await execFileAsync('skopeo', ['copy', '--src-tls-verify=false', `docker://${base.slice('http://'.length)}/shoal/app:1.0`, `dir:${join(work, `out-${label}`)}`])
  }

  async function resolve (): Promise<string | null> {
    const response = await fetch(`${base}/v2/shoal/app/manifests/1.0`, { method: 'HEAD' })
    expect(response.status).toBe(200)
    return response.headers.get('docker-content-digest')
  }

  it('follows the tag to its new image, and keeps serving the last one when the upstream is gone', async () => {
    const ref = `${registry.host}/shoal/app:1.0`
    await tagAt('app1')
    const first = await topDigest(images.layouts.app1 ?? '')
    expect(await resolve()).toBe(first)
    await pullAll('app1')
    await waitFor('the ref on app1', async () => (await store.getRef(ref))?.manifestDigest === first ? true : undefined, 20_000)

    await tagAt('app2')
    const second = await topDigest(images.layouts.app2 ?? '')
    expect(second).not.toBe(first)
    expect(await resolve()).toBe(second)
    await pullAll('app2')
    await waitFor('the ref moved to app2', async () => (await store.getRef(ref))?.manifestDigest === second ? true : undefined, 20_000)

    await registry.stop()
    const started = performance.now()
    expect(await resolve()).toBe(second)
    expect(performance.now() - started).toBeLessThan(3000)
  })
})
