// containerd pulling an image with a big layer (issue 8, "Speed"): straight from
// docker-registry, through a cold edge whose neighbour (the gateway) holds the image, and
// through a cold edge when only the registry holds it — same run, interleaved, medians.
//
//   node --import tsx scripts/bench-containerd.ts [--layer-mb 512] [--runs 3] [--client cri|ctr] [--observer capture|relay] [--only direct,warm,neighbour,registry,floor[,floor-plain,floor-nohash,floor-nostore,neighbour-warm]] [--edge-warmup MB] [--profile DIR] [--logs DIR] [--series DIR] [--b-env VAR=VALUE [--b-source]] [--node-flags 'FLAGS'] [--link-mbit N[,N…] [--link-mtu BYTES]] [--dir DIR] [--keep] [--no-swarm-key]
//
// Needs root, containerd + ctr, docker-registry, skopeo and tcpdump (Debian packages). Each run
// uses a fresh containerd (empty content store) pulling through the CRI's PullImage, the
// kubelet's path and the one issue 8 names (containerd itself fetches and unpacks; hosts from
// the CRI plugin's config_path), or with `--client ctr` through `ctr images pull --hosts-dir`
// (the ctr process fetches the layers and hands them to containerd's content store: ~1.8× the
// CPU of the CRI's fetch, so the daemons' share of the two cores weighs less), and an observer of
// what containerd and the server it talks to say to each other, so the times are what containerd
// saw: by default a packet capture on loopback (http-capture.ts, needs tcpdump), which takes no
// CPU in the data path; `--observer relay` puts the recording HTTP relay of the e2e tests in
// front of the server instead, in this script's process (~1.4 CPU-s a 512 MiB pull on the two
// cores the pull runs on: docs/architecture.md, "The containerd bench's observer"):
//   manifest   first manifest response headers (containerd's HEAD resolve), from the pull's start
//   asked      when containerd's request for the big layer was sent, from the pull's start
//   1st byte   first body byte of the big layer, from the pull's start
//   done       the layer's last byte, from the pull's start
//   total      the whole CRI PullImage (or `ctr images pull`), unpack included
//   shoal CPU  CPU-seconds (user + system, /proc/PID/stat) the shoal daemons of the scenario used
//              during the pull: the edge, and the neighbour or gateway it pulled from (less
//              sensitive to a shared machine's load than the wall times); split as edge + source
//   registry CPU  CPU-seconds of docker-registry during the pull (the direct scenario's server)
//   main thread  the part of the edge's and the source's CPU-seconds spent on their main threads
//              (/proc/PID/task/PID/stat); the rest is libuv's pool, V8's GC and compiler threads
//   run queue  seconds the edge's and the source's main threads spent runnable but waiting for a
//              CPU (/proc/PID/schedstat): on a shared machine much of a daemon's "idle" time in a
//              profile is this, not a wait for the other side
//   client CPU CPU-seconds of containerd and `ctr` (which fetches the layers itself) during the pull,
//              and of the observer (tcpdump, or this script's HTTP relay): on two shared cores
//              what the daemons leave them sets how fast containerd can take the layer
//   --b-env VAR=VALUE  (repeatable) a second neighbour case, `neighbour-b`, right after each
//                neighbour run (before it every other run), whose edge runs with these
//                variables: an A/B inside one invocation; likewise `registry-b` beside each
//                registry run, whose gateway and edge run with them
//   --b-source  the neighbour-b case pulls from a holder of its own that runs with the --b-env
//                variables too (made as the first one is, a gateway that pulled the image through):
//                an A/B of what the source does, where without it only the edge gets them
//   --node-flags 'FLAGS'  every daemon runs with these node/V8 flags (split on spaces) too, e.g.
//              '--log-code --log-deopt --logfile=DIR/v8-%p.log --no-logfile-per-isolate'
//              to see what V8 compiles per pull (a --trace-* flag would print over the daemon's start line)
//   --series DIR  per run, a JSON time series (bench-series.ts): when each MiB of the layer reached
//              containerd, and every 100 ms the disk's writes, dirty and writeback pages, and the
//              daemons', docker-registry's and containerd's CPU and run-queue waits; a summary line
//              per run gives the layer's waits over 50 ms between two MiB and the disk's writes
//   --link-mbit N[,N…]  the source behind a link, as on a fleet (bench-link.ts): docker-registry and
//              the holder run in a network namespace joined to this one by a veth shaped with tbf at
//              N Mbit/s each way (0: the veth, not shaped); containerd and the edge stay on loopback.
//              With several rates, each run pulls at each rate in turn (reshaped between pulls, the
//              order reversed every other run), so the rates are compared under the same load.
//              `direct` pulls over the link (the capture watches the veth), `neighbour` moves the
//              layer holder → edge over it, `registry`'s fresh gateway pulls through over it; `warm`
//              (containerd at the holder itself) and the floor scenarios do not run with it
//   --link-mtu BYTES  the veth's MTU (default 1500, an Ethernet's; at most 65535, loopback's is 65536)
// Scenarios:
//   direct      hosts.toml's only host is the registry
//   warm        the node that holds the image (the blob already in its local store)
//   neighbour   a fresh edge (no --upstream) bootstrapped from a gateway that holds the image
//   registry    a fresh gateway with --upstream and a fresh edge: the fleet pulls it through
//   floor       no daemon: the least a Node edge and holder must do (bench-floor.ts), a fresh floor
//               edge per run whose layer comes over TLS from one floor holder, verified, stored, served
//   floor-plain, floor-nohash, floor-nostore  (only with --only) the floor without one part: the
//               lane's TLS, the edge's BLAKE3, the edge's store; floor-bare without all three (two
//               node processes relaying the bytes, nothing else)
//   neighbour-warm  (only with --only) neighbour through a fresh edge that first, outside the
//               measured time and CPU, took a warm-up image's layer (--edge-warmup MB, default 64, other
//               bytes, pulled through by the holder at setup) from the same holder over the same path
//               (bench-warmup.ts): an edge whose store lacks the image but whose process has moved
//               bytes before; with neighbour in --only the two take turns going first
// The daemons run with a swarm key, as a fleet is deployed; --no-swarm-key runs them without one
// (what the key's cipher layer costs; the registry scenario needs the key, see startDaemon).
// The machine is shared (2 cores, other sessions): compare within one run only.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import { Containerd, containerdUnavailable } from '../test/helpers/containerd.js'
import { startDaemonProcess, waitFor, type DaemonProcess } from '../test/helpers/daemon-process.js'
import { startHttpRelay } from '../test/helpers/http-relay.js'
import { shoalOk } from '../test/helpers/shoal-cli.js'
import { startDockerRegistry, type RegistryProcess } from '../test/upstream/docker-registry.js'
import { cpuSeconds, gapsOf, machineLoadOf, runQueueSeconds, startSampler, type SeriesPoint } from './bench-series.js'
import { parseEnvAssignment } from './fleet/units.js'
import { generateImages } from './gen-images.js'
import { onInterrupt, removeLink, startShapedLink, type ShapedLink } from './bench-link.js'
import { startHttpCapture, type CapturePlace, type SeenRequest } from './http-capture.js'
import { prepareWarmupImage, WARMUP_REPOSITORY, warmEdge, warmupImagesDir } from './bench-warmup.js'
import { floorKey, startFloorEdge, startFloorHolder, type FloorPart, type FloorProcess } from './bench-floor.js'

