// `npm run demo`: a local fleet on this machine. A gateway daemon takes an image in; three
// edge daemons pull it at the same moment and feed each other; every node verifies what it
// holds; the table shows who sent what; containerd's first request (the manifest by tag)
// goes to an edge's registry port. Each daemon is its own process on loopback, as on its own
// machine, started as deployed: bin/shoal.js run as an executable (its first line's node flags
// and malloc setting) and the fleet closed by a swarm key.
import { spawn, type ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { generateImages } from './gen-images.js'

const SHOAL = join(import.meta.dirname, '..', 'bin', 'shoal.js')
const MIB = 1024 * 1024
const run = promisify(execFile)
// What containerd's resolver sends in Accept for a manifest by tag.
const OCI_MANIFEST_TYPES = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

interface Node { name: string, child: ChildProcess, api: string, registry: string, peerId: string, address: string }
interface Status { stats: { bytesUploaded: number, bytesDownloaded: number, perPeer: Record<string, { bytesDownloaded: number }> } }

async function startDaemon (name: string, dataDir: string, args: string[]): Promise<Node> {
  const child = spawn(SHOAL, ['--data', dataDir, '--json', 'daemon', '--registry', '127.0.0.1:0',
    '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')))
    })
    child.once('exit', code => { reject(new Error(`${name} exited with ${String(code)}`)) })
  })
  // The control API is the Unix socket in the data dir (what `--api` takes); the registry is TCP.
  const started = JSON.parse(line) as { api: string, registry: string, peerId: string, addresses: string[] }
  return { name, child, api: started.api, registry: started.registry, peerId: started.peerId, address: started.addresses[0] ?? '' }
}

async function shoal (...args: string[]): Promise<string> {
  return (await run(SHOAL, args, { maxBuffer: 16 * MIB })).stdout.trim()
}

async function status (node: Node): Promise<Status> {
  // The read-only status the status page polls, on the registry listener.
  return await (await fetch(`http://${node.registry}/status.json`)).json() as Status
}

const work = await mkdtemp(join(tmpdir(), 'shoal-demo-'))
const nodes: Node[] = []
try {
  console.log(`demo: generating images (three apps sharing a 48 MiB base layer) in ${work}`)
  const images = await generateImages(join(work, 'images'), { baseBytes: 48 * MIB, seed: 1 })
  const swarmKey = join(work, 'swarm.key')
  await shoal('keygen', 'swarm', swarmKey)
  const gateway = await startDaemon('gateway', join(work, 'gateway'), ['--gateway', '--swarm-key', swarmKey])
  nodes.push(gateway)
  const id = await shoal('--api', gateway.api, 'push', images.layouts.app1 ?? '')
  console.log(`gateway: pushed app1 → bundle ${id}`)
  // --trust: edges follow the gateway's tags (signed ref records); a bootstrap peer is not trusted by itself.
  for (const n of [1, 2, 3]) nodes.push(await startDaemon(`edge${n}`, join(work, `edge${n}`), ['--bootstrap', gateway.address, '--trust', gateway.peerId, '--swarm-key', swarmKey]))
  const edges = nodes.slice(1)
  const started = Date.now()
  await Promise.all(edges.map(async edge => { await shoal('--api', edge.api, 'pull', id) }))
  console.log(`edges: all three pulled the bundle at once in ${((Date.now() - started) / 1000).toFixed(1)} s`)
  for (const edge of edges) console.log(`${edge.name}: ${await shoal('--api', edge.api, 'verify', id)}`)
  const bundleBytes = JSON.parse(await shoal('--api', gateway.api, '--json', 'ls'))[0].bytes as number
  console.log(`\nbundle: ${(bundleBytes / MIB).toFixed(1)} MiB`)
  console.log('node      uploaded MiB  downloaded MiB  of which from the gateway')
  for (const node of nodes) {
    const { stats } = await status(node)
    const fromGateway = stats.perPeer[gateway.peerId]?.bytesDownloaded ?? 0
    console.log(`${node.name.padEnd(9)} ${(stats.bytesUploaded / MIB).toFixed(1).padStart(12)}  ${(stats.bytesDownloaded / MIB).toFixed(1).padStart(14)}  ${node === gateway ? '' : (fromGateway / MIB).toFixed(1).padStart(25)}`)
  }
  const gatewaySent = (await status(gateway)).stats.bytesUploaded
  console.log(`\nthe gateway sent ${(gatewaySent / bundleBytes).toFixed(2)} copies of the bundle for ${edges.length} edges; the rest moved between edges.`)
  // The request as containerd sends it through a hosts.toml mirror: the repository without its
  // registry, which comes as ?ns= (FACTS.md "Real clients"); the host-in-path form is skopeo's.
  const manifestUrl = `http://${edges[0]?.registry ?? ''}/v2/shoal/app1/manifests/1.0?ns=registry.example.com`
  const manifest = await fetch(manifestUrl, { headers: { accept: OCI_MANIFEST_TYPES } })
  console.log(`containerd, with this edge as its registry mirror, asks ${manifestUrl}: ${manifest.status} ${manifest.headers.get('content-type') ?? ''} ${manifest.headers.get('docker-content-digest') ?? ''}`)
  if (!manifest.ok) throw new Error(`edge1 answered the manifest request with ${manifest.status}: ${await manifest.text()}`)
} finally {
  for (const node of nodes) node.child.kill('SIGTERM')
  await Promise.all(nodes.map(async node => await new Promise(resolve => { if (node.child.exitCode !== null) resolve(null); else node.child.once('exit', resolve) })))
  await rm(work, { recursive: true, force: true })
}
