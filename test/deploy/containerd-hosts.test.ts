import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages, type GeneratedImages } from '../../scripts/gen-images.js'
import { Containerd, containerdUnavailable } from '../helpers/containerd.js'
import { startDaemonProcess, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry } from '../upstream/docker-registry.js'
import { DEPLOY } from './deploy-files.js'

const execFileAsync = promisify(execFile)

const MIB = 1024 * 1024
const SHIPPED_MIRROR = '127.0.0.1:5050'

describe.skipIf(containerdUnavailable() !== undefined)('deploy/containerd hosts.toml with the real containerd (1.6 here)', () => {
  let work: string
  let daemon: DaemonProcess
  let containerd: Containerd
  let images: GeneratedImages

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-hosts-'))
    images = await generateImages(join(work, 'images'), { baseBytes: 2 * MIB, seed: 61 })
    daemon = await startDaemonProcess(join(work, 'node'), ['--no-mdns', '--gateway'])
    // app1's layout names registry.example.com/shoal/app1:1.0; app2 goes in as a Docker Hub name.
    await shoalOk(undefined, ['--api', daemon.api, 'push', images.layouts.app1 ?? ''])
    await shoalOk(undefined, ['--api', daemon.api, 'push', images.layouts.app2 ?? '', '--ref', 'docker.io/library/shoal-hosts-test:1.0'])
    containerd = new Containerd(join(work, 'containerd'))
    await containerd.start()
    // The shipped files as they are, but for the mirror's port (this daemon's, not 5050).
    for (const registry of ['_default', 'docker.io']) {
      const text = await readFile(join(DEPLOY, 'containerd', 'certs.d', registry, 'hosts.toml'), 'utf8')
      expect(text).toContain(SHIPPED_MIRROR)
      await mkdir(join(containerd.hostsDir, registry), { recursive: true })
      await writeFile(join(containerd.hostsDir, registry, 'hosts.toml'), text.replaceAll(SHIPPED_MIRROR, daemon.registry))
    }
  })

  afterAll(async () => {
    await containerd?.destroy()
    await daemon?.stop()
    await rm(work, { recursive: true, force: true })
  })

  it('docker.io/hosts.toml: a Docker Hub image comes from the mirror (Docker Hub is never reached here)', async () => {
    const pulled = await containerd.pull('docker.io/library/shoal-hosts-test:1.0')
    expect(pulled.code, pulled.stderr).toBe(0)
    expect(await containerd.ctrOk(['images', 'ls', '-q'])).toContain('docker.io/library/shoal-hosts-test:1.0')
  })

  it('_default/hosts.toml: an image of any other registry comes from the mirror too', async () => {
    const pulled = await containerd.pull('registry.example.com/shoal/app1:1.0')
    expect(pulled.code, pulled.stderr).toBe(0)
  })

  it.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('docker.io/hosts.toml with shoal down (stopped, restarting): containerd pulls from the file\'s server instead', async () => {
    const registry = await startDockerRegistry(join(work, 'registry'))
    try {
      await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app2 ?? ''}:1.0`, `docker://${registry.host}/shoal/app2:1.0`], { timeout: 60_000 })
      // A daemon that stopped: its port refuses connections, as 5050 does while shoal restarts.
      const down = await startDaemonProcess(join(work, 'down'), ['--no-mdns'])
      await down.stop()
      const text = await readFile(join(DEPLOY, 'containerd', 'certs.d', 'docker.io', 'hosts.toml'), 'utf8')
      await mkdir(join(containerd.hostsDir, registry.host), { recursive: true })
      await writeFile(join(containerd.hostsDir, registry.host, 'hosts.toml'), text.replaceAll(SHIPPED_MIRROR, down.registry).replace('server = "https://registry-1.docker.io"', `server = "${registry.url}"`))
      const pulled = await containerd.pull(`${registry.host}/shoal/app2:1.0`)
      expect(pulled.code, pulled.stderr).toBe(0)
    } finally {
      await registry.stop()
    }
  })
})