const execFileAsync = promisify(execFile)
const MIB = 1024 * 1024

interface Options { layerMb: number, runs: number, dir?: string, keep: boolean, only?: Scenario[], profile?: string, logs?: string, series?: string, swarmKey: boolean, bEnv?: Record<string, string>, bSource: boolean, nodeFlags: string[], observer: 'capture' | 'relay', client: 'ctr' | 'cri', linkMbit?: number[], linkMtu?: number, edgeWarmupMb: number }

function parseOptions (argv: string[]): Options {
  const options: Options = { layerMb: 512, runs: 3, keep: false, swarmKey: true, bSource: false, nodeFlags: [], observer: 'capture', client: 'cri', edgeWarmupMb: 64 }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const next = (): string => argv[++i] ?? ''
    if (arg === '--layer-mb') options.layerMb = Number(next())
    else if (arg === '--runs') options.runs = Number(next())
    else if (arg === '--dir') options.dir = next()
    else if (arg === '--keep') options.keep = true
    else if (arg === '--no-swarm-key') options.swarmKey = false
    else if (arg === '--profile') options.profile = next()
    else if (arg === '--logs') options.logs = next()
    else if (arg === '--series') options.series = next()
    else if (arg === '--only') options.only = next().split(',').map(parseScenario)
    else if (arg === '--b-source') options.bSource = true
    else if (arg === '--edge-warmup') options.edgeWarmupMb = Number(next())
    else if (arg === '--client') {
      const client = next()
      if (client !== 'ctr' && client !== 'cri') throw new Error(`--client takes ctr or cri, not ${client}`)
      options.client = client
    }
    else if (arg === '--observer') {
      const observer = next()
      if (observer !== 'capture' && observer !== 'relay') throw new Error(`--observer takes capture or relay, not ${observer}`)
      options.observer = observer
    }
    else if (arg === '--link-mbit') options.linkMbit = next().split(',').map(Number)
    else if (arg === '--link-mtu') options.linkMtu = Number(next())
    else if (arg === '--node-flags') options.nodeFlags = next().split(' ').filter(f => f !== '')
    else if (arg === '--b-env') {
      const [name, value] = parseEnvAssignment(next())
      options.bEnv = { ...options.bEnv, [name]: value }
    }
    else throw new Error(`unknown option ${String(arg)}`)
  }
  if (!(options.layerMb > 0) || !Number.isInteger(options.runs) || options.runs < 1) throw new Error('--layer-mb must be > 0 and --runs a positive integer')
  if (options.linkMtu !== undefined && options.linkMbit === undefined) throw new Error('--link-mtu goes with --link-mbit')
  if (options.linkMbit !== undefined) {
    if (options.linkMbit.some(rate => !(rate >= 0)) || new Set(options.linkMbit).size !== options.linkMbit.length) throw new Error('--link-mbit takes rates in Mbit/s, each once, 0 for a veth with no shaping')
    // warm has containerd pull from the holder itself (behind the link); the floor's holder and edge
    // (bench-floor.ts) run on loopback only.
    const onLoopbackOnly = (s: Scenario): boolean => s === 'warm' || s.startsWith('floor')
    const refused = options.only?.filter(onLoopbackOnly) ?? []
    if (refused.length > 0) throw new Error(`--link-mbit runs direct, neighbour and registry; leave ${refused.join(', ')} out of --only`)
    options.only ??= SCENARIOS.filter(s => !onLoopbackOnly(s))
  }
  if (!(options.edgeWarmupMb > 0)) throw new Error('--edge-warmup takes the warm-up layer\'s size in MiB, > 0')
  if (options.bSource && options.bEnv === undefined) throw new Error('--b-source needs --b-env')
  if (!options.swarmKey && (options.only ?? SCENARIOS).includes('registry')) throw new Error('--no-swarm-key: the registry scenario needs the key (leave it out with --only)')
  return options
}

