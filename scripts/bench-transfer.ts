// How fast does a bundle move between two daemons, next to raw TCP of the same bytes?
//
//   node --import tsx scripts/bench-transfer.ts [--size-mb 1024] [--runs 3] [--window-mb 16]
//        [--max-requests N] [--max-buffered N] [--no-fsync] [--direct-io] [--swarm-key [--pnet xsalsa20]] [--tsx] [--cpu-prof DIR] [--dir DIR] [--keep]
//        [--node-flags '--flag=value …'] [--encrypter tls|noise] [--gateway-seed] [--shoal-only]
//
// The child processes run an esbuild bundle of this script and the sources (made first, in
// the work dir, with scripts/build-dist.js's settings), as a deployed daemon runs dist/: a
// tsc file-per-module build holds ~26 MB more RSS; --tsx runs them through tsx instead,
// which costs ~50 MB more. Every child runs with the node flags bin/shoal.js gives a daemon
// (its `#!/usr/bin/env -S node …` line), then --node-flags (to try V8 settings).
//
// Generates a tree of about --size-mb (one big file and several smaller ones, random bytes),
// pushes it into a seed store, then --runs times, interleaved:
//   raw TCP    a sender process streams every object file of the seed store over one
//              `net` socket; a receiver process writes them to one file and fsyncs it
//   shoal      a seed daemon process (swarm + store) and a puller process with a fresh store
//              on 127.0.0.1: the puller dials, pulls the bundle, every chunk verified and
//              stored (fsync per chunk unless --no-fsync)
// and two references that split shoal's cost in two:
//   libp2p     the same bytes over one libp2p stream (tcp + --encrypter + yamux, same window) in
//              1 MiB messages, discarded on arrival: the transport alone
//   store      one process copying every chunk from the seed store into a fresh store with
//              writeChunk, 32 at a time: verification and durable writes alone
// (--shoal-only: the shoal runs alone; --gateway-seed: the seed is a gateway, as the holder in
// scripts/bench-containerd.ts is, with a gateway's pace cap and seeding rules) and prints medians: MB/s, the ratio shoal/raw, CPU seconds per side during the transfer
// (and per GiB moved), and peak RSS per process (getrusage maxRSS, so start-up is included).
// Goals (issue 10): shoal ≥ 0.6× raw TCP, ≤ 120 MB RSS per daemon under transfer.
import '../src/polyfill.js'
import { fork } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import { createReadStream, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { bundleObjects } from '../src/manifest/index.js'
import { openStore, pushTree } from '../src/store/index.js'
import { createPeerKey, createSwarm, generateSwarmKey } from '../src/swarm/index.js'
import { shebangEnv } from '../test/helpers/shoal-cli.js'
import { cpuMark, cpuSince, firstMessage, talkTo, tell, type Child, type CpuMark } from './bench-child.js'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const MIB = 1024 * 1024
const THIS_SCRIPT = fileURLToPath(import.meta.url)
const REPO = dirname(dirname(THIS_SCRIPT))
/** The script the children run: this one through tsx, or its tsc build. */
let childScript = { path: THIS_SCRIPT, execArgv: ['--import', 'tsx'] }
/** Where the shoal children write CPU profiles, when asked. */
let cpuProfDir: string | undefined
/**
 * The node flags every child runs with: those bin/shoal.js's first line gives a deployed daemon
 * (`#!/usr/bin/env -S node FLAGS`), then --node-flags.
 */
let nodeFlags: string[] = []
const GOAL_RATIO = 0.6
const GOAL_RSS_MB = 120

interface Options {
  sizeMb: number
  runs: number
  windowMb: number
  /** Scheduler limits; the daemon's defaults unless given. */
  maxRequests?: number
  maxBuffered?: number
  fsync: boolean
  /** The puller's (and the store copy's) store writes chunks with O_DIRECT (StoreInit.directIo). */
  directIo: boolean
  swarmKey: boolean
  gatewaySeed: boolean
  shoalOnly: boolean
  pnet: 'aes-256-ctr' | 'xsalsa20'
  tsx: boolean
  cpuProf?: string
  dir?: string
  keep: boolean
  /** More node flags for every child, after the ones bin/shoal.js gives (V8's last one wins). */
  nodeFlags: string[]
  /** The connection encrypter both ends offer, for the libp2p reference and the daemons. */
  encrypter: 'tls' | 'noise'
}

/** What each child reports when its part is done. */
interface SideReport {
  role: string
  seconds?: number
  bytes?: number
  cpuSeconds: number
  /** Of which the main thread (the event loop: JavaScript, syscalls made from it). */
  mainCpuSeconds?: number
  maxRssMb: number
  /** At the sampled RSS peak: V8 heap and Buffer memory, to tell which one grew. */
  peakHeapMb?: number
  peakArrayBuffersMb?: number
  /** At the sampled RSS peak: anonymous memory and file-backed pages (the node binary, libraries). */
  peakAnonMb?: number
  peakFileMb?: number
}

/**
 * Samples memory every 50 ms; RSS alone does not say whether buffers or the heap grew. The full
 * `memoryUsage()` (heap statistics) only at a new RSS peak: taken every time it was ~4% of the
 * puller's profile, charged to every role's CPU figure.
 */
let memoryPeak: NodeJS.MemoryUsage | undefined
/** /proc/self/status at the same peak: anonymous memory (heap, buffers, malloc) vs mapped files (code). */
let statusPeak: { anonMb: number, fileMb: number } | undefined
function sampleMemory (): void {
  const timer = setInterval(() => {
    if (memoryPeak !== undefined && process.memoryUsage.rss() <= memoryPeak.rss) return
    const now = process.memoryUsage()
    if (memoryPeak === undefined || now.rss > memoryPeak.rss) {
      memoryPeak = now
      statusPeak = rssParts()
    }
  }, 50)
  timer.unref()
}

function rssParts (): { anonMb: number, fileMb: number } | undefined {
  try {
    const status = readFileSync('/proc/self/status', 'utf8')
    const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
    return { anonMb: kb('RssAnon') / 1024, fileMb: kb('RssFile') / 1024 }
  } catch {
    return undefined
  }
}

function parseArgs (argv: string[]): Options {
  const options: Options = { sizeMb: 1024, runs: 3, windowMb: 16,  fsync: true, directIo: false, swarmKey: false, gatewaySeed: false, shoalOnly: false, pnet: 'aes-256-ctr', tsx: false, keep: false, nodeFlags: [], encrypter: 'tls' }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = (): string => argv[++i] ?? ''
    if (arg === '--size-mb') options.sizeMb = Number(value())
    else if (arg === '--runs') options.runs = Number(value())
    else if (arg === '--window-mb') options.windowMb = Number(value())
    else if (arg === '--max-requests') options.maxRequests = Number(value())
    else if (arg === '--max-buffered') options.maxBuffered = Number(value())
    else if (arg === '--no-fsync') options.fsync = false
    else if (arg === '--direct-io') options.directIo = true
    else if (arg === '--swarm-key') options.swarmKey = true
    else if (arg === '--gateway-seed') options.gatewaySeed = true
    else if (arg === '--shoal-only') options.shoalOnly = true
    else if (arg === '--pnet') options.pnet = value() === 'xsalsa20' ? 'xsalsa20' : 'aes-256-ctr'
    else if (arg === '--tsx') options.tsx = true
    else if (arg === '--cpu-prof') options.cpuProf = value()
    else if (arg === '--dir') options.dir = value()
    else if (arg === '--keep') options.keep = true
    else if (arg === '--encrypter') options.encrypter = value() === 'noise' ? 'noise' : 'tls'
    else if (arg === '--node-flags') options.nodeFlags = value().split(' ').filter(f => f !== '')
    else throw new Error(`unknown argument ${arg ?? ''}`)
  }
  return options
}

