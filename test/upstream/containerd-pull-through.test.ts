import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, topDigest, type GeneratedImages } from '../../scripts/gen-images.js'
import { Containerd, containerdUnavailable } from '../helpers/containerd.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from './docker-registry.js'
import { startFrontProxy, type FrontProxy } from './front-proxy.js'

const execFileAsync = promisify(execFile)
const canRun = containerdUnavailable() === undefined && existsSync(DOCKER_REGISTRY_BIN)

describe.skipIf(!canRun)('containerd pulling through shoal as its hosts.toml mirror', () => {
  let work: string
  let images: GeneratedImages
  let registry: RegistryProcess
  let front: FrontProxy
  let daemon: DaemonProcess
  let containerd: Containerd

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-ctd-upstream-'))
    images = await generateImages(join(work, 'images'), { baseBytes: 4 * 1024 * 1024, seed: 31 })
    registry = await startDockerRegistry(join(work, 'registry'))
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app1 ?? ''}:1.0`, `docker://${registry.host}/shoal/app1:1.0`])
    // Both containerd's fallback and shoal's upstream go through this proxy, which tells them apart by User-Agent.
    front = await startFrontProxy({ target: registry.url })
    daemon = await startDaemonProcess(join(work, 'daemon'), ['--no-mdns', '--upstream', front.url])
    containerd = new Containerd(join(work, 'containerd'))
    await containerd.start()
  })

  afterAll(async () => {
    await containerd?.destroy()
    await daemon?.kill()
    await front?.close()
    await registry?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('resolves with ?ns= through shoal, which alone fetches from the upstream, once per blob', async () => {
    await containerd.hosts(front.host, front.url, [`http://${daemon.registry}`])
    const ref = `${front.host}/shoal/app1:1.0`
    const pulled = await containerd.pull(ref)
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(await containerd.ctrOk(['images', 'ls'])).toContain(await topDigest(images.layouts.app1 ?? ''))

    // containerd never had to fall back: every upstream request came from shoal (node's fetch).
    const byClient = new Set(front.log.requests.map(r => r.userAgent?.split('/')[0]))
    expect([...byClient]).toEqual(['node'])
    const blobGets = front.log.requests.filter(r => r.method === 'GET' && r.path.includes('/blobs/')).map(r => r.path)
    expect(blobGets).toContain(`/v2/shoal/app1/blobs/${images.baseLayer.digest}`)
    expect(new Set(blobGets).size).toBe(blobGets.length)
    await waitFor('the pulled-through bundle', async () => (await daemon.status()).bundles.find(b => b.complete), 30_000)
    expect((await daemon.status()).bundles.flatMap(b => b.refs)).toEqual([ref])
  })
})