const SCENARIOS = ['direct', 'warm', 'neighbour', 'registry', 'floor'] as const
/**
 * neighbour-b: the neighbour case with --b-env on the edge, run right after each neighbour run;
 * registry-b: the registry case with --b-env on its gateway and edge, after each registry run.
 */
type Scenario = typeof SCENARIOS[number] | typeof FLOOR_VARIANTS[number] | typeof ONLY_NAMED[number] | 'neighbour-b' | 'registry-b'
/** Run only when --only names them: the floor variants, and neighbour-warm (bench-warmup.ts). */
const ONLY_NAMED = ['neighbour-warm'] as const
/** The floor less one part each (bench-floor.ts FloorPart): run only when --only names them. */
const FLOOR_VARIANTS = ['floor-plain', 'floor-nohash', 'floor-nostore', 'floor-bare'] as const
const FLOOR_WITHOUT: Record<typeof FLOOR_VARIANTS[number], FloorPart[]> = { 'floor-plain': ['tls'], 'floor-nohash': ['hash'], 'floor-nostore': ['store'], 'floor-bare': ['tls', 'hash', 'store'] }
const isFloorVariant = (s: Scenario): s is typeof FLOOR_VARIANTS[number] => (FLOOR_VARIANTS as readonly string[]).includes(s)

function parseScenario (name: string): Scenario {
  const found = [...SCENARIOS, ...FLOOR_VARIANTS, ...ONLY_NAMED].find(s => s === name)
  if (found === undefined) throw new Error(`--only takes scenarios among ${[...SCENARIOS, ...FLOOR_VARIANTS, ...ONLY_NAMED].join(', ')}, not ${name}`)
  return found
}
interface Sample {
  manifestMs: number
  layerAskedMs: number
  firstByteMs: number
  layerEndMs: number
  totalMs: number
  layerMBps: number
  shoalCpuS: number
  /** The node containerd talks to (the holder itself in `warm`). */
  edgeCpuS: number
  /** The neighbour or gateway the edge pulled from. */
  sourceCpuS: number
  /** The part of edgeCpuS and sourceCpuS spent on each daemon's main thread. */
  edgeMainCpuS: number
  sourceMainCpuS: number
  /** Seconds the edge's and the source's main threads were runnable but waiting for a CPU. */
  edgeRunQueueS: number
  sourceRunQueueS: number
  registryCpuS: number
  containerdCpuS: number
  /** The observer's: tcpdump, or this script (the HTTP relay). */
  observerCpuS: number
  /** With --link-mbit: MB that crossed the link from the source's side during the pull. */
  linkMB?: number
}

/** neighbour-warm against neighbour, run by run: the total, the edge's CPU and its main thread's. */
function warmupPairs (cold: Sample[], warmed: Sample[], group: string): string {
  const per = (f: (s: Sample) => number, digits: number): string => warmed.map((w, i) => `${f(w).toFixed(digits)}/${f(cold[i] ?? w).toFixed(digits)}`).join(' ')
  const ratios = warmed.map((w, i) => w.totalMs / (cold[i]?.totalMs ?? NaN))
  return `neighbour-warm${group} / neighbour, per run: ${ratios.map(r => `${r.toFixed(2)}×`).join(' ')} (median ${median(ratios).toFixed(2)}×)\n` +
    `  per run, warm/cold: total s ${per(s => s.totalMs / 1000, 2)}; layer s ${per(s => (s.layerEndMs - s.layerAskedMs) / 1000, 2)}; edge CPU s ${per(s => s.edgeCpuS, 2)}; edge main thread ${per(s => s.edgeMainCpuS, 2)}; source CPU ${per(s => s.sourceCpuS, 2)}; edge waiting for a CPU ${per(s => s.edgeRunQueueS, 2)}\n` +
    `  medians, warm vs cold: edge CPU ${median(warmed.map(s => s.edgeCpuS)).toFixed(2)} vs ${median(cold.map(s => s.edgeCpuS)).toFixed(2)} s, edge main thread ${median(warmed.map(s => s.edgeMainCpuS)).toFixed(2)} vs ${median(cold.map(s => s.edgeMainCpuS)).toFixed(2)} s, source ${median(warmed.map(s => s.sourceCpuS)).toFixed(2)} vs ${median(cold.map(s => s.sourceCpuS)).toFixed(2)} s\n`
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? NaN : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2
}

