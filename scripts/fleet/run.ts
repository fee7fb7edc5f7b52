// One fleet run from start to teardown: checks, bundle, bed, mode, results, plot.
import { setMaxListeners } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { Bed } from './bed.js'
import { runBittorrentMode } from './bittorrent-mode.js'
import { generateSource, sourceFromPath, type SourceBundle } from './bundle.js'
import { defaultCacheDir } from './delay.js'
import { abTest, edgeGroup, type FleetOptions } from './options.js'
import { renderPlot } from './plot.js'
import { run, Services } from './proc.js'
import { runRegistryMode } from './registry-mode.js'
import { median, summaryTable, type FaultResult, type FleetResults, type NodeResult } from './results.js'
import { newRunId, removeRunState, runsRoot, writeRunState } from './runs.js'
import { round, Sampler } from './sampler.js'
import { runShoalMode } from './shoal-mode.js'
import type { ModeContext, ModeOutcome } from './transfer.js'

export interface RunFleetInit {
  signal?: AbortSignal
  /** Progress lines; stderr by default. */
  log?: (line: string) => void
  /** Run id to use (tests pick one to look for leftovers); a fresh one otherwise. */
  runId?: string
}

export interface FleetRun {
  results: FleetResults
  outDir: string
  workDir: string
  /** Problems met while tearing down (none after a clean run). */
  teardownProblems: string[]
}

