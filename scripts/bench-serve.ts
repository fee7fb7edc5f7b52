// How fast does a shoal daemon serve an image over its registry API, next to docker-registry
// serving the same image on the same machine? And how soon does an edge start answering for a
// large layer it does not hold yet, while the swarm streams it from a gateway?
//
//   node --import tsx scripts/bench-serve.ts [--size-mb 1024] [--layer-mb 512] [--runs 3] [--dir DIR] [--keep]
//
// 1. Generates an image of about --size-mb (gen-images' app1: one big base layer), loads it
//    into a docker-registry (skopeo copy) and pushes it into a shoal gateway (shoal push).
// 2. Pulls it from each, --runs times, interleaved so noise falls on both alike:
//      fetch   every blob with concurrent node fetch GETs, bytes discarded (the servers' speed)
//      skopeo  skopeo copy docker://… dir:OUT (a real client, writing to disk)
//    and prints medians in MB/s and shoal's ratio to docker-registry.
// 3. Time to first byte of a --layer-mb layer the edge does not hold: a gateway holds an
//    image with such a layer, an edge (bootstrapped from it) starts pulling the bundle, and
//    the layer is asked of the edge's registry API at once; the first body byte arrives when
//    the swarm has brought (and verified) its first chunk. Also the whole layer's time.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import { startDaemonProcess, type DaemonProcess } from '../test/helpers/daemon-process.js'
import { startDockerRegistry, type RegistryProcess } from '../test/upstream/docker-registry.js'
import { SHOAL_BIN } from '../test/helpers/shoal-cli.js'
import { generateImages } from './gen-images.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024
const MB = 1e6

interface Options { sizeMb: number, layerMb: number, runs: number, dir?: string, keep: boolean }

function parseOptions (argv: string[]): Options {
  const options: Options = { sizeMb: 1024, layerMb: 512, runs: 3, keep: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const next = (): string => argv[++i] ?? ''
    if (arg === '--size-mb') options.sizeMb = Number(next())
    else if (arg === '--layer-mb') options.layerMb = Number(next())
    else if (arg === '--runs') options.runs = Number(next())
    else if (arg === '--dir') options.dir = next()
    else if (arg === '--keep') options.keep = true
    else throw new Error(`unknown option ${String(arg)}`)
  }
  return options
}

interface Blob { digest: string, size: number }

/** The manifest's blobs (config and layers) of `repo:tag` as a server lists them. */
async function imageBlobs (base: string, repo: string, tag: string): Promise<Blob[]> {
  const response = await fetch(`${base}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })
  if (!response.ok) throw new Error(`${base}: manifest ${repo}:${tag} → ${response.status}`)
  const manifest = await response.json() as { config: Blob, layers: Blob[] }
  return [manifest.config, ...manifest.layers]
}

/** Every blob at once with node fetch, bytes counted and dropped; returns seconds. */
async function fetchAll (base: string, repo: string, blobs: Blob[]): Promise<{ seconds: number, bytes: number }> {
  const started = performance.now()
  const sizes = await Promise.all(blobs.map(async (blob) => {
    const response = await fetch(`${base}/v2/${repo}/blobs/${blob.digest}`)
    if (!response.ok || response.body === null) throw new Error(`${base}: blob ${blob.digest} → ${response.status}`)
    let size = 0
    for await (const piece of response.body) size += piece.byteLength
    if (size !== blob.size) throw new Error(`${base}: blob ${blob.digest} gave ${size} bytes, not ${blob.size}`)
    return size
  }))
  return { seconds: (performance.now() - started) / 1000, bytes: sizes.reduce((a, b) => a + b, 0) }
}

async function skopeoCopy (host: string, repo: string, tag: string, out: string): Promise<number> {
  await rm(out, { recursive: true, force: true })
  const started = performance.now()
  await execFileAsync('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/${repo}:${tag}`, `dir:${out}`], { maxBuffer: 16 * MIB })
  const seconds = (performance.now() - started) / 1000
  await rm(out, { recursive: true, force: true })
  return seconds
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

async function shoalPush (api: string, layout: string): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, [SHOAL_BIN, '--api', api, 'push', layout], { maxBuffer: MIB })
  return stdout.trim()
}

