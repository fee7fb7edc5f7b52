import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer, request as httpRequest, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { generateImages, topDigest, type GeneratedImages } from '../../scripts/gen-images.js'
import { registryOf, useStartedDaemons, type TestDaemon } from '../helpers/daemon-in-process.js'
import { shoalOk } from '../helpers/shoal-cli.js'
import { until } from '../helpers/until.js'
import { DOCKER_REGISTRY_BIN, startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json, */*'

/**
 * The audit of 2026-12-07 (issue 8, a new user's path): `:latest` retagged at the registry to a
 * new image. containerd pointed straight at the registry gets the new image at once; through an
 * edge without `--upstream` (as the README's edge line and the DaemonSet's edges run) that had
 * pulled the old one, the edge answered the old image for as long as it held it: it never asked
 * again, and no node re-resolved a tag every edge held. Real daemons (libp2p over TCP, LevelDB)
 * in this process, a real docker-registry as the gateway's upstream; the revalidation interval
 * is 0 so one request shows the rule, not a 60 s wait.
 */
describe.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('a tag moved at the registry, through an edge without --upstream', () => {
  const daemons = useStartedDaemons('moved-tag')
  let images: GeneratedImages
  let registry: RegistryProcess

  beforeAll(async () => {
    images = await generateImages(join(daemons.work, 'images'), { baseBytes: MIB, seed: 57 })
    registry = await startDockerRegistry(join(daemons.work, 'registry'))
    await shoalOk(undefined, ['keygen', 'swarm', join(daemons.work, 'swarm.key')])
    return async () => { await registry?.stop() }
  }, 120_000)

  async function tagLatest (app: string, repo = 'shoal/app', at = registry.host): Promise<string> {
    const layout = images.layouts[app] ?? ''
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:1.0`, `docker://${at}/${repo}:latest`], { timeout: 60_000 })
    return await topDigest(layout)
  }

  /** containerd's tag request (HEAD with ?ns=), asked until the node answers 200. */
  async function resolve (edge: TestDaemon, repo = 'shoal/app', ns = registry.host): Promise<string> {
    return await until('the node to resolve the tag', async () => {
      const res = await fetch(`${registryOf(edge.daemon)}/v2/${repo}/manifests/latest?ns=${ns}`, { method: 'HEAD', headers: { accept: ACCEPT } })
      return res.status === 200 ? res.headers.get('docker-content-digest') ?? '' : undefined
    })
  }

  /** The rest of containerd's pull: the manifest by digest, then its config and layers, each checked. */
  async function pullImage (edge: TestDaemon, digest: string): Promise<void> {
    const base = `${registryOf(edge.daemon)}/v2/shoal/app`
    const ns = `?ns=${registry.host}`
    const manifest = await fetch(`${base}/manifests/${digest}${ns}`, { headers: { accept: ACCEPT } })
    expect(manifest.status).toBe(200)
    const document = JSON.parse(await manifest.text()) as { config: { digest: string }, layers: Array<{ digest: string }> }
    for (const blob of [document.config, ...document.layers]) {
      const res = await fetch(`${base}/blobs/${blob.digest}${ns}`)
      expect(res.status, blob.digest).toBe(200)
      expect(`sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}`).toBe(blob.digest)
    }
  }

  it('follows the new image at the next pull, through the gateway, and the gateway\'s signed ref moves for the fleet', async () => {
    const ref = `${registry.host}/shoal/app:latest`
    const swarmKeyFile = join(daemons.work, 'swarm.key')
    const first = await tagLatest('app1')
    const gateway = await daemons.start('gateway', { gateway: true, upstream: registry.url, swarmKeyFile }, { tagRevalidateAfterMs: 0 })
    const edge = await daemons.start('edge', { bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId], swarmKeyFile }, { tagRevalidateAfterMs: 0 })

    expect(await resolve(edge)).toBe(first)
    await pullImage(edge, first)
    // The gateway made the image a bundle and signed its ref; the edge took the record.
    await until('the edge to hold the gateway\'s record of the tag', async () => {
      const held = await edge.daemon.store.getRef(ref)
      return held?.manifestDigest === first && held.publisher === gateway.daemon.swarm.peerId ? true : undefined
    }, 30_000)

    const second = await tagLatest('app2')
    expect(second).not.toBe(first)
    // Before: the old image, at every pull, for as long as the edge held it.
    expect(await resolve(edge)).toBe(second)
    await pullImage(edge, second)
    await until('the gateway\'s ref and the edge\'s record to name the new image', async () => {
      const [atGateway, atEdge] = await Promise.all([gateway.daemon.store.getRef(ref), edge.daemon.store.getRef(ref)])
      return atGateway?.manifestDigest === second && atEdge?.manifestDigest === second && atEdge.publisher === gateway.daemon.swarm.peerId ? true : undefined
    }, 30_000)
    expect(edge.logs.some(line => line.msg === 'a held tag names another image in the fleet now: following it')).toBe(true)

    // The gateway gone: the edge still answers the tag it holds (its check with the fleet finds no one).
    await gateway.daemon.stop()
    expect(await resolve(edge)).toBe(second)
  }, 180_000)

  it('every edge that asks within the gateway\'s interval is given the tag\'s new image, not only the first', async () => {
    const ref = `${registry.host}/shoal/pushed:latest`
    const swarmKeyFile = join(daemons.work, 'swarm.key')
    // The gateway resolves the tag at most once in 10 min: only its first answer after the move re-resolves it.
    const gateway = await daemons.start('gateway-pushed', { gateway: true, upstream: registry.url, swarmKeyFile, allowPush: true }, { tagRevalidateAfterMs: 10 * 60_000 })
    const edgeInit = { bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId], swarmKeyFile }
    const edges = [await daemons.start('edge-pushed-1', edgeInit, { tagRevalidateAfterMs: 0 }), await daemons.start('edge-pushed-2', edgeInit, { tagRevalidateAfterMs: 0 })]
    // The gateway's ref, pushed to it under the upstream's name, names app1; the registry's tag names app2.
    const pushed = await tagLatest('app1', 'shoal/pushed', registryOf(gateway.daemon).slice('http://'.length))
    const upstream = await tagLatest('app2', 'shoal/pushed')
    for (const edge of edges) {
      await until('the edge to hold the gateway\'s record of the tag', async () => (await edge.daemon.store.getRef(ref))?.manifestDigest === pushed ? true : undefined, 30_000)
    }
    // The first edge's check makes the gateway re-resolve the tag: the registry's image. Only the
    // manifest is asked for, so the gateway's ref still names app1 when the second edge asks.
    expect(await resolve(edges[0] as TestDaemon, 'shoal/pushed')).toBe(upstream)
    expect((await gateway.daemon.store.getRef(ref))?.manifestDigest).toBe(pushed)
    // Before: the gateway answered the ref it held within its interval, and this edge stayed on app1.
    expect(await resolve(edges[1] as TestDaemon, 'shoal/pushed')).toBe(upstream)
  }, 180_000)

  it('takes a record heard within the interval as checked: a cold edge asks nothing more before its first manifest', async () => {
    const ref = `${registry.host}/shoal/fresh:latest`
    const swarmKeyFile = join(daemons.work, 'swarm.key')
    const gateway = await daemons.start('gateway-fresh', { gateway: true, upstream: registry.url, swarmKeyFile, allowPush: true })
    const edge = await daemons.start('edge-fresh', { bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId], swarmKeyFile }, { tagRevalidateAfterMs: 10 * 60_000 })
    // The gateway's ref names app1; the registry's tag app2, which a check would bring.
    const pushed = await tagLatest('app1', 'shoal/fresh', registryOf(gateway.daemon).slice('http://'.length))
    await tagLatest('app2', 'shoal/fresh')
    await until('the edge to hold the gateway\'s record of the tag', async () => (await edge.daemon.store.getRef(ref))?.manifestDigest === pushed ? true : undefined, 30_000)
    expect(await resolve(edge, 'shoal/fresh')).toBe(pushed)
    expect(gateway.logs.filter(line => line.msg === 'resolved a tag for the fleet')).toEqual([])
  }, 180_000)

  it('an edge that followed a move keeps the new image when its next checks find no one', async () => {
    const ref = `${registry.host}/shoal/kept:latest`
    const swarmKeyFile = join(daemons.work, 'swarm.key')
    const gateway = await daemons.start('gateway-kept', { gateway: true, upstream: registry.url, swarmKeyFile, allowPush: true }, { tagRevalidateAfterMs: 0 })
    const edge = await daemons.start('edge-kept', { bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId], swarmKeyFile }, { tagRevalidateAfterMs: 0 })
    // The gateway's record names app1 (pushed to it), which the edge answers with its manifest stored.
    const pushed = await tagLatest('app1', 'shoal/kept', registryOf(gateway.daemon).slice('http://'.length))
    await until('the edge to hold the gateway\'s record of the tag', async () => (await edge.daemon.store.getRef(ref))?.manifestDigest === pushed ? true : undefined, 30_000)
    expect(await resolve(edge, 'shoal/kept')).toBe(pushed)
    await until('the edge to store the record\'s manifest', async () => await edge.daemon.store.objectBySha256(pushed.slice('sha256:'.length)))
    // The registry's tag names app2: the edge follows the move; only its manifest is fetched, so both records still name app1.
    const upstream = await tagLatest('app2', 'shoal/kept')
    expect(await resolve(edge, 'shoal/kept')).toBe(upstream)
    expect((await edge.daemon.store.getRef(ref))?.manifestDigest).toBe(pushed)
    // A guard: the move is kept until the fleet names another image; the tag moved back is followed back, then forth.
    expect(await tagLatest('app1', 'shoal/kept')).toBe(pushed)
    expect(await resolve(edge, 'shoal/kept')).toBe(pushed)
    await tagLatest('app2', 'shoal/kept')
    expect(await resolve(edge, 'shoal/kept')).toBe(upstream)

    // The gateway gone: every request here checks with the fleet and gets no answer. Before, the
    // check dropped the move it had followed and the edge answered the old record's app1 again.
    await gateway.daemon.stop()
    expect(await resolve(edge, 'shoal/kept')).toBe(upstream)
    expect(await resolve(edge, 'shoal/kept')).toBe(upstream)
  }, 180_000)

  it('an edge that followed a move keeps the new image while its next check waits on the fleet', async () => {
    // The gateway's upstream: the registry behind a proxy that, once told, leaves manifest requests unanswered.
    const parked: ServerResponse[] = []
    let holding = false
    const proxy = createServer((req, res) => {
      if (holding && req.url?.includes('/manifests/') === true) {
        parked.push(res)
        proxy.emit('parked')
        return
      }
      const upstream = httpRequest(new URL(req.url ?? '/', registry.url), { method: req.method, headers: { ...req.headers, host: registry.host } }, answer => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      upstream.on('error', () => { res.destroy() })
      req.pipe(upstream)
    })
    proxy.listen(0, '127.0.0.1')
    await once(proxy, 'listening')
    const ns = `127.0.0.1:${(proxy.address() as AddressInfo).port}`
    try {
      const ref = `${ns}/shoal/waited:latest`
      const swarmKeyFile = join(daemons.work, 'swarm.key')
      const interval = 4_000
      const gateway = await daemons.start('gateway-waited', { gateway: true, upstream: `http://${ns}`, swarmKeyFile, allowPush: true }, { tagRevalidateAfterMs: 0 })
      const edge = await daemons.start('edge-waited', { bootstrap: [gateway.daemon.swarm.addresses()[0] ?? ''], trust: [gateway.daemon.swarm.peerId], swarmKeyFile }, { tagRevalidateAfterMs: interval })
      const pushed = await tagLatest('app1', 'shoal/waited', registryOf(gateway.daemon).slice('http://'.length))
      await until('the edge to hold the gateway\'s record of the tag', async () => (await edge.daemon.store.getRef(ref))?.manifestDigest === pushed ? true : undefined, 30_000)
      const upstream = await tagLatest('app2', 'shoal/waited')
      // The edge's interval since the record lapses (a clock rule, the one under test), then it follows the move.
      await until('the edge\'s interval to lapse', async () => await resolve(edge, 'shoal/waited', ns) === upstream ? true : undefined)
      const followedAt = Date.now()
      await until('the edge\'s interval since the move to lapse', async () => Date.now() - followedAt > interval ? true : undefined)

      // The next request's check waits on the gateway, which waits on its upstream.
      holding = true
      const checking = resolve(edge, 'shoal/waited', ns)
      await once(proxy, 'parked')
      // Before: the check had dropped the move, and a request meanwhile got the old record's app1.
      expect(await resolve(edge, 'shoal/waited', ns)).toBe(upstream)
      expect(parked).toHaveLength(1) // answered within the interval, without a check of its own
      expect(await checking).toBe(upstream)
    } finally {
      holding = false
      for (const res of parked) res.destroy()
      proxy.closeAllConnections()
      await new Promise<void>(resolve => { proxy.close(() => { resolve() }) })
    }
  }, 180_000)

  it('a gateway whose upstream re-resolution fails answers what the tag last gave, not its older ref', async () => {
    const own = await startDockerRegistry(join(daemons.work, 'registry-failing'))
    try {
      const ref = `${own.host}/shoal/failing:latest`
      // Every request re-resolves the tag at the upstream.
      const gateway = await daemons.start('gateway-failing', { gateway: true, upstream: own.url, allowPush: true }, { tagRevalidateAfterMs: 0 })
      const pushed = await tagLatest('app1', 'shoal/failing', registryOf(gateway.daemon).slice('http://'.length))
      const upstream = await tagLatest('app2', 'shoal/failing', own.host)
      await until('the gateway to hold the pushed ref', async () => (await gateway.daemon.store.getRef(ref))?.manifestDigest === pushed ? true : undefined, 30_000)
      // Re-resolved at the upstream: app2, whose manifest only is fetched (the ref stays app1).
      expect(await resolve(gateway, 'shoal/failing', own.host)).toBe(upstream)
      expect((await gateway.daemon.store.getRef(ref))?.manifestDigest).toBe(pushed)

      // The upstream gone. Before, the request whose re-resolution failed got the ref's app1.
      await own.stop()
      expect(await resolve(gateway, 'shoal/failing', own.host)).toBe(upstream)
      expect(gateway.logs.some(line => typeof line.msg === 'string' && line.msg.startsWith('could not re-resolve a tag at the upstream'))).toBe(true)
    } finally {
      await own.stop()
    }
  }, 180_000)
})