/** Runs the fleet and always tears the bed down; throws if the run could not produce results. */
export async function runFleet (options: FleetOptions, init: RunFleetInit = {}): Promise<FleetRun> {
  const signal = init.signal ?? new AbortController().signal
  // Every host's setup and runner listens on it: 16 hosts are not a leak.
  setMaxListeners(0, signal)
  const begun = performance.now()
  const log = init.log ?? (options.quiet ? () => undefined : (line: string) => { process.stderr.write(`[fleet +${((performance.now() - begun) / 1000).toFixed(1)}s] ${line}\n`) })
  await checkPrerequisites(options)
  const runId = init.runId ?? newRunId()
  const outDir = resolve(options.outDir ?? join('fleet-out', new Date().toISOString().replace(/[:.]/g, '-')))
  const logDir = join(outDir, 'logs')
  const workDir = join(resolve(options.workDir ?? runsRoot()), runId)
  await mkdir(logDir, { recursive: true })
  await mkdir(workDir, { recursive: true })
  await writeRunState(runId, workDir)
  log(`run ${runId}: out ${outDir}, work ${workDir}`)

  const services = new Services()
  const sampler = new Sampler()
  const hostCount = options.nodes + (options.faults === 'byzantine' ? 1 : 0)
  const bed = new Bed({
    runId, hostCount, rateBitsPerSecond: options.rateBitsPerSecond, delayMs: options.delayMs, lossPercent: options.lossPercent,
    cacheDir: defaultCacheDir(), delayLogFile: join(logDir, 'nfq-delay.log'), services,
  })
  const started = Date.now()
  let teardownProblems: string[] = []
  try {
    const source: SourceBundle = options.bundle !== undefined
      ? await sourceFromPath(options.bundle, workDir, signal)
      : await generateSource(workDir, options.sizeBytes, signal)
    log(`bundle ${source.layout}: ${source.bytes} bytes`)
    await bed.up(signal)
    log(`bed up: ${hostCount} hosts on ${bed.subnet}.0/24`)
    const context: ModeContext = { runId, options, bed, services, sampler, source, workDir, logDir, signal, log }
    const outcome = options.mode === 'registry' ? await runRegistryMode(context) : options.mode === 'bittorrent' ? await runBittorrentMode(context) : await runShoalMode(context)
    const results = assembleResults(context, outcome, started)
    await writeFile(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n')
    await writeFile(join(outDir, 'plot.svg'), renderPlot(results))
    await writeFile(join(outDir, 'summary.txt'), summaryTable(results) + '\n')
    return { results, outDir, workDir, teardownProblems }
  } catch (err) {
    await writeFile(join(outDir, 'error.txt'), `${(err as Error).stack ?? String(err)}\n`).catch(() => undefined)
    throw err
  } finally {
    await sampler.stop()
    await services.stopAll()
    teardownProblems = await bed.destroy()
    for (const problem of teardownProblems) log(`teardown: ${problem}`)
    if (!options.keepData) await rm(workDir, { recursive: true, force: true })
    await removeRunState(runId)
    log(`torn down ${runId}`)
  }
}

function assembleResults (context: ModeContext, outcome: ModeOutcome, started: number): FleetResults {
  const { options, bed, source, runId } = context
  const { transfer } = outcome
  const lowerBoundSeconds = options.rateBitsPerSecond > 0 ? source.bytes / (options.rateBitsPerSecond / 8) : null
  const perNode: NodeResult[] = []
  for (const host of bed.hosts) {
    const node = outcome.nodes.get(host)
    const before = transfer.before.get(host)
    const after = transfer.after.get(host)
    const runner = transfer.runners.find(r => r.host === host)
    const completion = runner?.completionSeconds ?? null
    const name = node?.name ?? `n${host.index}`
    const atCompletion = transfer.cpuAtCompletion.get(name)
    const atStart = transfer.cpuAtStart.get(name)
    const cpuSeconds = node?.cpuSeconds === null || node?.cpuSeconds === undefined ? null : round(node.cpuSeconds, 2)
    const role = node?.role ?? 'edge'
    const during = transfer.during.get(name)
    perNode.push({
      name,
      role,
      ...(role === 'edge' && abTest(options) ? { group: edgeGroup(host.index) } : {}),
      ip: host.ip,
      namespace: host.ns,
      completionSeconds: completion === null ? null : round(completion, 3),
      completionOverLowerBound: completion === null || lowerBoundSeconds === null ? null : round(completion / lowerBoundSeconds, 3),
      verified: node?.verified ?? false,
      problems: node?.problems ?? ['no outcome for this node'],
      uploadedBytes: before === undefined || after === undefined ? 0 : after.txBytes - before.txBytes,
      downloadedBytes: before === undefined || after === undefined ? 0 : after.rxBytes - before.rxBytes,
      ...(before?.tcp !== undefined && after?.tcp !== undefined
        ? {
            tcp: {
              retransmittedSegments: after.tcp.retransmittedSegments - before.tcp.retransmittedSegments,
              duplicateSegmentsReceived: after.tcp.duplicateSegmentsReceived - before.tcp.duplicateSegmentsReceived,
            },
          }
        : {}),
      cpuSeconds,
      peakRssBytes: node?.peakRssBytes ?? null,
      ...(node?.startupCpuSeconds !== undefined ? { startupCpuSeconds: node.startupCpuSeconds === null ? null : round(node.startupCpuSeconds, 2) } : {}),
      ...(node?.idleCpuPercent !== undefined ? { idleCpuPercent: round(node.idleCpuPercent, 2) } : {}),
      systemCpuSeconds: during !== undefined && cpuSeconds !== null ? round(during.systemSeconds, 2) : null,
      ...(during !== undefined ? { readCalls: during.readCalls, writeCalls: during.writeCalls, wakeupsPerSecond: round(during.wakeups / Math.max(transfer.seconds, 1e-3), 0) } : {}),
      cpuSecondsToCompletion: atCompletion === undefined || atStart === undefined ? null : round(atCompletion - atStart, 2),
      cpuSecondsPerGiB: role === 'edge' && cpuSeconds !== null ? round(cpuSeconds / (source.bytes / GIB), 1) : null,
      ...(node?.timeline !== undefined ? { timeline: { ...node.timeline, completedUs: transfer.completedUs.get(name) ?? null } } : {}),
      attempts: runner?.attempts ?? 0,
      ...(node?.daemonStats !== undefined ? { daemonStats: node.daemonStats } : {}),
    })
  }
  const gatewayUploadBytes = perNode[0]?.uploadedBytes ?? 0
  const honestEdges = perNode.filter(n => n.role === 'edge')
  const faults: FaultResult[] = outcome.faults.map(fault => {
    const hit = perNode.find(n => n.name === fault.node)
    if (fault.kind === 'byzantine') {
      const slowest = Math.max(...honestEdges.map(n => n.completionSeconds ?? Number.NaN))
      return {
        ...fault,
        detail: `${fault.detail}; cost = slowest honest edge − lower bound (compare with a --faults none run for the fault alone)`,
        costSeconds: Number.isFinite(slowest) && lowerBoundSeconds !== null ? round(slowest - lowerBoundSeconds, 3) : null,
        extraDownloadBytes: honestEdges.reduce((sum, n) => sum + Math.max(0, n.downloadedBytes - source.bytes), 0),
      }
    }
    const others = honestEdges.filter(n => n.name !== fault.node)
    const otherCompletion = median(others.map(n => n.completionSeconds).filter((s): s is number => s !== null))
    const otherDownload = median(others.map(n => n.downloadedBytes))
    return {
      ...fault,
      costSeconds: hit === undefined || hit.completionSeconds === null || otherCompletion === null || fault.atSeconds === null ? null : round(hit.completionSeconds - otherCompletion, 3),
      extraDownloadBytes: hit === undefined || otherDownload === null ? null : hit.downloadedBytes - otherDownload,
    }
  })
  const honest = perNode.filter(n => n.role !== 'byzantine')
  const completions = honestEdges.map(n => n.completionSeconds)
  return {
    runId,
    mode: options.mode,
    nodes: options.nodes,
    rateBitsPerSecond: options.rateBitsPerSecond,
    delayMs: options.delayMs,
    lossPercent: options.lossPercent,
    bundleBytes: source.bytes,
    ...(outcome.bundleId !== undefined ? { bundleId: outcome.bundleId } : {}),
    lowerBoundSeconds: lowerBoundSeconds === null ? null : round(lowerBoundSeconds, 3),
    startedAt: new Date(started).toISOString(),
    transferSeconds: completions.every(c => c !== null) ? round(Math.max(...completions.map(c => c ?? 0)), 3) : null,
    totalSeconds: round((Date.now() - started) / 1000, 2),
    gatewayUploadBytes,
    gatewayUploadCopies: round(gatewayUploadBytes / source.bytes, 3),
    allComplete: honestEdges.every(n => n.completionSeconds !== null),
    allVerified: honest.every(n => n.verified),
    perNode,
    processes: outcome.processes.map(p => ({ ...p, cpuSeconds: p.cpuSeconds === null ? null : round(p.cpuSeconds, 2) })),
    machineCpu: transfer.machineCpu,
    processesCpuPercent: processesCpuPercent(outcome, transfer.seconds, transfer.machineCpu.cores),
    timeline: { pullsStartedUs: transfer.startedUs, transferEndedUs: transfer.endedUs },
    faults,
    options: { ...options },
    problems: outcome.problems,
  }
}

const GIB = 1024 ** 3

/** The processes' CPU over the transfer as a share of the whole machine; null if one was not measured. */
function processesCpuPercent (outcome: ModeOutcome, seconds: number, cores: number): number | null {
  if (outcome.processes.length === 0 || seconds <= 0) return null
  let total = 0
  for (const p of outcome.processes) {
    if (p.cpuSeconds === null) return null
    total += p.cpuSeconds
  }
  return round(100 * total / (seconds * cores), 1)
}

const PACKAGE_OF: Record<string, string> = {
  ip: 'iproute2', tc: 'iproute2', iptables: 'iptables', gcc: 'gcc', skopeo: 'skopeo', 'docker-registry': 'docker-registry', time: 'time', tar: 'tar', aria2c: 'aria2', opentracker: 'opentracker',
}

/** Fails early, naming the Debian package, rather than half-way through building the bed. */
async function checkPrerequisites (options: FleetOptions): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the fleet bed needs root (network namespaces, tc, iptables)')
  const commands = ['ip', 'tc', 'iptables']
  if (options.delayMs > 0) commands.push('gcc')
  if (options.mode === 'registry') commands.push('skopeo', 'docker-registry')
  if (options.mode === 'bittorrent') commands.push('aria2c', 'opentracker')
  if (options.bundle !== undefined) commands.push('skopeo', 'tar')
  const missing: string[] = []
  for (const command of commands) {
    const found = await run(['sh', '-c', `command -v ${command}`], { allowFailure: true })
    if (found.code !== 0) missing.push(PACKAGE_OF[command] ?? command)
  }
  if (options.mode === 'registry' && !existsSync('/usr/bin/time')) missing.push('time')
  if (options.delayMs > 0 && !existsSync('/usr/include/libnetfilter_queue/libnetfilter_queue.h')) missing.push('libnetfilter-queue-dev')
  if (missing.length > 0) throw new Error(`missing Debian packages: ${[...new Set(missing)].join(' ')} (apt-get install them)`)
}
