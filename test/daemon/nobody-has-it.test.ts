import { writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { pushTree } from '../../src/store/index.js'
import { generateSwarmKey } from '../../src/swarm/index.js'
import { registryOf, useStartedDaemons, type TestDaemon } from '../helpers/daemon-in-process.js'
import { until } from '../helpers/until.js'
import { DOCKER_REGISTRY_BIN } from '../upstream/docker-registry.js'
import { useProxiedRegistry } from '../upstream/front-proxy.js'
import { bundleDescriptionOf, unnamedImage } from './image-layout.js'

/**
 * Far past the test's timeout: a 404 that comes at all did not wait for the first-chunk timer, nor
 * for the bound on a registry request's search for a bundle's holder.
 */
const NO_TIMER = { firstChunkTimeoutMs: 30 * 60_000, manifestSearchTimeoutMs: 30 * 60_000 }
const ABSENT_BLOB = `sha256:${'ab'.repeat(32)}`
const ABSENT_MANIFEST = `sha256:${'cd'.repeat(32)}`
const MIB = 1024 * 1024

/**
 * Issue 8, as a new user meets it with the shipped configuration (a keyed fleet, an edge without
 * an upstream leaning on its gateway): containerd asks an edge for a tag or digest that no node
 * holds and none can fetch, because the gateway has no upstream or its registry answers 404.
 * The edge must answer 404 (containerd then tries the next host of its hosts.toml), logged at info
 * with the reason, and not after a timer: the edges' first-chunk wait is set past the test's
 * timeout, so only the fleet's answers can end each request.
 */
describe.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('a tag or digest nobody in the fleet has', () => {
  const daemons = useStartedDaemons('nobody-has-it')
  const bed = useProxiedRegistry(() => daemons.work)

  /** A gateway (with the registry as its upstream, or none) and an edge without one that trusts it, in a fleet closed with a swarm key. */
  async function fleet (name: string, upstream: string | undefined): Promise<{ gateway: TestDaemon, edge: TestDaemon }> {
    const swarmKeyFile = join(daemons.work, `${name}.key`)
    await writeFile(swarmKeyFile, generateSwarmKey())
    const gateway = await daemons.start(`gateway-${name}`, { upstream, gateway: true, swarmKeyFile })
    const edge = await daemons.start(`edge-${name}`, { swarmKeyFile, bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId] }, NO_TIMER)
    await until('the edge greeted the gateway', async () => edge.daemon.swarm.peers().some(p => p.neighbour) ? true : undefined)
    return { gateway, edge }
  }

  /** GETs each path of the edge's mirror: every one a 404 with the registry's error code. */
  async function asked (edge: TestDaemon, ns: string, paths: string[]): Promise<Array<{ status: number, code: string | undefined }>> {
    return await Promise.all(paths.map(async path => {
      const res = await fetch(`${registryOf(edge.daemon)}/v2/app/absent/${path}?ns=${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
      const body = await res.json() as { errors?: Array<{ code: string }> }
      return { status: res.status, code: body.errors?.[0]?.code }
    }))
  }

  const PATHS = ['manifests/1.0', `manifests/${ABSENT_MANIFEST}`, `blobs/${ABSENT_BLOB}`]
  const MISSES = [{ status: 404, code: 'MANIFEST_UNKNOWN' }, { status: 404, code: 'MANIFEST_UNKNOWN' }, { status: 404, code: 'BLOB_UNKNOWN' }]

  it('answers 404, logged at info with the reason, when the gateway\'s registry does not have it', async () => {
    const { edge } = await fleet('registry-404', bed.front.url)
    const since = bed.front.log.requests.length
    expect(await asked(edge, bed.front.host, PATHS)).toEqual(MISSES)
    // The gateway asked its registry for each, and the registry said 404.
    const upstream = bed.front.log.requests.slice(since).filter(r => r.path.startsWith('/v2/app/absent/'))
    for (const path of PATHS) expect(upstream.some(r => r.path.endsWith(path) && r.status === 404), path).toBe(true)
    expectLoggedMisses(edge)
  }, 120_000)

  it('answers 404, logged at info with the reason, when the gateway has no upstream', async () => {
    const { edge } = await fleet('no-upstream', undefined)
    expect(await asked(edge, 'registry.example.com', PATHS)).toEqual(MISSES)
    expectLoggedMisses(edge)
  }, 120_000)

  it('answers 404 at the swarm\'s word when the edge holds the image\'s description and no node holds or can fetch its bytes', async () => {
    const { edge } = await fleet('described', undefined)
    // The description of an image whose holder is gone: it indexes the digests, nobody has the bytes.
    const image = await unnamedImage(join(daemons.work, 'image-described'), 'registry.example.com/app/absent:1.0', 2 * MIB)
    await edge.daemon.store.addBundle(await bundleDescriptionOf(image.dir, join(daemons.work, 'store-described')))
    expect(await asked(edge, 'registry.example.com', [`manifests/${image.manifestDigest}`, `blobs/${image.layerDigest}`])).toEqual([MISSES[1], MISSES[2]])
    // Each 404 says at info that the fleet has no holder (the swarm's word, not a timer's).
    const info = edge.logs.filter(line => line.level === 'info')
    expect(info.find(line => line.msg === 'manifest not found: it could not be fetched from the fleet, and no later source has it')).toMatchObject({ digest: image.manifestDigest, reason: expect.stringContaining('the fleet has no holder of it') })
    expect(info.find(line => line.msg === 'blob not found: it could not be fetched from the fleet, and no later source has it')).toMatchObject({ digest: image.layerDigest, reason: expect.stringContaining('the fleet has no holder of it') })
  }, 120_000)

  it('answers a tag it heard of from its gateway\'s record 404, logged at info, when no holder is left', async () => {
    const { gateway, edge } = await fleet('record', undefined)
    const image = await unnamedImage(join(daemons.work, 'image-record'), 'registry.example.com/app/gone:1.0', 2 * MIB)
    const { bundleId } = await pushTree(gateway.daemon.store, image.dir)
    await gateway.daemon.swarm.publishRefs([{ ref: image.ref, bundleId, manifestDigest: image.manifestDigest }])
    await until('the gateway\'s record on the edge', async () => (await edge.daemon.store.getRef(image.ref))?.publisher === gateway.daemon.swarm.peerId ? true : undefined)
    // The only holder goes away; the edge still has the record, and none of the image.
    await gateway.daemon.stop()
    const res = await fetch(`${registryOf(edge.daemon)}/v2/app/gone/manifests/1.0?ns=registry.example.com`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(res.status).toBe(404)
    expect(edge.logs.find(line => line.level === 'info' && line.msg === 'manifest not found' && line.digest === image.manifestDigest)).toMatchObject({ reason: expect.any(String) })
  }, 120_000)

  function expectLoggedMisses (edge: TestDaemon): void {
    const info = edge.logs.filter(line => line.level === 'info')
    expect(info.find(line => line.msg === 'manifest not found' && line.reference === '1.0')).toMatchObject({ reason: expect.any(String) })
    expect(info.find(line => line.msg === 'manifest not found' && line.digest === ABSENT_MANIFEST)).toMatchObject({ reason: expect.any(String) })
    expect(info.find(line => line.msg === 'blob not found' && line.digest === ABSENT_BLOB)).toMatchObject({ reason: expect.any(String) })
    // What the fleet said, at info too: the peers asked and their answers.
    expect(info.some(line => line.msg === 'tag not found in the fleet' && Array.isArray(line.asked))).toBe(true)
  }
})
