// shoal on the bed: one daemon per host, the gateway seeds, every edge pulls at once.
//
// Built against the CLI contract:
//   shoal daemon --data DIR --registry IP:5050 --listen /ip4/IP/tcp/4001 [--bootstrap ADDR] [--gateway] [--no-mdns]
//   shoal --api DIR/api.sock status --json   → { peerId, addresses, bundles, stats: { bytesUploaded, bytesDownloaded } }
//   shoal --api DIR/api.sock push LAYOUT     → prints the bundle ID
//   shoal --api DIR/api.sock pull ID         → returns when complete
//   shoal --api DIR/api.sock verify ID       → exit 0 when every object re-hashes right
//   shoal --data DIR export ID DEST     → (daemon stopped) the layout back, compared byte for byte with the source
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tcpReachable, type Host } from './bed.js'
import { compareWithSource } from './bundle.js'
import { EdgeRunner } from './edges.js'
import { inNetns, run, sleep, waitFor, type RunResult, type Service } from './proc.js'
import { abTest, edgeGroup, withFlags } from './options.js'
import type { ProcessResult, Role } from './results.js'
import { monotonicUs, readProcessUsage } from './sampler.js'
import { runTransfer, type ModeContext, type ModeOutcome, type NodeOutcome } from './transfer.js'

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SHOAL_BIN = join(REPO_ROOT, 'bin', 'shoal.js')
/** The node flags on bin/shoal.js's `#!/usr/bin/env -S node FLAGS` line: daemons run as they ship. */
const SHOAL_NODE_FLAGS = existsSync(SHOAL_BIN) ? (readFileSync(SHOAL_BIN, 'utf8').split('\n', 1)[0] ?? '').split(' ').filter(word => word.startsWith('--')) : []
/** …and the environment it sets (`NAME=VALUE` words before `node`). */
const SHOAL_ENV = Object.fromEntries((existsSync(SHOAL_BIN) ? (readFileSync(SHOAL_BIN, 'utf8').split('\n', 1)[0] ?? '').split(' ') : [])
  .map(word => /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(word)).filter(m => m !== null).map(m => [m[1]!, m[2]!]))
export const API_PORT = 5050
export const P2P_PORT = 4001
const READY_TIMEOUT_MS = 60_000
const START_CONCURRENCY = 4

/**
 * The byzantine node's switch: a daemon started with it serves chunks with flipped bytes.
 * TODO(swarm): the swarm team provides this test hook; until `src/` reads this variable,
 * the "byzantine" node serves honest chunks and the run says so in its problems.
 */
export const CORRUPT_CHUNKS_ENV = 'SHOAL_TEST_CORRUPT_CHUNKS'

export interface DaemonAvailability { available: boolean, reason: string }

/** Whether this checkout's CLI has `shoal daemon` (asked of the CLI, not assumed). */
export async function shoalDaemonAvailability (): Promise<DaemonAvailability> {
  if (!existsSync(SHOAL_BIN)) return { available: false, reason: `${SHOAL_BIN} does not exist` }
  // An unknown option makes a known command fail in its own argument parser, an unknown one in the dispatcher.
  const probe = await run([process.execPath, SHOAL_BIN, 'daemon', '--fleet-availability-probe'], { allowFailure: true, timeoutMs: 30_000 })
  const said = `${probe.stdout}\n${probe.stderr}`
  if (/unknown command/i.test(said)) return { available: false, reason: '`shoal daemon` is not a command of this checkout yet' }
  if (probe.code === 0) return { available: false, reason: '`shoal daemon` accepted a bogus option and exited 0; cannot tell whether it runs' }
  return { available: true, reason: 'shoal daemon is there' }
}

/** Whether the swarm reads the corrupt-chunks test hook (searched in its sources). */
async function corruptHookPresent (): Promise<boolean> {
  const { stdout } = await run(['grep', '-rl', CORRUPT_CHUNKS_ENV, join(REPO_ROOT, 'src')], { allowFailure: true })
  return stdout.trim() !== ''
}

interface StatusJson {
  peerId: string
  addresses?: string[]
  bundles?: Array<{ id?: string, complete?: boolean }>
  stats?: Record<string, unknown>
}

interface Daemon {
  host: Host
  name: string
  role: Role
  dataDir: string
  service: Service
  peerId: string
  bootstrap: string | undefined
  env: NodeJS.ProcessEnv
  /** CLOCK_MONOTONIC µs when it was spawned and when it first answered status. */
  spawnedUs: number
  readyUs: number
  /** CPU seconds it spent from its spawn until it answered status: its start-up. */
  startupCpuSeconds: number | null
}

