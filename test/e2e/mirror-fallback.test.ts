import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { generateSwarmKey } from '../../src/swarm/index.js'
import { Containerd, containerdUnavailable } from '../helpers/containerd.js'
import { registryOf, useStartedDaemons } from '../helpers/daemon-in-process.js'
import { until } from '../helpers/until.js'
import { DOCKER_REGISTRY_BIN } from '../upstream/docker-registry.js'
import { useProxiedRegistry } from '../upstream/front-proxy.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const unavailable = containerdUnavailable() ?? (existsSync('/usr/bin/skopeo') ? undefined : 'skopeo is not installed') ??
  (existsSync(DOCKER_REGISTRY_BIN) ? undefined : 'docker-registry is not installed')

/**
 * Issue 8, as a new user meets it: the shipped configuration (a keyed fleet, a gateway and an
 * edge without an upstream), and a containerd whose hosts.toml names the edge as its mirror and
 * the registry as its `server`, asked for an image that only the registry has. No node holds it
 * or can fetch it, so every request containerd sends the edge must be a quick 404 (logged at info
 * with the reason), and containerd's fallback to the registry must then fetch the image whole.
 */
describe.skipIf(unavailable !== undefined)(`containerd falls back from an edge that has nothing${unavailable !== undefined ? ` (skipped: ${unavailable})` : ''}`, () => {
  const daemons = useStartedDaemons('mirror-fallback')
  const bed = useProxiedRegistry(() => daemons.work)
  let containerd: Containerd | undefined

  afterAll(async () => {
    await containerd?.destroy()
  })

  it('answers each of containerd\'s requests 404, and containerd pulls the image from its fallback server', async () => {
    const images = await generateImages(join(daemons.work, 'images'), { baseBytes: 2 * MIB, seed: 88 })
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app1 ?? ''}:1.0`, `docker://${bed.registry.host}/only/registry:1.0`], { timeout: 60_000 })
    const swarmKeyFile = join(daemons.work, 'swarm.key')
    await writeFile(swarmKeyFile, generateSwarmKey())
    const gateway = await daemons.start('gateway', { gateway: true, swarmKeyFile })
    const edge = await daemons.start('edge', { swarmKeyFile, bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId] })
    await until('the edge greeted the gateway', async () => edge.daemon.swarm.peers().some(p => p.neighbour) ? true : undefined)
    containerd = new Containerd(join(daemons.work, 'containerd'))
    await containerd.start()
    await containerd.hosts(bed.front.host, bed.front.url, [registryOf(edge.daemon)])
    const ref = `${bed.front.host}/only/registry:1.0`

    const pulled = await containerd.pull(ref)
    expect(pulled.code, pulled.stderr).toBe(0)
    const check = await containerd.ctrOk(['images', 'check'])
    expect(check.split('\n').find(l => l.startsWith(`${ref} `)), check).toMatch(/\bcomplete \((\d+)\/\1\)/)

    // The registry served containerd the manifest and every blob (no node has an upstream) ...
    const served = bed.front.log.requests.filter(r => r.method === 'GET' && r.status === 200 && r.path.startsWith('/v2/only/registry/'))
    expect(served.some(r => r.path.includes('/manifests/'))).toBe(true)
    expect(served.filter(r => r.path.includes('/blobs/')).length).toBeGreaterThanOrEqual(2)
    // ... after the edge said 404 for each at info, with the fleet's reason.
    const info = edge.logs.filter(line => line.level === 'info')
    expect(info.find(line => line.msg === 'tag not found in the fleet')).toMatchObject({ ref, asked: expect.any(Array) })
    expect(info.find(line => line.msg === 'manifest not found' && line.reference === '1.0')).toMatchObject({ reason: expect.any(String) })
    const blobMisses = info.filter(line => line.msg === 'blob not found').map(line => line.digest)
    for (const blob of served.filter(r => r.path.includes('/blobs/'))) expect(blobMisses, blob.path).toContain(blob.path.slice(blob.path.lastIndexOf('/') + 1))
  }, 180_000)
})
