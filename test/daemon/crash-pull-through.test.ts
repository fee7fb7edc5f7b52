import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { request as httpGet, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateImages } from '../../scripts/gen-images.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../helpers/daemon-process.js'
import { shoal, shoalOk } from '../helpers/shoal-cli.js'
import { DOCKER_REGISTRY_BIN, freePort, startDockerRegistry, type RegistryProcess } from '../upstream/docker-registry.js'
import { startGatedProxy, type GatedProxy } from '../upstream/gated-proxy.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024

interface Manifest { config: { digest: string }, layers: Array<{ digest: string, size: number }> }

/**
 * kill -9 of the daemon (a real child process, as the CLI starts it) while containerd's GET of
 * a layer streams through it, from its upstream or from the fleet's gateway; then restarted on
 * the same data dir.
 */
describe.skipIf(!existsSync(DOCKER_REGISTRY_BIN))('kill -9 in the middle of a pull-through', () => {
  let work: string
  let registry: RegistryProcess
  let front: GatedProxy
  const daemons: DaemonProcess[] = []

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'shoal-crash-pull-through-'))
    const images = await generateImages(join(work, 'images'), { baseBytes: 24 * MIB, seed: 63 })
    registry = await startDockerRegistry(join(work, 'registry'))
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app1 ?? ''}:1.0`, `docker://${registry.host}/shoal/app1:1.0`], { timeout: 60_000 })
    front = await startGatedProxy(registry.url)
    await shoalOk(undefined, ['keygen', 'swarm', join(work, 'swarm.key')])
  }, 120_000)

  afterAll(async () => {
    await Promise.all(daemons.map(async d => { await d.kill() }))
    await front?.close()
    await registry?.stop()
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  async function start (name: string, args: string[]): Promise<DaemonProcess> {
    const daemon = await startDaemonProcess(join(work, name), ['--no-mdns', '--swarm-key', join(work, 'swarm.key'), '--api', join(work, `${name}.sock`), ...args])
    daemons.push(daemon)
    return daemon
  }

  /** The upstream's GETs of a blob since request number `since`. */
  function upstreamBlobGets (digest: string, since: number): number {
    return front.requests.slice(since).filter(r => r.method === 'GET' && r.path.endsWith(`/blobs/${digest}`)).length
  }

  async function largestLayer (node: DaemonProcess, ns: string): Promise<{ digest: string, size: number }> {
    const res = await fetch(`http://${node.registry}/v2/shoal/app1/manifests/1.0${ns}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
    expect(res.status).toBe(200)
    const layer = [...(await res.json() as Manifest).layers].sort((a, b) => b.size - a.size)[0]
    if (layer === undefined) throw new Error('no layer')
    return layer
  }

  /**
   * The upstream holds the layer's body at 8 MiB until `release`: a kill after 4 MiB reached the
   * client lands while the blob is still being fetched, however fast the machine.
   */
  function holdAt8MiB (digest: string): () => void {
    front.gate(digest, { afterBytes: 8 * MIB, action: 'hold' })
    return () => { front.release(digest) }
  }

  /**
   * GETs the blob and kills `victim` with SIGKILL once `bytes` of it arrived; resolves when the
   * response is over, with what came and whether that was all of it.
   */
  async function killMidBody (url: string, bytes: number, size: number, victim: DaemonProcess): Promise<{ received: number, complete: boolean }> {
    return await new Promise((resolve, reject) => {
      let received = 0
      let killed = false
      const request = httpGet(url, (res: IncomingMessage) => {
        if (res.statusCode !== 200) { reject(new Error(`status ${res.statusCode}`)); return }
        res.on('data', (piece: Buffer) => {
          received += piece.byteLength
          if (received >= bytes && !killed) {
            killed = true
            void victim.kill()
          }
        })
        res.on('error', () => {})
        res.on('close', () => { resolve({ received, complete: res.complete && received === size }) })
      })
      request.on('error', reject)
      request.end()
    })
  }

  async function sha256Get (url: string): Promise<{ status: number, digest: string }> {
    const res = await fetch(url)
    return { status: res.status, digest: `sha256:${createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')}` }
  }

  async function verifyClean (node: DaemonProcess): Promise<void> {
    const result = await shoal(undefined, ['--api', node.api, '--json', 'verify'])
    expect((JSON.parse(result.stdout) as { bad: unknown[] }).bad).toEqual([])
  }

  it('from its own upstream: after the restart the store verifies and the same GET is served whole', async () => {
    const before = front.requests.length
    const args = ['--upstream', front.url]
    let edge = await start('alone', args)
    const layer = await largestLayer(edge, '')
    const url = (node: DaemonProcess): string => `http://${node.registry}/v2/shoal/app1/blobs/${layer.digest}`
    const release = holdAt8MiB(layer.digest)
    const got = await killMidBody(url(edge), 4 * MIB, layer.size, edge)
    release()
    expect(got.complete).toBe(false)
    // The kill left the half-fetched blob's staging file; the restart drops it, keeping nothing of it.
    expect((await readdir(join(work, 'alone', 'tmp'))).filter(f => f.startsWith('upstream-'))).toHaveLength(1)
    edge = await start('alone', args)
    expect(await readdir(join(work, 'alone', 'tmp'))).toEqual([])
    await verifyClean(edge)
    expect(await sha256Get(url(edge))).toEqual({ status: 200, digest: layer.digest })
    await verifyClean(edge)
    // The killed fetch and one more: nothing of the first was kept half-way to be trusted.
    expect(upstreamBlobGets(layer.digest, before)).toBe(2)
  })

  it('from the fleet\'s gateway: the edge restarted gets the layer from the gateway, which fetched it from the upstream once', async () => {
    const before = front.requests.length
    const gateway = await start('gateway', ['--gateway', '--upstream', front.url])
    const edgeArgs = ['--bootstrap', gateway.address, '--trust', gateway.peerId]
    let edge = await start('edge', edgeArgs)
    await waitFor('the edge connected', async () => (await edge.status()).peers.find(p => p.id === gateway.peerId), 90_000)
    const ns = `?ns=${encodeURIComponent(front.host)}`
    const layer = await largestLayer(edge, ns)
    const url = (node: DaemonProcess): string => `http://${node.registry}/v2/shoal/app1/blobs/${layer.digest}${ns}`
    const release = holdAt8MiB(layer.digest)
    expect((await killMidBody(url(edge), 4 * MIB, layer.size, edge)).complete).toBe(false)
    release()
    edge = await start('edge', edgeArgs)
    await waitFor('the edge connected again', async () => (await edge.status()).peers.find(p => p.id === gateway.peerId), 90_000)
    await verifyClean(edge)
    expect(await sha256Get(url(edge))).toEqual({ status: 200, digest: layer.digest })
    await verifyClean(edge)
    await verifyClean(gateway)
    expect(upstreamBlobGets(layer.digest, before)).toBe(1)
  })

  it('of the gateway while it streams to an edge: the edge\'s client is cut, and once the gateway is back the edge gets the layer', async () => {
    const before = front.requests.length
    // A fixed port, as deployed, so the edge finds the gateway again at its bootstrap address.
    const port = await freePort()
    const gatewayArgs = ['--gateway', '--upstream', front.url, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--lane-port', 'off']
    let gateway = await start('gateway2', gatewayArgs)
    const edgeArgs = ['--bootstrap', `/ip4/127.0.0.1/tcp/${port}/p2p/${gateway.peerId}`, '--trust', gateway.peerId]
    const edge = await start('edge2', edgeArgs)
    await waitFor('the edge connected', async () => (await edge.status()).peers.find(p => p.id === gateway.peerId), 90_000)
    const ns = `?ns=${encodeURIComponent(front.host)}`
    const layer = await largestLayer(edge, ns)
    const url = `http://${edge.registry}/v2/shoal/app1/blobs/${layer.digest}${ns}`
    const release = holdAt8MiB(layer.digest)
    // The cut reaches the edge's client: its body ends short (the gateway's stream broke).
    const cut = await killMidBody(url, 4 * MIB, layer.size, gateway)
    release()
    expect(cut.complete).toBe(false)
    await verifyClean(edge)
    // The gateway back on its data dir, its identity and port: the edge dials its bootstrap again.
    gateway = await start('gateway2', gatewayArgs)
    await waitFor('the edge connected to the restarted gateway', async () => (await edge.status()).peers.find(p => p.id === gateway.peerId), 90_000)
    await verifyClean(gateway)
    expect(await sha256Get(url)).toEqual({ status: 200, digest: layer.digest })
    await verifyClean(edge)
    expect(upstreamBlobGets(layer.digest, before)).toBe(2)
  })
})