export async function runShoalMode (context: ModeContext): Promise<ModeOutcome> {
  const { bed, sampler, source, options, signal } = context
  const problems: string[] = []
  const byzantine = options.faults === 'byzantine'
  const hosts = bed.hosts
  const gatewayHost = hosts[0]
  if (gatewayHost === undefined) throw new Error('no gateway host')
  const honestEdges = hosts.slice(1, options.nodes)
  const byzantineHost = byzantine ? hosts[options.nodes] : undefined

  const daemons = new Map<Host, Daemon>()
  const gateway = await startDaemon(context, gatewayHost, 'n0', 'gateway', undefined, {}).catch(async (err: unknown) => {
    // Asked only now: the probe is one more Node start, and the daemon is usually there.
    const availability = await shoalDaemonAvailability()
    throw availability.available ? err : new Error(`shoal mode needs the daemon: ${availability.reason}`, { cause: err })
  })
  daemons.set(gatewayHost, gateway)
  const bootstrap = `/ip4/${gatewayHost.ip}/tcp/${P2P_PORT}/p2p/${gateway.peerId}`
  // A few at a time: a daemon start is about a second of CPU, and two cores are all there is.
  const starts: Array<() => Promise<void>> = honestEdges.map((host, i) => async () => {
    daemons.set(host, await startDaemon(context, host, `n${i + 1}`, 'edge', bootstrap, {}))
  })
  if (byzantineHost !== undefined) {
    if (!await corruptHookPresent()) problems.push(`byzantine: the swarm does not read ${CORRUPT_CHUNKS_ENV} yet, so the extra node serves honest chunks (TODO swarm test hook)`)
    starts.push(async () => { daemons.set(byzantineHost, await startDaemon(context, byzantineHost, `n${options.nodes}`, 'byzantine', bootstrap, { [CORRUPT_CHUNKS_ENV]: '1' })) })
  }
  await inBatches(starts, START_CONCURRENCY)
  // Insertion order is start order; reports list nodes by host.
  const ordered = new Map([...daemons].sort(([a], [b]) => a.index - b.index))
  daemons.clear()
  for (const [host, daemon] of ordered) daemons.set(host, daemon)

  context.log(`pushing ${source.layout} to the gateway`)
  const bundleId = parseBundleId((await cli(gatewayHost, ['push', source.layout], signal)).stdout)
  context.log(`bundle ${bundleId}`)
  if (byzantineHost !== undefined) {
    // The liar holds the same bundle from the start, so it advertises every chunk.
    const lieId = parseBundleId((await cli(byzantineHost, ['push', source.layout], signal)).stdout)
    if (lieId !== bundleId) throw new Error(`the byzantine node's push gave ${lieId}, not ${bundleId}`)
  }

  const runners = honestEdges.map(host => {
    const daemon = daemons.get(host)
    if (daemon === undefined) throw new Error(`no daemon on ${host.ns}`)
    return new EdgeRunner(host, daemon.name, {
      attempt: async attemptSignal => { await cli(host, ['pull', bundleId], attemptSignal) },
    })
  })

  const victim = runners.at(-1)
  const victimDaemon = victim === undefined ? undefined : daemons.get(victim.host)
  const fault = options.faults === 'kill' && victim !== undefined && victimDaemon !== undefined
    ? {
        victim,
        kind: 'kill' as const,
        crash: async () => {
          const restarted = (async () => {
            await sampler.refresh(victimDaemon.name)
            victimDaemon.service.signal('SIGKILL')
            await victimDaemon.service.done
            const again = await startDaemon(context, victimDaemon.host, victimDaemon.name, victimDaemon.role, victimDaemon.bootstrap, victimDaemon.env)
            daemons.set(victimDaemon.host, again)
          })()
          // The pull in flight dies with its daemon; the next one waits for the restart.
          victim.hold(restarted)
          victim.interrupt('daemon SIGKILLed (fault)')
          await restarted
          return 'daemon SIGKILLed at half its download and restarted on the same data dir'
        },
      }
    : options.faults === 'partition' && victim !== undefined ? { victim, kind: 'partition' as const, crash: async () => '' } : undefined

  const watched = [...daemons.values()].map(d => d.name)
  const idleCpuPercent = await measureIdle(context, watched)
  const transfer = await runTransfer({ context, runners, watched, fault })

  // Online checks while every daemon still runs: re-hash through the daemon, and its own counters.
  const nodes = new Map<Host, NodeOutcome>()
  await Promise.all([...daemons.values()].map(async daemon => {
    const nodeProblems: string[] = []
    const runner = runners.find(r => r.host === daemon.host)
    if (runner !== undefined && !runner.done) nodeProblems.push(`never completed: ${runner.attemptErrors.join('; ') || 'no attempt finished'}`)
    let daemonStats: Record<string, unknown> | undefined
    if (daemon.role !== 'byzantine') {
      const verify = await cli(daemon.host, ['verify', bundleId], signal, true)
      if (verify.code !== 0) nodeProblems.push(`shoal verify exited ${verify.code}: ${(verify.stdout + verify.stderr).trim().slice(-1000)}`)
    }
    const status = await cli(daemon.host, ['status', '--json'], signal, true)
    if (status.code === 0) {
      try { daemonStats = (JSON.parse(status.stdout) as StatusJson).stats } catch { /* reported as missing below */ }
    }
    if (daemonStats === undefined) nodeProblems.push('status --json gave no stats')
    await sampler.refresh(daemon.name)
    const usage = sampler.usage(daemon.name)
    nodes.set(daemon.host, {
      role: daemon.role,
      name: daemon.name,
      verified: false,
      problems: nodeProblems,
      // The transfer phase only: the verify and status calls above cost the daemon a re-hash.
      cpuSeconds: usage === undefined ? null : (transfer.cpuAtEnd.get(daemon.name) ?? usage.cpuSeconds) - (transfer.cpuAtStart.get(daemon.name) ?? 0),
      peakRssBytes: usage?.peakRssBytes ?? null,
      startupCpuSeconds: daemon.startupCpuSeconds,
      ...(idleCpuPercent.has(daemon.name) ? { idleCpuPercent: idleCpuPercent.get(daemon.name) } : {}),
      timeline: { spawnedUs: daemon.spawnedUs, readyUs: daemon.readyUs },
      daemonStats,
    })
  }))

  const processes: ProcessResult[] = [...daemons.values()].map(d => ({ name: `shoal daemon (${d.role})`, node: d.name, cpuSeconds: nodes.get(d.host)?.cpuSeconds ?? null, peakRssBytes: nodes.get(d.host)?.peakRssBytes ?? null }))

  // Offline: stop every daemon, then export each honest node's copy and compare it with the source, byte for byte.
  await Promise.all([...daemons.values()].map(async d => { await d.service.stop(10_000) }))
  await inBatches([...daemons.values()].map(daemon => async () => {
    const outcome = nodes.get(daemon.host)
    if (outcome === undefined || daemon.role === 'byzantine') return
    const exported = join(daemon.dataDir, '..', 'export')
    await rm(exported, { recursive: true, force: true })
    const result = await run([process.execPath, SHOAL_BIN, '--data', daemon.dataDir, 'export', bundleId, exported], { signal, allowFailure: true })
    if (result.code !== 0) {
      outcome.problems.push(`shoal export exited ${result.code}: ${result.stderr.trim().slice(-1000)}`)
    } else {
      outcome.problems.push(...await compareWithSource(source, exported))
      await rm(exported, { recursive: true, force: true })
    }
    outcome.verified = outcome.problems.length === 0
  }), START_CONCURRENCY)

  const faults: ModeOutcome['faults'] = []
  if (transfer.fault !== undefined && (options.faults === 'kill' || options.faults === 'partition')) faults.push({ kind: options.faults, ...transfer.fault })
  if (byzantineHost !== undefined) {
    faults.push({ kind: 'byzantine', node: daemons.get(byzantineHost)?.name ?? '?', atSeconds: 0, detail: `an extra node holding the bundle serves corrupt chunks (${CORRUPT_CHUNKS_ENV}=1) from the start` })
  }
  return { transfer, nodes, processes, faults, bundleId, problems }
}