async function main (): Promise<void> {
  const options = parseOptions(process.argv.slice(2))
  const unavailable = containerdUnavailable()
  if (unavailable !== undefined) throw new Error(`cannot run: ${unavailable}`)
  const work = options.dir ?? await mkdtemp(join(tmpdir(), 'shoal-bench-ctd-'))
  await mkdir(work, { recursive: true })
  const daemons: DaemonProcess[] = []
  let registry: RegistryProcess | undefined
  let floorHolder: FloorProcess | undefined
  let seq = 0
  const swarmKey = join(work, 'swarm.key')
  // --profile: every daemon runs under `node --cpu-prof`, one .cpuprofile per process in DIR
  // (node refuses --cpu-prof in NODE_OPTIONS, so a shell wrapper adds it after node's path).
  // --node-flags go in by the same wrapper.
  let profiler: string[] | undefined
  if (options.logs !== undefined) await mkdir(options.logs, { recursive: true })
  if (options.series !== undefined) await mkdir(options.series, { recursive: true })
  const nodeFlags = [...options.nodeFlags]
  if (options.profile !== undefined) {
    await mkdir(options.profile, { recursive: true })
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${options.profile}`)
  }
  if (nodeFlags.length > 0) {
    const wrapper = join(work, 'node-flags.sh')
    await writeFile(wrapper, `#!/bin/sh\nnode="$1"; shift\nexec "$node" ${nodeFlags.map(f => `'${f.replaceAll("'", "'\\''")}'`).join(' ')} "$@"\n`, { mode: 0o755 })
    profiler = [wrapper]
  }
  if (!existsSync(swarmKey)) await shoalOk(undefined, ['keygen', 'swarm', swarmKey])
  // --link-mbit: the source's side of the shaped link, made before anything starts; a SIGINT or
  // SIGTERM removes it and stops what the run started (the pull's containerd and capture too), as
  // the `finally`s below would.
  let link: ShapedLink | undefined
  const runningPull = new Set<() => Promise<void>>()
  const removeInterruptHandler = options.linkMbit === undefined
    ? () => {}
    : onInterrupt(async () => {
      for (const stop of runningPull) await stop().catch(() => {})
      await Promise.all(daemons.map(async d => { await d.kill() })).catch(() => {})
      await registry?.stop().catch(() => {})
      await removeLink()
      if (!options.keep) await rm(work, { recursive: true, force: true })
    })
  /** A command as it runs on the source's side: in the link's namespace with --link-mbit. */
  const atSource = (command: string[]): string[] => link === undefined ? command : [...link.wrap, ...command]
  const startDaemon = async (name: string, args: string[], env: NodeJS.ProcessEnv = {}, atSourceSide = false): Promise<DaemonProcess> => {
    // A node pulls through for its peers only in a fleet closed with a swarm key.
    const wrap = atSourceSide && link !== undefined ? [...link.wrap, ...(profiler ?? [])] : profiler
    const listenHost = atSourceSide ? link?.nsIp : undefined
    const daemon = await startDaemonProcess(join(work, `${name}-${seq++}`), ['--no-mdns', '--log-level', options.logs === undefined ? 'info' : 'debug', ...(options.swarmKey ? ['--swarm-key', swarmKey] : []), ...args], env, { wrap, listenHost })
    daemons.push(daemon)
    return daemon
  }
  // A profiled daemon writes its profile only when it exits on its own (SIGTERM).
  const end = async (daemon: DaemonProcess): Promise<void> => {
    if (profiler === undefined) await daemon.kill()
    else await daemon.stop()
    // --logs: each daemon's debug log, to line its stages up with what containerd saw.
    if (options.logs !== undefined) await writeFile(join(options.logs, `${basename(daemon.dataDir)}.log`), daemon.logs())
  }
  const stopDaemon = async (daemon: DaemonProcess): Promise<void> => {
    await end(daemon)
    await rm(daemon.dataDir, { recursive: true, force: true })
  }
  try {
    // Inside the try: a link that cannot be made still leaves nothing (the work directory included).
    if (options.linkMbit !== undefined) link = await startShapedLink(options.linkMbit[0] ?? 0, { mtu: options.linkMtu })
    process.stderr.write(`generating an image with a ${options.layerMb} MiB layer…\n`)
    const images = await generateImages(join(work, 'images'), { baseBytes: Math.round(options.layerMb * MIB), seed: 8 })
    registry = await startDockerRegistry(join(work, 'registry'), '', link === undefined ? {} : { host: link.nsIp, wrap: link.wrap })
    await execFileAsync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${images.layouts.app1 ?? ''}:1.0`, `docker://${registry.host}/shoal/app1:1.0`], { timeout: 600_000 })
    const ref = `${registry.host}/shoal/app1:1.0`
    const layer = images.baseLayer
    // neighbour-warm: a second image the holder pulls through too, for the edge's warm-up.
    const warmup = options.only?.includes('neighbour-warm') === true ? await prepareWarmupImage(warmupImagesDir(work), registry.host, options.edgeWarmupMb, AbortSignal.timeout(900_000)) : undefined

    // The neighbour: a gateway that pulled the image through once, before any timed run.
    const startHolder = async (name: string, env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> => {
      const started = await startDaemon(name, ['--gateway', '--upstream', registry?.url ?? ''], env, true)
      // Its registry mirror listens on its own loopback: with --link-mbit, the namespace's.
      const [skopeo = 'skopeo', ...copy] = atSource(['skopeo', 'copy', '--src-tls-verify=false', `docker://${started.registry}/shoal/app1:1.0`, `dir:${join(work, name)}`])
      await execFileAsync(skopeo, copy, { timeout: 600_000 })
      if (warmup !== undefined) {
        const [skopeoW = 'skopeo', ...copyW] = atSource(['skopeo', 'copy', '--src-tls-verify=false', `docker://${started.registry}/${WARMUP_REPOSITORY}:1.0`, `dir:${join(work, `${name}-warmup`)}`])
        await execFileAsync(skopeoW, copyW, { timeout: 600_000 })
      }
      const bundles = warmup === undefined ? 1 : 2
      await waitFor(`the ${name}'s bundles`, async () => (await started.status()).bundles.filter(b => b.complete).length >= bundles ? true : undefined, 120_000)
      return started
    }
    const holder = await startHolder('holder')
    // The floor's holder (bench-floor.ts): the layer's file from docker-registry's storage, copied to its own directory.
    const floorPsk = floorKey()
    const layerFile = join(work, 'registry', 'storage', 'docker', 'registry', 'v2', 'blobs', 'sha256', layer.digest.slice(7, 9), layer.digest.slice(7), 'data')
    floorHolder = (options.only ?? SCENARIOS).some(s => s.startsWith('floor')) ? await startFloorHolder({ dir: join(work, 'floor-holder'), blobPath: layerFile, layer, psk: floorPsk }) : undefined
    // --b-source: neighbour-b's own holder, with the B variables.
    const holderB = options.bSource ? await startHolder('holder-b', options.bEnv) : holder

    const freshEdge = async (gateway: DaemonProcess, env: NodeJS.ProcessEnv = {}): Promise<DaemonProcess> => {
      const edge = await startDaemon('edge', ['--bootstrap', gateway.address, '--trust', gateway.peerId], env)
      await waitFor('the edge connected', async () => (await edge.status()).peers.find(p => p.id === gateway.peerId), 30_000)
      return edge
    }

    const pull = async (scenario: Scenario, run: number): Promise<Sample> => {
      const stopAfter: DaemonProcess[] = []
      // The shoal daemons that work for this pull, for the CPU column.
      let working: Array<DaemonProcess | FloorProcess> = []
      let floorEdge: FloorProcess | undefined
      let target: string
      if (scenario === 'direct') {
        target = registry?.host ?? ''
      } else if (scenario === 'warm') {
        target = holder.registry
        working = [holder]
      } else if (scenario === 'neighbour' || scenario === 'neighbour-b') {
        const source = scenario === 'neighbour-b' ? holderB : holder
        const edge = await freshEdge(source, scenario === 'neighbour-b' ? options.bEnv : {})
        stopAfter.push(edge)
        working = [edge, source]
        target = edge.registry
      } else if (scenario === 'neighbour-warm') {
        // The warm-up runs before the CPU counters are read and the clock starts: outside the pull's figures.
        const edge = await freshEdge(holder)
        stopAfter.push(edge)
        if (warmup === undefined) throw new Error('no warm-up image')
        await warmEdge(edge.registry, registry?.host ?? '', warmup, AbortSignal.timeout(600_000))
        working = [edge, holder]
        target = edge.registry
      } else if (scenario === 'floor' || isFloorVariant(scenario)) {
        if (floorHolder === undefined) throw new Error('no floor holder')
        const without = isFloorVariant(scenario) ? FLOOR_WITHOUT[scenario] : []
        floorEdge = await startFloorEdge({ dir: join(work, `floor-edge-${run}`), holderPort: Number(floorHolder.address), holderPlainPort: Number(floorHolder.plainPort), registry: registry?.host ?? '', layer, psk: floorPsk, without })
        working = [floorEdge, floorHolder]
        target = floorEdge.address
      } else {
        const env = scenario === 'registry-b' ? options.bEnv : {}
        const gateway = await startDaemon('gateway', ['--gateway', '--upstream', registry?.url ?? ''], env)
        const edge = await freshEdge(gateway, env)
        stopAfter.push(edge, gateway)
        working = [edge, gateway]
        target = edge.registry
      }
      // Over the link, containerd's packets to the registry cross the veth, not loopback.
      const place: CapturePlace = scenario === 'direct' && link !== undefined ? { iface: link.rootIf, host: link.nsIp } : {}
      const observer = await startObserver(options.observer, target, join(work, `capture-${scenario}-${run}.pcap`), place)
      // [edge, source, docker-registry, containerd, ctr (this script's waited children; tcpdump
      //  exits outside the window), the observer, edge and source run queue, edge and source main thread]
      const cpuOf = async (): Promise<number[]> => await Promise.all([
        cpuSeconds(working[0]?.child.pid), cpuSeconds(working[1]?.child.pid), cpuSeconds(registry?.child.pid),
        cpuSeconds(ctd.pid), cpuSeconds('self', true), cpuSeconds(observer.pid ?? 'self'),
        runQueueSeconds(working[0]?.child.pid), runQueueSeconds(working[1]?.child.pid),
        cpuSeconds(working[0]?.child.pid, false, true), cpuSeconds(working[1]?.child.pid, false, true),
      ])
      const ctd = new Containerd(join(work, `containerd-${scenario}-${run}`), { cri: options.client === 'cri' })
      const stopPull = async (): Promise<void> => { await ctd.destroy(); await observer.close() }
      runningPull.add(stopPull)
      let sampler: ReturnType<typeof startSampler> | undefined
      try {
        await ctd.start()
        // The observed host (the registry itself, or the edge) is the only one; `server` is a dead
        // port, so nothing reaches the registry around it.
        await ctd.hosts(registry?.host ?? '', observer.url.replace(/:\d+$/, ':9'), [observer.url])
        const cpuBefore = await cpuOf()
        const linkBefore = await link?.receivedBytes()
        sampler = options.series === undefined ? undefined : startSampler({ edge: working[0]?.child.pid, source: working[1]?.child.pid, registry: registry?.child.pid, containerd: ctd.pid })
        const started = performance.now()
        if (options.logs !== undefined) process.stderr.write(`${scenario} ${run}: ${options.client} pull starts at ${Date.now()} (epoch ms, as in the daemons' logs)\n`)
        const result = options.client === 'cri'
          ? await ctd.criPull(ref, 900_000).then(() => ({ code: 0, stderr: '' }), (err: Error) => ({ code: 1, stderr: err.message }))
          : await ctd.ctr(['images', 'pull', '--hosts-dir', ctd.hostsDir, ref], 900_000)
        const totalMs = performance.now() - started
        const linkAfter = await link?.receivedBytes()
        const points: SeriesPoint[] = await sampler?.stop() ?? []
        const [edgeCpuS = 0, sourceCpuS = 0, registryCpuS = 0, containerdCpuS = 0, ctrCpuS = 0, observerCpuS = 0, edgeRunQueueS = 0, sourceRunQueueS = 0, edgeMainCpuS = 0, sourceMainCpuS = 0] = (await cpuOf()).map((after, i) => after - (cpuBefore[i] ?? 0))
        if (result.code !== 0) throw new Error(`${scenario}: ${options.client} pull failed:\n${result.stderr}`)
        const requests = await observer.requests()
        if (options.logs !== undefined) {
          const at = (t: number | undefined): number | undefined => t === undefined ? undefined : Math.round(t - started)
          const seen = requests.map(r => ({ method: r.method, url: r.url, status: r.status, bytes: r.bytes, asked: at(r.startedAt), headers: at(r.headersAt), firstByte: at(r.firstByteAt), ended: at(r.endedAt) }))
          await writeFile(join(options.logs, `requests-${scenario}-${run}.json`), JSON.stringify(seen, null, 1))
        }
        const manifest = requests.find(r => r.url.includes('/manifests/') && r.status === 200)
        const blob = requests.find(r => r.method === 'GET' && r.url.includes(`/blobs/${layer.digest}`) && r.firstByteAt !== undefined)
        if (manifest?.headersAt === undefined || blob?.firstByteAt === undefined || blob.endedAt === undefined) throw new Error(`${scenario}: the ${options.observer} did not see the manifest and the layer ${layer.digest}`)
        if (options.series !== undefined && points.length > 0) {
          // The sampler started just before the pull: its clock is the pull's within a few ms.
          const layerMibAt = blob.mibAt.map(t => Math.round(t - started))
          await writeFile(join(options.series, `series-${scenario}-${run}.json`), JSON.stringify({ scenario, run, totalMs, layerAskedMs: blob.startedAt - started, layerMibAt, points }))
          const gaps = gapsOf(blob.mibAt)
          const first = points[0]
          const last = points[points.length - 1]
          const written = (last?.diskWrittenBytes ?? 0) - (first?.diskWrittenBytes ?? 0)
          const maxOf = (f: (p: SeriesPoint) => number): number => Math.max(...points.map(f))
          // The machine while containerd read the layer, and while it committed and unpacked it.
          const cores = availableParallelism()
          const during = machineLoadOf(points, blob.startedAt - started, blob.endedAt - started, cores)
          const after = machineLoadOf(points, blob.endedAt - started, totalMs, cores)
          process.stderr.write(`  series ${scenario} ${run}: layer waits > 50 ms between MiB: ${gaps.gaps}, ${gaps.gapS.toFixed(2)} s in all, longest ${gaps.longestMs.toFixed(0)} ms; disk written ${(written / 1e6).toFixed(0)} MB, busy writing ${(((last?.diskWriteMs ?? 0) - (first?.diskWriteMs ?? 0)) / 1000).toFixed(2)} s; dirty max ${(maxOf(p => p.dirtyKiB) / 1024).toFixed(0)} MiB, writeback max ${(maxOf(p => p.writebackKiB) / 1024).toFixed(0)} MiB; machine busy during the layer ${during.busyCores.toFixed(2)} of ${cores} cores (full ${(during.fullShare * 100).toFixed(0)}% of the time, stolen ${during.stealCores.toFixed(2)}; this bench's processes ${during.benchCores.toFixed(2)}), after it ${after.busyCores.toFixed(2)} (the bench's ${after.benchCores.toFixed(2)})\n`)
        }
        return {
          manifestMs: manifest.headersAt - started,
          layerAskedMs: blob.startedAt - started,
          firstByteMs: blob.firstByteAt - started,
          layerEndMs: blob.endedAt - started,
          totalMs,
          layerMBps: layer.size / 1e6 / ((blob.endedAt - blob.startedAt) / 1000),
          shoalCpuS: edgeCpuS + sourceCpuS,
          edgeCpuS,
          sourceCpuS,
          edgeMainCpuS,
          sourceMainCpuS,
          edgeRunQueueS,
          sourceRunQueueS,
          registryCpuS,
          containerdCpuS: containerdCpuS + ctrCpuS,
          observerCpuS,
          ...(linkAfter !== undefined && linkBefore !== undefined ? { linkMB: (linkAfter - linkBefore) / 1e6 } : {}),
        }
      } finally {
        await sampler?.stop()
        runningPull.delete(stopPull)
        await stopPull()
        for (const daemon of stopAfter) await stopDaemon(daemon)
        if (floorEdge !== undefined) {
          await floorEdge.kill()
          if (floorEdge.logs() !== '') process.stderr.write(`floor edge ${run}: ${floorEdge.logs()}`)
          await rm(join(work, `floor-edge-${run}`), { recursive: true, force: true })
        }
      }
    }

    const withB: Partial<Record<Scenario, Scenario>> = { neighbour: 'neighbour-b', registry: 'registry-b' }
    const scenarios: Scenario[] = (options.only ?? [...SCENARIOS]).flatMap((s): Scenario[] => {
      const b = withB[s]
      return b !== undefined && options.bEnv !== undefined ? [s, b] : [s]
    })
    // Without --link-mbit one group of pulls; with it, one group per rate, each compared with its own direct.
    const rates: Array<number | undefined> = options.linkMbit ?? [undefined]
    const groupOf = (rate: number | undefined): string => rate === undefined ? '' : rate === 0 ? ' @veth' : ` @${rate} Mbit/s`
    const samples = new Map<string, Sample[]>(rates.flatMap(rate => scenarios.map(s => [`${s}${groupOf(rate)}`, []])))
    for (let run = 1; run <= options.runs; run++) {
      // A and B take turns going first, so neither always runs on the page cache the other left.
      const swapped: Partial<Record<Scenario, Scenario>> = { neighbour: 'neighbour-b', 'neighbour-b': 'neighbour', registry: 'registry-b', 'registry-b': 'registry' }
      // neighbour and neighbour-warm take turns the same way when there is no B.
      if (options.bEnv === undefined) Object.assign(swapped, { neighbour: 'neighbour-warm', 'neighbour-warm': 'neighbour' })
      const pairs = options.bEnv !== undefined || (scenarios.includes('neighbour') && scenarios.includes('neighbour-warm'))
      const order = run % 2 === 0 && pairs ? scenarios.map(s => swapped[s] ?? s) : scenarios
      // Rates in turn, reversed every other run: no rate always follows the same one.
      for (const rate of run % 2 === 0 ? [...rates].reverse() : rates) {
        if (rate !== undefined) await link?.setRate(rate)
        for (const scenario of order) {
          const sample = await pull(scenario, run)
          samples.get(`${scenario}${groupOf(rate)}`)?.push(sample)
          process.stderr.write(`run ${run} ${scenario}${groupOf(rate)}: manifest ${sample.manifestMs.toFixed(0)} ms, layer asked ${sample.layerAskedMs.toFixed(0)} ms, 1st layer byte ${sample.firstByteMs.toFixed(0)} ms, layer done ${(sample.layerEndMs / 1000).toFixed(2)} s, total ${(sample.totalMs / 1000).toFixed(2)} s, layer ${sample.layerMBps.toFixed(0)} MB/s, shoal CPU ${sample.shoalCpuS.toFixed(2)} s (edge ${sample.edgeCpuS.toFixed(2)} + source ${sample.sourceCpuS.toFixed(2)}; main threads ${sample.edgeMainCpuS.toFixed(2)} + ${sample.sourceMainCpuS.toFixed(2)}), main threads waiting for a CPU: edge ${sample.edgeRunQueueS.toFixed(2)} s + source ${sample.sourceRunQueueS.toFixed(2)} s, docker-registry ${sample.registryCpuS.toFixed(2)} s, containerd + ctr ${sample.containerdCpuS.toFixed(2)} s, ${options.observer} ${sample.observerCpuS.toFixed(2)} s${sample.linkMB === undefined ? '' : `, ${sample.linkMB.toFixed(0)} MB over the link`}\n`)
        }
      }
    }
    process.stdout.write(`\ncontainerd (${options.client === 'cri' ? 'CRI PullImage' : 'ctr images pull'}) of a ${options.layerMb} MiB-layer image, medians of ${options.runs}:\n`)
    if (link !== undefined) process.stdout.write(`the source (docker-registry, the holder) behind a veth (MTU ${link.mtu}) shaped each way at the row's rate (@veth: not shaped); containerd and the edge on loopback\n`)
    process.stdout.write(`load average at the end: ${loadavg().map(l => l.toFixed(1)).join(' ')}\n`)
    process.stdout.write('| scenario | time to manifest | first layer byte | total | vs direct | layer as seen by containerd | shoal CPU (edge + source) | docker-registry CPU | containerd + ctr CPU | observer CPU |\n|---|---|---|---|---|---|---|---|---|---|\n')
    for (const rate of rates) {
      const direct = median((samples.get(`direct${groupOf(rate)}`) ?? []).map(s => s.totalMs))
      for (const scenario of scenarios) {
        const list = samples.get(`${scenario}${groupOf(rate)}`) ?? []
        const total = median(list.map(s => s.totalMs))
        process.stdout.write(`| ${scenario}${groupOf(rate)} | ${median(list.map(s => s.manifestMs)).toFixed(0)} ms | ${median(list.map(s => s.firstByteMs)).toFixed(0)} ms | ${(total / 1000).toFixed(2)} s | ${(total / direct).toFixed(2)}× | ${median(list.map(s => s.layerMBps)).toFixed(0)} MB/s | ${median(list.map(s => s.shoalCpuS)).toFixed(2)} s (${median(list.map(s => s.edgeCpuS)).toFixed(2)} + ${median(list.map(s => s.sourceCpuS)).toFixed(2)}) | ${median(list.map(s => s.registryCpuS)).toFixed(2)} s | ${median(list.map(s => s.containerdCpuS)).toFixed(2)} s | ${median(list.map(s => s.observerCpuS)).toFixed(2)} s |\n`)
      }
    }
    // Each run's pulls ran back to back: a ratio per run pair is less exposed to the machine's load drifting than the ratio of medians.
    for (const rate of rates) {
      const directs = (samples.get(`direct${groupOf(rate)}`) ?? []).map(s => s.totalMs)
      for (const scenario of scenarios.filter(s => s !== 'direct' && directs.length > 0)) {
        const ratios = (samples.get(`${scenario}${groupOf(rate)}`) ?? []).map((s, i) => s.totalMs / (directs[i] ?? NaN))
        process.stdout.write(`${scenario}${groupOf(rate)} / direct, per run: ${ratios.map(r => `${r.toFixed(2)}×`).join(' ')} (median ${median(ratios).toFixed(2)}×)\n`)
      }
    }
    for (const rate of rates) {
      const cold = samples.get(`neighbour${groupOf(rate)}`) ?? []
      const warmed = samples.get(`neighbour-warm${groupOf(rate)}`) ?? []
      if (cold.length > 0 && warmed.length > 0) process.stdout.write(warmupPairs(cold, warmed, groupOf(rate)))
    }
    process.stdout.write(`${JSON.stringify({ layerMb: options.layerMb, runs: options.runs, samples: Object.fromEntries(samples) })}\n`)
  } finally {
    await Promise.all(daemons.map(end))
    await floorHolder?.kill()
    await registry?.stop()
    if (link !== undefined) {
      const problems = await link.close()
      if (problems.length > 0) process.stderr.write(`removing the shaped link: ${problems.join('; ')}\n`)
    }
    removeInterruptHandler()
    if (!options.keep) await rm(work, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
})

/** What watches containerd's requests to `target` (`host:port`): the URL containerd is given, and what it saw. */
interface Observer {
  url: string
  /** The process whose CPU is the observer's (undefined: this script's). */
  pid: number | undefined
  /** Every request seen, once the pull is over. */
  requests: () => Promise<SeenRequest[]>
  close: () => Promise<void>
}

async function startObserver (kind: 'capture' | 'relay', target: string, captureFile: string, place: CapturePlace): Promise<Observer> {
  if (kind === 'relay') {
    const relay = await startHttpRelay(target)
    return { url: relay.url, pid: undefined, requests: async () => relay.requests, close: relay.close }
  }
  const capture = await startHttpCapture(Number(target.slice(target.lastIndexOf(':') + 1)), captureFile, place)
  let seen: Promise<SeenRequest[]> | undefined
  const requests = async (): Promise<SeenRequest[]> => await (seen ??= capture.stop())
  return { url: `http://${target}`, pid: capture.pid, requests, close: async () => { await requests().catch(() => []) } }
}