// ---- the parent: set up, run, report ----------------------------------------------------

async function main (): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  const work = options.dir ?? await mkdtemp(join(tmpdir(), 'shoal-bench-transfer-'))
  await mkdir(work, { recursive: true })
  try {
    if (!options.tsx) childScript = await build(join(work, 'dist'))
    if (options.cpuProf !== undefined) cpuProfDir = options.cpuProf
    nodeFlags = [...shippedNodeFlags(), ...options.nodeFlags]
    const tree = join(work, 'tree')
    const seedStore = join(work, 'seed-store')
    console.log(`generating ${options.sizeMb} MiB in ${tree}`)
    await generateTree(tree, options.sizeMb * MIB)
    const store = await openStore({ dir: seedStore })
    const { bundleId, bundle } = await pushTree(store, tree)
    const objects = bundleObjects(bundle).map(o => ({ path: store.objectPath(o.hash), size: o.size }))
    await store.close()
    const totalBytes = objects.reduce((n, o) => n + o.size, 0)
    const swarmKey = options.swarmKey ? Buffer.from(generateSwarmKey()).toString('latin1') : undefined
    console.log(`bundle ${bundleId}: ${objects.length} objects, ${(totalBytes / MIB).toFixed(0)} MiB`)

    const raw: Array<{ send: SideReport, recv: SideReport }> = []
    const p2p: Array<{ send: SideReport, recv: SideReport }> = []
    const copies: SideReport[] = []
    const shoal: Array<{ seed: SideReport, pull: SideReport }> = []
    for (let run = 1; run <= options.runs; run++) {
      if (!options.shoalOnly) await referenceRuns(run)
      const shoalRun = await runShoal(seedStore, join(work, `pull-store-${run}`), bundleId, options, swarmKey)
      shoal.push(shoalRun)
      console.log(`run ${run} shoal:   ${rate(shoalRun.pull)} MB/s`)
      await rm(join(work, `pull-store-${run}`), { recursive: true, force: true })
    }
    async function referenceRuns (run: number): Promise<void> {
      const rawRun = await runRaw(objects.map(o => o.path), join(work, `raw-${run}.out`))
      raw.push(rawRun)
      console.log(`run ${run} raw TCP: ${rate(rawRun.recv)} MB/s`)
      const p2pRun = await runP2p(objects.map(o => o.path), options.windowMb, options.encrypter)
      p2p.push(p2pRun)
      console.log(`run ${run} libp2p:  ${rate(p2pRun.recv)} MB/s`)
      const copy = await spawnRole('store-copy', { seedStore, store: join(work, `copy-store-${run}`), bundleId, fsync: options.fsync, directIo: options.directIo }).next() as unknown as SideReport
      copies.push(copy)
      console.log(`run ${run} store:   ${rate(copy)} MB/s`)
      await rm(join(work, `copy-store-${run}`), { recursive: true, force: true })
      await rm(join(work, `raw-${run}.out`), { force: true })
    }

    const rawRate = median(raw.map(r => Number(rate(r.recv))))
    const p2pRate = median(p2p.map(r => Number(rate(r.recv))))
    const copyRate = median(copies.map(r => Number(rate(r))))
    const shoalRate = median(shoal.map(r => Number(rate(r.pull))))
    const row = (name: string, mbps: number, a: SideReport[], b: SideReport[]): string =>
      `${name.padEnd(10)} ${mbps.toFixed(0).padStart(7)} MB/s   cpu ${median(a.map(r => r.cpuSeconds)).toFixed(2)} s / ${median(b.map(r => r.cpuSeconds)).toFixed(2)} s` +
      `   peak RSS ${median(a.map(r => r.maxRssMb)).toFixed(0)} MB / ${median(b.map(r => r.maxRssMb)).toFixed(0)} MB`
    console.log('')
    console.log(`medians of ${options.runs} runs, ${(totalBytes / MIB).toFixed(0)} MiB, node ${[...Object.entries(shippedEnv()).map(([k, v]) => `${k}=${v}`), ...nodeFlags].join(' ') || '(no flags)'}, yamux window ${options.windowMb} MiB, max ${options.maxRequests ?? 'default'} requests/peer, ${options.maxBuffered ?? 'default'} chunks buffered, fsync ${options.fsync ? 'on' : 'off'}${options.directIo ? ', direct I/O' : ''}, ${options.encrypter}${options.swarmKey ? `, swarm key (${options.pnet})` : ''}${options.gatewaySeed ? ', the seed a gateway' : ''}`)
    console.log('           throughput      cpu sender / receiver    peak RSS sender / receiver')
    if (!options.shoalOnly) {
      console.log(row('raw TCP', rawRate, raw.map(r => r.send), raw.map(r => r.recv)))
      console.log(row('libp2p', p2pRate, p2p.map(r => r.send), p2p.map(r => r.recv)))
      console.log(row('store', copyRate, copies, copies))
    }
    console.log(row('shoal', shoalRate, shoal.map(r => r.seed), shoal.map(r => r.pull)))
    const heap = (r: SideReport): string => `heap ${(r.peakHeapMb ?? 0).toFixed(0)} MB, buffers ${(r.peakArrayBuffersMb ?? 0).toFixed(0)} MB, anonymous ${(r.peakAnonMb ?? NaN).toFixed(0)} MB, files ${(r.peakFileMb ?? NaN).toFixed(0)} MB`
    const last = shoal[shoal.length - 1]
    if (last !== undefined) console.log(`at the RSS peak (last run): seed ${heap(last.seed)}; puller ${heap(last.pull)}`)
    if (!options.shoalOnly) console.log(`libp2p/raw ${(p2pRate / rawRate).toFixed(2)}, shoal/libp2p ${(shoalRate / p2pRate).toFixed(2)}, shoal/store ${(shoalRate / copyRate).toFixed(2)}`)
    const perGib = (reports: SideReport[]): string => median(reports.map(r => r.cpuSeconds / (totalBytes / (1024 * MIB)))).toFixed(2)
    console.log(`CPU-seconds per GiB: shoal seed ${perGib(shoal.map(r => r.seed))} sent, puller ${perGib(shoal.map(r => r.pull))} received; raw TCP receiver ${perGib(raw.map(r => r.recv))}, libp2p receiver ${perGib(p2p.map(r => r.recv))}`)
    const mainPerGib = (reports: SideReport[]): string => median(reports.map(r => (r.mainCpuSeconds ?? NaN) / (totalBytes / (1024 * MIB)))).toFixed(2)
    console.log(`  of which the main thread: shoal seed ${mainPerGib(shoal.map(r => r.seed))}, puller ${mainPerGib(shoal.map(r => r.pull))}; raw TCP receiver ${mainPerGib(raw.map(r => r.recv))}, libp2p receiver ${mainPerGib(p2p.map(r => r.recv))}`)
    const ratio = shoalRate / rawRate
    const rss = Math.max(...shoal.flatMap(r => [r.seed.maxRssMb, r.pull.maxRssMb]))
    console.log(`ratio shoal/raw ${ratio.toFixed(2)} (goal ≥ ${GOAL_RATIO}): ${ratio >= GOAL_RATIO ? 'met' : 'NOT met'}; ` +
      `max daemon RSS ${rss.toFixed(0)} MB (goal ≤ ${GOAL_RSS_MB}): ${rss <= GOAL_RSS_MB ? 'met' : 'NOT met'}`)
  } finally {
    if (!options.keep && options.dir === undefined) await rm(work, { recursive: true, force: true })
  }
}