async function serveBench (work: string, options: Options): Promise<void> {
  const images = await generateImages(join(work, 'images'), { baseBytes: options.sizeMb * MIB, seed: 42 })
  const layout = images.layouts.app1 ?? ''
  let registry: RegistryProcess | undefined
  let gateway: DaemonProcess | undefined
  try {
    registry = await startDockerRegistry(join(work, 'registry'))
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:1.0`, `docker://${registry.host}/shoal/app1:1.0`], { maxBuffer: 16 * MIB })
    gateway = await startDaemonProcess(join(work, 'gateway'), ['--no-mdns', '--gateway', '--log-level', 'warn'])
    await shoalPush(gateway.api, layout)
    const servers = [
      { name: 'shoal', base: `http://${gateway.registry}`, host: gateway.registry, repo: 'registry.example.com/shoal/app1' },
      { name: 'docker-registry', base: registry.url, host: registry.host, repo: 'shoal/app1' },
    ]
    const blobs = await imageBlobs(servers[0]?.base ?? '', servers[0]?.repo ?? '', '1.0')
    const total = blobs.reduce((a, b) => a + b.size, 0)
    console.log(`image: ${blobs.length} blobs, ${(total / MIB).toFixed(0)} MiB; ${options.runs} runs each, medians`)
    const results: Record<string, { fetch: number[], skopeo: number[] }> = {}
    for (const server of servers) results[server.name] = { fetch: [], skopeo: [] }
    for (let run = 0; run < options.runs; run++) {
      for (const server of servers) {
        const fetched = await fetchAll(server.base, server.repo, blobs)
        results[server.name]?.fetch.push(fetched.bytes / MB / fetched.seconds)
        const seconds = await skopeoCopy(server.host, server.repo, '1.0', join(work, `out-${server.name}`))
        results[server.name]?.skopeo.push(total / MB / seconds)
      }
    }
    const row = (name: string, way: 'fetch' | 'skopeo'): number => median(results[name]?.[way] ?? [])
    for (const way of ['fetch', 'skopeo'] as const) {
      const shoal = row('shoal', way)
      const reference = row('docker-registry', way)
      console.log(`${way.padEnd(7)} shoal ${shoal.toFixed(0).padStart(5)} MB/s   docker-registry ${reference.toFixed(0).padStart(5)} MB/s   ratio ${(shoal / reference).toFixed(2)}`)
    }
  } finally {
    await gateway?.stop()
    await registry?.stop()
  }
}

async function firstByteBench (work: string, options: Options): Promise<void> {
  const images = await generateImages(join(work, 'layer-images'), { baseBytes: options.layerMb * MIB, seed: 43 })
  const layout = images.layouts.app1 ?? ''
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
  const manifest = JSON.parse(await readFile(join(layout, 'blobs', 'sha256', (index.manifests[0]?.digest ?? '').slice(7)), 'utf8')) as { layers: Blob[] }
  const layer = manifest.layers.reduce((a, b) => a.size > b.size ? a : b)
  const ttfb: number[] = []
  const whole: number[] = []
  for (let run = 0; run < options.runs; run++) {
    const gateway = await startDaemonProcess(join(work, `ttfb-gw-${run}`), ['--no-mdns', '--gateway', '--log-level', 'warn'])
    let edge: DaemonProcess | undefined
    try {
      const bundleId = await shoalPush(gateway.api, layout)
      edge = await startDaemonProcess(join(work, `ttfb-edge-${run}`), ['--no-mdns', '--bootstrap', gateway.address, '--log-level', 'warn'])
      const edgeProcess = edge
      const edgeApi = edge.registry
      // The edge learns the bundle (its manifest) as a pull starts; the layer is then asked of its registry API.
      const pull = edgeProcess.controlText('POST', '/api/v1/pull', { ref: bundleId })
      const known = performance.now()
      for (;;) {
        const response = await edgeProcess.controlText('GET', `/api/v1/bundles/${bundleId}`)
        if (response.status === 200) break
        if (performance.now() - known > 30_000) throw new Error('the edge never learnt the bundle')
        await new Promise(resolve => setTimeout(resolve, 5))
      }
      const started = performance.now()
      const response = await fetch(`http://${edgeApi}/v2/registry.example.com/shoal/app1/blobs/${layer.digest}`)
      if (!response.ok || response.body === null) throw new Error(`edge: layer → ${response.status}`)
      let first: number | undefined
      let size = 0
      for await (const piece of response.body) {
        first ??= performance.now()
        size += piece.byteLength
      }
      const done = performance.now()
      if (size !== layer.size) throw new Error(`edge: layer gave ${size} bytes, not ${layer.size}`)
      ttfb.push(((first ?? done) - started) / 1000)
      whole.push((done - started) / 1000)
      await pull
    } finally {
      await edge?.stop()
      await gateway.stop()
      await rm(join(work, `ttfb-gw-${run}`), { recursive: true, force: true })
      await rm(join(work, `ttfb-edge-${run}`), { recursive: true, force: true })
    }
  }
  const seconds = median(whole)
  console.log(`first byte of a ${(layer.size / MIB).toFixed(0)} MiB layer the edge lacks: ${(median(ttfb) * 1000).toFixed(0)} ms (median of ${options.runs}; runs ${ttfb.map(t => (t * 1000).toFixed(0)).join(', ')} ms); whole layer ${seconds.toFixed(2)} s = ${(layer.size / MB / seconds).toFixed(0)} MB/s through the swarm`)
}

async function main (): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  const work = options.dir ?? await mkdtemp(join(tmpdir(), 'shoal-bench-serve-'))
  await mkdir(work, { recursive: true })
  try {
    await serveBench(work, options)
    await firstByteBench(work, options)
  } finally {
    if (!options.keep) await rm(work, { recursive: true, force: true })
  }
}

await main()
