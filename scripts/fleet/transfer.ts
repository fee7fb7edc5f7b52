// What both modes share: their context, and the transfer phase itself (counters
// before, every pull started at one moment, the fault, counters after).
import { setMaxListeners } from 'node:events'
import type { Bed, Host, LinkCounters } from './bed.js'
import type { SourceBundle } from './bundle.js'
import { atHalfProgress, partition, type EdgeRunner, type FaultContext, type InjectedFault } from './edges.js'
import type { FleetOptions } from './options.js'
import type { Services } from './proc.js'
import type { FaultResult, ProcessResult, Role } from './results.js'
import { monotonicUs, NO_USAGE, type MachineCpu, type Sampler } from './sampler.js'

export interface ModeContext {
  runId: string
  options: FleetOptions
  bed: Bed
  services: Services
  sampler: Sampler
  source: SourceBundle
  workDir: string
  logDir: string
  signal: AbortSignal
  log: (line: string) => void
}

/** Per-node findings a mode adds to what the bed measures. */
export interface NodeOutcome {
  role: Role
  name: string
  verified: boolean
  problems: string[]
  cpuSeconds: number | null
  peakRssBytes: number | null
  /** CPU seconds from the process's spawn until it was ready (shoal: answered status). */
  startupCpuSeconds?: number | null
  /** With --idle-seconds: CPU while idle before the pulls, percent of one core. */
  idleCpuPercent?: number
  /** CLOCK_MONOTONIC µs of its spawn and readiness (the clock of `node --cpu-prof` samples). */
  timeline?: { spawnedUs: number, readyUs: number }
  daemonStats?: Record<string, unknown>
}

export interface ModeOutcome {
  transfer: TransferOutcome
  nodes: Map<Host, NodeOutcome>
  processes: ProcessResult[]
  faults: Array<Omit<FaultResult, 'costSeconds' | 'extraDownloadBytes'>>
  bundleId?: string
  problems: string[]
}

export interface TransferOutcome {
  runners: EdgeRunner[]
  /** Seconds from the start to the last completion (or to the deadline). */
  seconds: number
  timedOut: boolean
  before: Map<Host, LinkCounters>
  after: Map<Host, LinkCounters>
  machineCpu: MachineCpu
  /** CPU seconds of each watched process at the start, to report what the transfer cost. */
  cpuAtStart: Map<string, number>
  /** CPU seconds of each watched process when the last pull completed. */
  cpuAtEnd: Map<string, number>
  /** Each watched process's kernel CPU and system calls over the transfer. */
  during: Map<string, TransferUsage>
  /** CPU seconds of an edge's watched process when its own pull completed. */
  cpuAtCompletion: Map<string, number>
  /** CLOCK_MONOTONIC µs: the pulls' common start, each edge's completion, the transfer's end. */
  startedUs: number
  completedUs: Map<string, number>
  endedUs: number
  fault: (InjectedFault & { node: string }) | undefined
}

export interface TransferUsage { systemSeconds: number, readCalls: number, writeCalls: number, wakeups: number }

export interface TransferInit {
  context: ModeContext
  runners: EdgeRunner[]
  /** Names the sampler watches; their CPU at the start is recorded. */
  watched: string[]
  /** The fault to inject on one runner, with what "kill" means in this mode. */
  fault?: { victim: EdgeRunner, kind: 'kill' | 'partition', crash: () => Promise<string> }
}

/** Runs every edge's pull from one moment until all are complete or the timeout passes. */
export async function runTransfer ({ context, runners, watched, fault }: TransferInit): Promise<TransferOutcome> {
  const { bed, sampler, options, signal } = context
  const before = new Map<Host, LinkCounters>()
  for (const host of bed.hosts) before.set(host, await bed.counters(host, signal))
  await sampler.refresh()
  const cpuAtStart = new Map(watched.map(name => [name, sampler.usage(name)?.cpuSeconds ?? 0]))
  const atStart = new Map(watched.map(name => [name, sampler.usage(name)]))
  sampler.start()

  const deadline = AbortSignal.any([signal, AbortSignal.timeout(options.timeoutSeconds * 1000)])
  // Every runner and its processes listen on it: 16 hosts are not a leak.
  setMaxListeners(0, deadline)
  const cpuAtCompletion = new Map<string, number>()
  const completedUs = new Map<string, number>()
  const t0 = performance.now()
  const startedUs = monotonicUs()
  context.log(`starting ${runners.length} pulls`)
  const pulls = runners.map(async runner => {
    await runner.run(t0, deadline)
    if (runner.done) {
      completedUs.set(runner.name, monotonicUs())
      await sampler.refresh(runner.name)
      const usage = sampler.usage(runner.name)
      if (usage !== undefined) cpuAtCompletion.set(runner.name, usage.cpuSeconds)
    }
    context.log(runner.done ? `${runner.name} complete at ${runner.completionSeconds?.toFixed(2)} s` : `${runner.name} did not complete`)
  })
  let injected: TransferOutcome['fault']
  const faultTask = (async () => {
    if (fault === undefined) return
    const faultContext: FaultContext = {
      bed, victim: fault.victim, baseline: before.get(fault.victim.host) ?? { rxBytes: 0, txBytes: 0 }, bundleBytes: context.source.bytes, t0, signal: deadline, log: context.log,
    }
    const result = fault.kind === 'partition' ? await partition(faultContext) : await atHalfProgress(faultContext, fault.crash)
    injected = { ...result, node: fault.victim.name }
  })()
  await Promise.all(pulls)
  await faultTask.catch((err: unknown) => { injected = { atSeconds: null, detail: `fault injection failed: ${(err as Error).message}`, node: fault?.victim.name ?? '?' } })
  const seconds = (performance.now() - t0) / 1000
  const endedUs = monotonicUs()
  signal.throwIfAborted()

  await sampler.refresh()
  const cpuAtEnd = new Map(watched.map(name => [name, sampler.usage(name)?.cpuSeconds ?? 0]))
  const during = new Map<string, TransferUsage>()
  for (const name of watched) {
    // A process first watched after the start (a BitTorrent client starts with its pull) began at zero.
    const start = atStart.get(name) ?? NO_USAGE
    const end = sampler.usage(name)
    if (end === undefined) continue
    during.set(name, {
      systemSeconds: end.systemSeconds - start.systemSeconds,
      readCalls: end.readCalls - start.readCalls,
      writeCalls: end.writeCalls - start.writeCalls,
      wakeups: end.mainThreadWakeups - start.mainThreadWakeups,
    })
  }
  const machineCpu = await sampler.stop()
  const after = new Map<Host, LinkCounters>()
  for (const host of bed.hosts) after.set(host, await bed.counters(host, signal))
  return { runners, seconds, timedOut: runners.some(r => !r.done), before, after, machineCpu, cpuAtStart, cpuAtEnd, during, cpuAtCompletion, startedUs, completedUs, endedUs, fault: injected }
}