/** One bundle of this script into `out`, as scripts/build-dist.js bundles the daemon; node_modules linked beside it for the native packages. */
async function build (out: string): Promise<typeof childScript> {
  console.log(`bundling into ${out}`)
  const { build: bundle } = await import('esbuild')
  await bundle({
    absWorkingDir: REPO,
    entryPoints: [THIS_SCRIPT],
    outfile: join(out, 'bench-transfer.js'),
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // As scripts/build-dist.js: no comments, so the source V8 keeps is smaller and one byte a character.
    minifyWhitespace: true,
    // esbuild: only the parent bundles; the children never load it.
    external: ['classic-level', 'level', '@napi-rs/blake-hash', 'esbuild'],
    banner: { js: "import { createRequire as __shoalCreateRequire } from 'node:module'; const require = __shoalCreateRequire(import.meta.url);" },
    logLevel: 'warning',
  })
  await symlink(join(REPO, 'node_modules'), join(out, 'node_modules'))
  await writeFile(join(out, 'package.json'), '{"type":"module"}\n')
  return { path: join(out, 'bench-transfer.js'), execArgv: [] }
}

async function generateTree (dir: string, bytes: number): Promise<void> {
  await mkdir(join(dir, 'layers'), { recursive: true })
  // Half in one big object (one layer from many peers), the rest in eight smaller ones.
  const sizes = [Math.floor(bytes / 2), ...Array<number>(8).fill(Math.floor(bytes / 16))]
  const buffer = Buffer.alloc(8 * MIB)
  for (const [i, size] of sizes.entries()) {
    const file = await open(join(dir, 'layers', `layer-${i}.bin`), 'w')
    for (let written = 0; written < size;) {
      const piece = buffer.subarray(0, Math.min(buffer.length, size - written))
      randomFillSync(piece)
      await file.write(piece)
      written += piece.length
    }
    await file.close()
  }
}