async function startDaemon (context: ModeContext, host: Host, name: string, role: Role, bootstrap: string | undefined, env: NodeJS.ProcessEnv): Promise<Daemon> {
  const { services, sampler, workDir, logDir, options, signal } = context
  const dataDir = join(workDir, 'nodes', name, 'data')
  await mkdir(dataDir, { recursive: true })
  apiSockets.set(host.ns, join(dataDir, 'api.sock'))
  const group = role === 'edge' && abTest(options) ? edgeGroup(Number(name.slice(1))) : undefined
  const nodeFlags = group === 'B' ? withFlags(SHOAL_NODE_FLAGS, options.bNodeFlags) : [...SHOAL_NODE_FLAGS]
  if (options.cpuProfDir !== undefined) {
    // Written when the daemon exits after SIGTERM; a restarted daemon adds a second file.
    const profileDir = resolve(options.cpuProfDir, name)
    await mkdir(profileDir, { recursive: true })
    nodeFlags.push('--cpu-prof', '--cpu-prof-dir', profileDir)
  }
  const command = [process.execPath, ...nodeFlags, SHOAL_BIN, 'daemon', '--data', dataDir, '--registry', `${host.ip}:${API_PORT}`, '--listen', `/ip4/${host.ip}/tcp/${P2P_PORT}`]
  if (role === 'gateway') command.push('--gateway')
  if (bootstrap !== undefined) command.push('--bootstrap', bootstrap)
  if (!options.mdns) command.push('--no-mdns')
  context.log(`starting the ${role} daemon ${name} on ${host.ip}${group === undefined ? '' : ` (group ${group})`}`)
  const spawnedUs = monotonicUs()
  const service = await services.start(`daemon ${name}`, inNetns(host.ns, command), {
    logFile: join(logDir, `${name}.daemon.log`), env: { ...process.env, ...env, ...SHOAL_ENV, ...(group === 'B' ? options.bEnv : {}) },
  })
  sampler.watch(name, service.pid)
  const status = await waitFor(`${name}'s daemon to answer status`, async () => {
    if (!service.running) throw new Error(`the daemon exited: ${await logTail(join(logDir, `${name}.daemon.log`))}`)
    // A bare TCP probe first: each CLI call is a Node start, a costly way to learn "not yet".
    if (!await tcpReachable(host.ns, host.ip, API_PORT, signal)) return undefined
    const result = await cli(host, ['status', '--json'], signal, true)
    if (result.code !== 0) return undefined
    const parsed = JSON.parse(result.stdout) as StatusJson
    return typeof parsed.peerId === 'string' && parsed.peerId !== '' ? parsed : undefined
  }, { timeoutMs: READY_TIMEOUT_MS, intervalMs: 300, signal })
  const readyUs = monotonicUs()
  const startup = await readProcessUsage(service.pid)
  return { host, name, role, dataDir, service, peerId: status.peerId, bootstrap, env, spawnedUs, readyUs, startupCpuSeconds: startup?.cpuSeconds ?? null }
}

