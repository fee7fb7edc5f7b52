import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { createContentSources, createLogger, ImageAssembler, PullThrough } from '../../src/daemon/index.js'
import { openStore, type Store } from '../../src/store/index.js'
import type { FleetBlobQuery, FleetQuery } from '../../src/swarm/index.js'
import { createUpstream, type Upstream } from '../../src/upstream/index.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'
import { startFrontProxy, type FrontProxy } from '../upstream/front-proxy.js'

const execFileAsync = promisify(execFile)

/**
 * "Nothing acts for a stranger": a peer's fleet question may make a node fetch from its
 * upstream only when the fleet is closed with a swarm key (the daemon passes
 * `pullThroughForPeers` from --swarm-key). In an open fleet anyone who reaches the libp2p
 * port could otherwise make the gateway pull images its operator never asked for.
 */
describe.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('pull-through asked by a peer', () => {
  let work: string
  let registry: RegistryProcess
  let front: FrontProxy
  const opened: Array<{ store: Store, upstream: Upstream, assembler: ImageAssembler }> = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-peer-pull-through-'))
    const images = await generateImages(join(work, 'images'), { baseBytes: 1024 * 1024, seed: 43 })
    registry = await startDockerRegistry(join(work, 'registry'))
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app1 ?? ''}:1.0`, `docker://${registry.host}/shoal/app:1.0`])
    front = await startFrontProxy({ target: registry.url })
  })

  afterAll(async () => {
    for (const { store, upstream, assembler } of opened) {
      await upstream.close()
      await assembler.close()
      await store.close()
    }
    await front?.close()
    await registry?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  type Sources = ReturnType<typeof createContentSources>
  async function responder (name: string, pullThroughForPeers: boolean): Promise<{ respond: Sources['respond'], respondBlob: Sources['respondBlob'], query: FleetQuery, blobQuery: FleetBlobQuery }> {
    const store = await openStore({ dir: join(work, name), fsync: false })
    const upstream = createUpstream({ store }, { url: front.url })
    const assembler = new ImageAssembler({ store })
    opened.push({ store, upstream, assembler })
    const pullThrough = new PullThrough({ store, upstream, assembler })
    const { respond, respondBlob } = createContentSources({ store, pullThrough, pullThroughForPeers, assembler, logger: createLogger('warn') })
    return {
      respond,
      respondBlob,
      query: { kind: 'resolve-tag', registry: upstream.namespace, repository: 'shoal/app', reference: '1.0', pullThrough: true },
      // A blob neither store nor upstream has: only whether the upstream is asked matters.
      blobQuery: { registry: upstream.namespace, repository: 'shoal/app', digest: `sha256:${'0'.repeat(64)}` },
    }
  }

  it('in an open fleet, answers from its store only and never contacts the upstream', async () => {
    const { respond, query } = await responder('open', false)
    const before = front.log.requests.length
    const answer = await respond(query, '12D3KooWStranger', AbortSignal.timeout(10_000))
    // The asker is told why (it had said "no upstream" of a node that has one).
    expect(answer).toMatchObject({ status: 'not-found', reason: expect.stringContaining('pulls through for peers only in a fleet closed with a swarm key') })
    expect(front.log.requests.length).toBe(before)
  })

  it('in an open fleet, streams a peer no blob from the upstream (and never contacts it)', async () => {
    const { respondBlob, blobQuery } = await responder('open-blob', false)
    const before = front.log.requests.length
    const answer = await respondBlob(blobQuery, '12D3KooWStranger', AbortSignal.timeout(10_000))
    expect(answer).toMatchObject({ status: 'not-found', reason: expect.stringContaining('pulls through for peers only in a fleet closed with a swarm key') })
    expect(front.log.requests.length).toBe(before)
  })

  it('in a fleet closed with a swarm key, asks the upstream for a peer\'s blob', async () => {
    const { respondBlob, blobQuery } = await responder('keyed-blob', true)
    const before = front.log.requests.length
    const answer = await respondBlob(blobQuery, '12D3KooWFleetEdge', AbortSignal.timeout(30_000))
    expect(answer.status).toBe('not-found')
    expect(front.log.requests.slice(before).some(r => r.path.endsWith(`/blobs/${blobQuery.digest}`))).toBe(true)
  })

  it('in a fleet closed with a swarm key, pulls through for the peer', async () => {
    const { respond, query } = await responder('keyed', true)
    const before = front.log.requests.length
    const answer = await respond(query, '12D3KooWFleetEdge', AbortSignal.timeout(30_000))
    expect(answer.status).toBe('resolved')
    expect(front.log.requests.slice(before).some(r => r.path.endsWith('/manifests/1.0'))).toBe(true)
  })
})