/** The flags in bin/shoal.js's `#!/usr/bin/env -S NAME=VALUE… node FLAGS` line. */
function shippedNodeFlags (): string[] {
  const shebang = readFileSync(join(REPO, 'bin', 'shoal.js'), 'utf8').split('\n', 1)[0] ?? ''
  return shebang.split(' ').filter(word => word.startsWith('--'))
}

/** …and the environment it sets, which every child gets too. */
function shippedEnv (): Record<string, string> {
  return shebangEnv(join(REPO, 'bin', 'shoal.js'))
}

function rate (report: SideReport): string {
  return ((report.bytes ?? 0) / 1e6 / (report.seconds ?? Infinity)).toFixed(1)
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

// ---- child plumbing -------------------------------------------------------------------

function spawnRole (role: string, args: Record<string, unknown>): Child {
  const profile = cpuProfDir !== undefined && (role === 'seed' || role === 'pull') ? ['--cpu-prof', '--cpu-prof-dir', join(cpuProfDir, role)] : []
  const child = fork(childScript.path, ['--role', role], { execArgv: [...childScript.execArgv, ...nodeFlags, ...profile], env: { ...process.env, ...shippedEnv() }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return talkTo(child, role, args)
}

async function runRaw (paths: string[], out: string): Promise<{ send: SideReport, recv: SideReport }> {
  const sender = spawnRole('raw-send', { paths })
  const { port } = await sender.next() as { port: number }
  const receiver = spawnRole('raw-recv', { port, out })
  const recv = await receiver.next() as unknown as SideReport
  const send = await sender.next() as unknown as SideReport
  return { send, recv }
}

async function runP2p (paths: string[], windowMb: number, encrypter: Options['encrypter']): Promise<{ send: SideReport, recv: SideReport }> {
  const sender = spawnRole('p2p-send', { paths, windowMb, encrypter })
  const { address } = await sender.next() as { address: string }
  const receiver = spawnRole('p2p-recv', { address, windowMb, encrypter })
  const recv = await receiver.next() as unknown as SideReport
  const send = await sender.next() as unknown as SideReport
  return { send, recv }
}

async function runShoal (seedStore: string, pullStore: string, bundleId: string, options: Options, swarmKey?: string): Promise<{ seed: SideReport, pull: SideReport }> {
  const common = { windowMb: options.windowMb, maxRequests: options.maxRequests, maxBuffered: options.maxBuffered, fsync: options.fsync, directIo: options.directIo, swarmKey, pnet: options.pnet, encrypter: options.encrypter }
  const seed = spawnRole('seed', { ...common, store: seedStore, gateway: options.gatewaySeed })
  const { address } = await seed.next() as { address: string }
  const puller = spawnRole('pull', { ...common, store: pullStore, address, bundleId })
  const pull = await puller.next() as unknown as SideReport
  seed.process.send({ stop: true })
  const seedReport = await seed.next() as unknown as SideReport
  return { seed: seedReport, pull }
}

function report (role: string, cpuStart: CpuMark, extra: Partial<SideReport> = {}): SideReport {
  return {
    role,
    ...cpuSince(cpuStart),
    maxRssMb: process.resourceUsage().maxRSS / 1024,
    peakHeapMb: (memoryPeak?.heapUsed ?? 0) / MIB,
    peakArrayBuffersMb: (memoryPeak?.arrayBuffers ?? 0) / MIB,
    peakAnonMb: statusPeak?.anonMb,
    peakFileMb: statusPeak?.fileMb,
    ...extra,
  }
}

// ---- the roles ------------------------------------------------------------------------

async function rawSend (): Promise<void> {
  const { paths } = await firstMessage() as { paths: string[] }
  const server = createServer()
  let cpuStart = cpuMark()
  const sent = new Promise<void>((resolve, reject) => {
    server.once('connection', (socket: Socket) => {
      cpuStart = cpuMark()
      void (async () => {
        for (const path of paths) {
          for await (const piece of createReadStream(path, { highWaterMark: MIB })) {
            if (!socket.write(piece as Buffer)) await new Promise(r => socket.once('drain', r))
          }
        }
        socket.end(resolve)
      })().catch(reject)
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  await tell({ port: (server.address() as { port: number }).port })
  await sent
  server.close()
  await tell(report('raw-send', cpuStart))
}

async function rawRecv (): Promise<void> {
  const { port, out } = await firstMessage() as { port: number, out: string }
  const file = await open(out, 'w')
  const cpuStart = cpuMark()
  const started = performance.now()
  let bytes = 0
  let pendingBytes = 0
  let writing = Promise.resolve()
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    // Positional writes as the store does; the socket pauses while 8 MiB wait for the disk.
    socket.on('data', (piece: Buffer) => {
      const at = bytes
      bytes += piece.length
      pendingBytes += piece.length
      if (pendingBytes > 8 * MIB) socket.pause()
      writing = writing.then(async () => {
        await file.write(piece, 0, piece.length, at)
        pendingBytes -= piece.length
        if (pendingBytes <= 8 * MIB && socket.isPaused()) socket.resume()
      })
    })
    socket.on('end', resolve)
    socket.on('error', reject)
  })
  await writing
  await file.sync()
  await file.close()
  await tell(report('raw-recv', cpuStart, { seconds: (performance.now() - started) / 1000, bytes }))
}

const BENCH_PROTOCOL = '/shoal-bench/1.0.0'

/** A bare libp2p node with the swarm's transport settings, for the transport-only reference. */
async function bareNode (windowMb: number, listen: boolean, encrypter: Options['encrypter']): Promise<Awaited<ReturnType<typeof createLibp2p>>> {
  const window = windowMb * MIB
  return await createLibp2p({
    privateKey: await createPeerKey(),
    addresses: { listen: listen ? ['/ip4/127.0.0.1/tcp/0'] : [] },
    transports: [tcp()],
    connectionEncrypters: [encrypter === 'tls' ? tls() : noise()],
    streamMuxers: [yamux({ streamOptions: { initialStreamWindowSize: window, maxStreamWindowSize: window, maxReadBufferLength: window * 2 } })],
    // As the swarm configures it: a ping stuck behind megabytes must not drop the link.
    connectionMonitor: { enabled: false },
  })
}

async function p2pSend (): Promise<void> {
  const { paths, windowMb, encrypter } = await firstMessage() as { paths: string[], windowMb: number, encrypter: Options['encrypter'] }
  const node = await bareNode(windowMb, true, encrypter)
  let cpuStart = cpuMark()
  const sent = new Promise<void>((resolve, reject) => {
    void node.handle(BENCH_PROTOCOL, (stream) => {
      cpuStart = cpuMark()
      void (async () => {
        for (const path of paths) {
          for await (const piece of createReadStream(path, { highWaterMark: MIB })) {
            if (!stream.send(piece as Buffer)) await stream.onDrain()
          }
        }
        await stream.close()
        resolve()
      })().catch(reject)
    })
  })
  await tell({ address: node.getMultiaddrs()[0]?.toString() })
  await sent
  const result = report('p2p-send', cpuStart)
  await node.stop()
  await tell(result)
}

async function p2pRecv (): Promise<void> {
  const { address, windowMb, encrypter } = await firstMessage() as { address: string, windowMb: number, encrypter: Options['encrypter'] }
  const node = await bareNode(windowMb, false, encrypter)
  const stream = await node.dialProtocol(multiaddr(address), BENCH_PROTOCOL)
  const cpuStart = cpuMark()
  const started = performance.now()
  let bytes = 0
  await new Promise<void>((resolve, reject) => {
    stream.addEventListener('message', (evt) => { bytes += evt.data.byteLength })
    stream.addEventListener('remoteCloseWrite', () => { resolve() })
    stream.addEventListener('close', (evt) => { if (evt.error !== undefined) reject(evt.error); else resolve() })
  })
  const result = report('p2p-recv', cpuStart, { seconds: (performance.now() - started) / 1000, bytes })
  await node.stop()
  await tell(result)
}

async function storeCopy (): Promise<void> {
  const args = await firstMessage() as { seedStore: string, store: string, bundleId: string, fsync: boolean, directIo: boolean }
  const seedStore = await openStore({ dir: args.seedStore })
  const store = await openStore({ dir: args.store, fsync: args.fsync, directIo: args.directIo })
  const encoded = await seedStore.getEncodedBundle(args.bundleId)
  if (encoded === undefined) throw new Error('the seed store lost the bundle')
  const { bundle } = await store.addBundle(encoded, { expectedId: args.bundleId })
  const chunks = bundleObjects(bundle).flatMap(o => [...Array(Math.ceil(o.size / MIB)).keys()].map(index => ({ hash: o.hash, index })))
  const cpuStart = cpuMark()
  const started = performance.now()
  let bytes = 0
  let next = 0
  // 32 at a time, as the swarm keeps at most MAX_BUFFERED_CHUNKS in memory.
  await Promise.all([...Array(32).keys()].map(async () => {
    for (let chunk = chunks[next++]; chunk !== undefined; chunk = chunks[next++]) {
      const data = await seedStore.readChunk(chunk.hash, chunk.index)
      await store.writeChunk(args.bundleId, chunk.hash, chunk.index, data)
      bytes += data.length
    }
  }))
  const result = report('store-copy', cpuStart, { seconds: (performance.now() - started) / 1000, bytes })
  await store.close()
  await seedStore.close()
  await tell(result)
}

interface ShoalArgs { store: string, windowMb: number, maxRequests?: number, maxBuffered?: number, fsync: boolean, directIo?: boolean, swarmKey?: string, pnet: 'aes-256-ctr' | 'xsalsa20', encrypter: Options['encrypter'], gateway?: boolean }

async function startDaemon (args: ShoalArgs): Promise<{ swarm: ReturnType<typeof createSwarm>, store: Awaited<ReturnType<typeof openStore>> }> {
  const store = await openStore({ dir: args.store, fsync: args.fsync, directIo: args.directIo })
  const swarm = createSwarm({ store }, {
    privateKey: await createPeerKey(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    mdns: false,
    gateway: args.gateway === true,
    yamuxWindowBytes: args.windowMb * MIB,
    swarmKey: args.swarmKey === undefined ? undefined : Buffer.from(args.swarmKey, 'latin1'),
    pnetCipher: args.pnet,
    encrypters: [args.encrypter],
    scheduler: { maxRequestsPerPeer: args.maxRequests, maxBufferedChunks: args.maxBuffered },
  })
  await swarm.start()
  return { swarm, store }
}

async function seedRole (): Promise<void> {
  const args = await firstMessage() as unknown as ShoalArgs
  const { swarm, store } = await startDaemon(args)
  const stop = firstMessage()
  await tell({ address: swarm.addresses()[0] })
  const cpuStart = cpuMark()
  await stop
  const result = report('seed', cpuStart, { bytes: swarm.stats().bytesUploaded })
  await swarm.stop()
  await store.close()
  await tell(result)
}

async function pullRole (): Promise<void> {
  const args = await firstMessage() as unknown as ShoalArgs & { address: string, bundleId: string }
  const { swarm, store } = await startDaemon(args)
  const joined = new Promise<void>(resolve => { swarm.once('neighbour:joined', () => { resolve() }) })
  await swarm.dial(args.address)
  await joined
  // Where the pipeline waits: requests in flight at the seed vs chunks inside writeChunk.
  const write = store.writeChunk.bind(store)
  let writing = 0
  store.writeChunk = async (...call: Parameters<typeof write>) => {
    writing++
    try { return await write(...call) } finally { writing-- }
  }
  let samples = 0
  let inFlightSum = 0
  let writingSum = 0
  const sampler = setInterval(() => {
    samples++
    inFlightSum += swarm.peers().reduce((n, p) => n + p.requestsInFlight, 0)
    writingSum += writing
  }, 20)
  const cpuStart = cpuMark()
  const started = performance.now()
  await swarm.pull(args.bundleId)
  const seconds = (performance.now() - started) / 1000
  clearInterval(sampler)
  if (process.env.BENCH_PIPELINE === '1') console.log(`pipeline: ${(inFlightSum / samples).toFixed(1)} requests in flight, ${(writingSum / samples).toFixed(1)} chunks in writeChunk, on average`)
  const stats = swarm.stats()
  const result = report('pull', cpuStart, { seconds, bytes: stats.bytesDownloaded })
  await swarm.stop()
  await store.close()
  await tell(result)
}

const roleAt = process.argv.indexOf('--role')
const role = roleAt >= 0 ? process.argv[roleAt + 1] : undefined
const roles: Record<string, () => Promise<void>> = {
  'raw-send': rawSend, 'raw-recv': rawRecv, 'p2p-send': p2pSend, 'p2p-recv': p2pRecv, 'store-copy': storeCopy, seed: seedRole, pull: pullRole,
}
const run = role === undefined ? main : roles[role]
if (role !== undefined) {
  sampleMemory()
  // Keep the IPC channel referenced: a child whose work stalls must hang (and be seen), not exit quietly.
  process.channel?.ref()
}
if (run === undefined) throw new Error(`unknown role ${role ?? ''}`)
run().then(() => { if (role !== undefined) process.disconnect?.() }, (err: unknown) => {
  console.error(err)
  process.exit(1)
})