/**
 * With --idle-seconds: every daemon up, connected and holding (or wanting) nothing new for
 * that long; what each spends meanwhile is its fixed cost (timers, gossip, discovery), as
 * a percentage of one core.
 */
async function measureIdle (context: ModeContext, watched: string[]): Promise<Map<string, number>> {
  const { options, sampler, signal } = context
  const percent = new Map<string, number>()
  if (options.idleSeconds <= 0) return percent
  context.log(`idling ${options.idleSeconds} s`)
  await sampler.refresh()
  const before = new Map(watched.map(name => [name, sampler.usage(name)?.cpuSeconds ?? 0]))
  const began = performance.now()
  await sleep(options.idleSeconds * 1000, signal)
  await sampler.refresh()
  const seconds = (performance.now() - began) / 1000
  for (const name of watched) {
    const after = sampler.usage(name)?.cpuSeconds
    if (after !== undefined) percent.set(name, 100 * (after - (before.get(name) ?? 0)) / seconds)
  }
  return percent
}

/** Each host's daemon's control socket (in its data dir), by network namespace. */
const apiSockets = new Map<string, string>()

/** `shoal --api DATA/api.sock ARGS…` from inside the host's namespace (the control API is a Unix socket). */
async function cli (host: Host, args: string[], signal: AbortSignal, allowFailure = false): Promise<RunResult> {
  const socket = apiSockets.get(host.ns)
  if (socket === undefined) throw new Error(`no daemon was started on ${host.ns}`)
  return await run(inNetns(host.ns, [process.execPath, SHOAL_BIN, '--api', socket, ...args]), { signal, allowFailure })
}

function parseBundleId (stdout: string): string {
  const match = /\b([0-9a-f]{64})\b/.exec(stdout)
  if (match?.[1] === undefined) throw new Error(`push printed no bundle ID: ${stdout.trim().slice(0, 500)}`)
  return match[1]
}

async function logTail (path: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim().split('\n').slice(-5).join(' | ').slice(-1500)
  } catch {
    return '(no log)'
  }
}

/** Runs the tasks, at most `limit` at a time; rejects with the first failure once all settled. */
async function inBatches (tasks: Array<() => Promise<void>>, limit: number): Promise<void> {
  let next = 0
  const errors: unknown[] = []
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next++]
      await task?.().catch((err: unknown) => { errors.push(err) })
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker))
  if (errors.length > 0) throw errors[0]
}
