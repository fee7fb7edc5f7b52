// results.json: its shape, the derived figures, and the summary table for stdout.
import type { MachineCpu } from './sampler.js'
import { formatBytes, formatRate } from './units.js'

export type Mode = 'shoal' | 'registry' | 'bittorrent'
export type FaultKind = 'none' | 'kill' | 'byzantine' | 'partition'
export type Role = 'gateway' | 'edge' | 'byzantine'

export interface NodeResult {
  name: string
  role: Role
  /** An A/B run's group of this edge (B: started with --b-node-flag / --b-env). */
  group?: 'A' | 'B'
  ip: string
  namespace: string
  /** Seconds from the common start of the pulls to this node's complete copy; null if it never completed. */
  completionSeconds: number | null
  /** completionSeconds ÷ lowerBoundSeconds. */
  completionOverLowerBound: number | null
  verified: boolean
  /** What went wrong for this node, if anything. */
  problems: string[]
  /** Link-level bytes during the transfer phase (veth counters, headers included). */
  uploadedBytes: number
  downloadedBytes: number
  /** TCP segments this host sent again, and received again (bed.ts LinkCounters.tcp), over the transfer. */
  tcp?: { retransmittedSegments: number, duplicateSegmentsReceived: number }
  /**
   * CPU seconds and peak RSS of this node's daemon (shoal: from the pulls' common start to
   * the last completion) or pull client (registry, all attempts).
   */
  cpuSeconds: number | null
  peakRssBytes: number | null
  /** The kernel's part of cpuSeconds (system time; on the bed it includes the emulated network's per-packet work). */
  systemCpuSeconds?: number | null
  /** Read and write system calls over the transfer (sockets and files): on slow links the cost is per call, not per byte. */
  readCalls?: number
  writeCalls?: number
  /** Main-thread wake-ups per second over the transfer (voluntary context switches: timers and I/O). */
  wakeupsPerSecond?: number
  /** shoal: the daemon's CPU seconds from its spawn until it answered status. */
  startupCpuSeconds?: number | null
  /** shoal with --idle-seconds: the daemon's CPU while idle before the pulls, percent of one core. */
  idleCpuPercent?: number
  /** shoal edges: CPU seconds from the pulls' start to this edge's own completion (the rest is seeding others). */
  cpuSecondsToCompletion?: number | null
  /** Edges: cpuSeconds per GiB of the bundle (what the edge had to receive). */
  cpuSecondsPerGiB?: number | null
  /** shoal: CLOCK_MONOTONIC µs (the clock of `node --cpu-prof` samples) of the daemon's spawn, readiness and this edge's completion. */
  timeline?: { spawnedUs: number, readyUs: number, completedUs: number | null }
  /** How many times the pull was started (more than one after a fault or a failed attempt). */
  attempts: number
  /** The daemon's own counters from `status --json`, when it gives them. */
  daemonStats?: Record<string, unknown>
}

export interface ProcessResult { name: string, node: string, cpuSeconds: number | null, peakRssBytes: number | null }

export interface FaultResult {
  kind: Exclude<FaultKind, 'none'>
  /** The node the fault hit (the extra corrupt node for byzantine). */
  node: string
  /** When it was injected, seconds after the start of the pulls. */
  atSeconds: number | null
  detail: string
  /**
   * What the fault cost: the hit node's completion minus the median completion of the
   * other honest edges (kill, partition), or the slowest honest edge's completion over
   * the lower bound (byzantine, where every edge may be hit).
   */
  costSeconds: number | null
  /** Bytes the hit node downloaded beyond the median of the other edges (re-fetched or wasted). */
  extraDownloadBytes: number | null
}

export interface FleetResults {
  runId: string
  mode: Mode
  /** Hosts in the bed, gateway included, byzantine extra node excluded. */
  nodes: number
  rateBitsPerSecond: number
  delayMs: number
  lossPercent: number
  bundleBytes: number
  bundleId?: string
  /** bundleBytes ÷ one link's rate: no edge can finish sooner. Null on unshaped links. */
  lowerBoundSeconds: number | null
  startedAt: string
  /** The transfer phase: from the common start of the pulls to the last completion. */
  transferSeconds: number | null
  totalSeconds: number
  gatewayUploadBytes: number
  /** gatewayUploadBytes ÷ bundleBytes: how many copies left the gateway. */
  gatewayUploadCopies: number
  allComplete: boolean
  allVerified: boolean
  perNode: NodeResult[]
  processes: ProcessResult[]
  machineCpu: MachineCpu
  /**
   * Every watched process's CPU over the transfer phase, as a share of the machine
   * (100 = every core busy for the whole phase): what the software under test cost.
   */
  processesCpuPercent: number | null
  /** CLOCK_MONOTONIC µs of the pulls' common start and the last completion. */
  timeline?: { pullsStartedUs: number, transferEndedUs: number }
  faults: FaultResult[]
  options: Record<string, unknown>
  problems: string[]
}

export function median (values: number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? null : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

/** The table printed at the end of a run. */
export function summaryTable (results: FleetResults): string {
  const lines: string[] = []
  const bound = results.lowerBoundSeconds
  lines.push(`fleet ${results.runId}: ${results.mode} mode, ${results.nodes} hosts, ${formatRate(results.rateBitsPerSecond)}, ` +
    `delay ${results.delayMs} ms one way, loss ${results.lossPercent}%, bundle ${formatBytes(results.bundleBytes)}`)
  lines.push(`lower bound ${bound === null ? 'n/a (unshaped)' : `${bound.toFixed(2)} s`}; transfer phase ${results.transferSeconds?.toFixed(2) ?? '—'} s; ` +
    `gateway uploaded ${formatBytes(results.gatewayUploadBytes)} (${results.gatewayUploadCopies.toFixed(2)} copies); ` +
    `busiest second ${results.machineCpu.busiestSecondPercent}% of ${results.machineCpu.cores} cores; ` +
    `processes under test ${results.processesCpuPercent?.toFixed(1) ?? '—'}% of the machine over the transfer`)
  const header = ['node', 'role', 'ip', 'done s', '× bound', 'down', 'down/bundle', 'up', 'cpu s', 'sys s', 'cpu s/GiB', 'start cpu s', 'peak RSS', 'tries', 'verified']
  const rows = results.perNode.map(node => [
    node.name, node.role, node.ip,
    node.completionSeconds?.toFixed(2) ?? (node.role === 'edge' ? 'FAILED' : '—'),
    node.completionOverLowerBound?.toFixed(2) ?? '—',
    formatBytes(node.downloadedBytes), (node.downloadedBytes / results.bundleBytes).toFixed(3), formatBytes(node.uploadedBytes),
    node.cpuSeconds?.toFixed(2) ?? '—', node.systemCpuSeconds?.toFixed(2) ?? '—', node.cpuSecondsPerGiB?.toFixed(1) ?? '—', node.startupCpuSeconds?.toFixed(2) ?? '—',
    node.peakRssBytes === null ? '—' : formatBytes(node.peakRssBytes),
    String(node.attempts), node.role === 'byzantine' ? '—' : node.verified ? 'yes' : 'NO',
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  const fmt = (cells: string[]): string => cells.map((c, i) => i <= 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)).join('  ').trimEnd()
  lines.push(fmt(header))
  for (const row of rows) lines.push(fmt(row))
  for (const node of results.perNode) {
    const wire = wireLine(node, results.bundleBytes)
    if (wire !== undefined) lines.push(wire)
    const copies = gatewayCopiesLine(node)
    if (copies !== undefined) lines.push(copies)
  }
  const calls = results.perNode.filter(n => n.readCalls !== undefined)
  if (calls.length > 0) lines.push(`read/write system calls over the transfer: ${calls.map(n => `${n.name} ${n.readCalls ?? '—'}/${n.writeCalls ?? '—'}`).join(', ')}`)
  const woken = results.perNode.filter(n => n.wakeupsPerSecond !== undefined)
  if (woken.length > 0) lines.push(`main-thread wake-ups per second over the transfer: ${woken.map(n => `${n.name} ${n.wakeupsPerSecond ?? '—'}`).join(', ')}`)
  const idle = results.perNode.filter(n => n.idleCpuPercent !== undefined)
  if (idle.length > 0) lines.push(`idle before the pulls, CPU % of one core: ${idle.map(n => `${n.name} ${n.idleCpuPercent?.toFixed(2) ?? '—'}`).join(', ')}`)
  const ab = abLines(results)
  lines.push(...ab)
  for (const p of results.processes) {
    lines.push(`process ${p.name} on ${p.node}: ${p.cpuSeconds?.toFixed(2) ?? '—'} CPU s, peak RSS ${p.peakRssBytes === null ? '—' : formatBytes(p.peakRssBytes)}`)
  }
  for (const f of results.faults) {
    lines.push(`fault ${f.kind} on ${f.node} at ${f.atSeconds?.toFixed(2) ?? '—'} s: ${f.detail}; cost ${f.costSeconds?.toFixed(2) ?? '—'} s, ` +
      `extra download ${f.extraDownloadBytes === null ? '—' : formatBytes(f.extraDownloadBytes)}`)
  }
  for (const p of results.problems) lines.push(`problem: ${p}`)
  lines.push(results.allComplete && results.allVerified ? 'every honest node complete and verified' : 'NOT every honest node is complete and verified')
  return lines.join('\n')
}

/** Why a gateway sent chunks it had sent before (gateway-seeding.ts's reasons). Undefined elsewhere or without the counters. */
function gatewayCopiesLine (node: NodeResult): string | undefined {
  const extras = node.daemonStats?.gatewayExtraCopies
  if (node.role !== 'gateway' || extras === undefined || extras === null || typeof extras !== 'object') return undefined
  const entries = Object.entries(extras as Record<string, number>)
  const total = entries.reduce((sum, [, n]) => sum + n, 0)
  return `${node.name} gateway: ${total} chunk copies after the first${entries.length > 0 ? `, sent ${entries.map(([why, n]) => `${why} ${n}`).join(', ')}` : ''}`
}

/**
 * An A/B run's comparison: medians of each group's edges, and B over A. The groups share the
 * run's window and load, so the ratio is the figure to read; absolute values move with load.
 */
export function abLines (results: FleetResults): string[] {
  const groups = { A: results.perNode.filter(n => n.group === 'A'), B: results.perNode.filter(n => n.group === 'B') }
  if (groups.A.length === 0 || groups.B.length === 0) return []
  const options = results.options as { bNodeFlags?: string[], bEnv?: Record<string, string> }
  const change = [...(options.bNodeFlags ?? []), ...Object.entries(options.bEnv ?? {}).map(([k, v]) => `${k}=${v}`)].join(' ')
  const figures: Array<[string, (n: NodeResult) => number | null | undefined, (v: number) => string]> = [
    ['cpu s', n => n.cpuSeconds, v => v.toFixed(2)],
    ['sys s', n => n.systemCpuSeconds, v => v.toFixed(2)],
    ['done s', n => n.completionSeconds, v => v.toFixed(2)],
    ['peak RSS', n => n.peakRssBytes, v => formatBytes(v)],
    ['wake-ups/s', n => n.wakeupsPerSecond, v => v.toFixed(0)],
    ['down/bundle', n => n.downloadedBytes / results.bundleBytes, v => v.toFixed(3)],
  ]
  const lines = [`A/B in one run: group B (${groups.B.map(n => n.name).join(' ')}) with ${change}; group A (${groups.A.map(n => n.name).join(' ')}) as shipped; medians:`]
  for (const [label, pick, format] of figures) {
    const a = median(groups.A.map(pick).filter((v): v is number => typeof v === 'number'))
    const b = median(groups.B.map(pick).filter((v): v is number => typeof v === 'number'))
    if (a === null || b === null) continue
    lines.push(`  ${label.padEnd(11)} A ${format(a).padStart(9)}  B ${format(b).padStart(9)}  B/A ${a === 0 ? '—' : (b / a).toFixed(3)}`)
  }
  return lines
}

/**
 * Where an edge's link bytes went: the chunk payload its daemon counted (the bundle plus
 * chunks fetched twice) and the rest (TCP/IP headers, encryption, framing, gossip), with
 * the scheduler's requests by why. Undefined without the daemon's counters.
 */
function wireLine (node: NodeResult, bundleBytes: number): string | undefined {
  const stats = node.daemonStats
  if (node.role !== 'edge' || stats === undefined || typeof stats.bytesDownloaded !== 'number') return undefined
  const payload = stats.bytesDownloaded
  const twice = typeof stats.chunksFetchedTwice === 'number' ? stats.chunksFetchedTwice : 0
  const x = (bytes: number): string => `${(bytes / bundleBytes).toFixed(3)}x`
  let line = `${node.name} wire: link ${x(node.downloadedBytes)} the bundle = chunk payload ${x(payload)} (${twice} fetched twice) + headers, encryption and gossip ${x(node.downloadedBytes - payload)}`
  const r = stats.requests as (Record<string, number> & { duplicatesAfter?: Record<string, number> }) | undefined
  if (r !== undefined && typeof r === 'object') {
    line += `; requests: first ${r.first ?? '—'}, again ${r.again ?? '—'} (moved ${r.moved ?? '—'}), extra ${r.extra ?? '—'} (overdue ${r.overdue ?? '—'}, end game ${r.endGame ?? '—'})`
    const after = Object.entries(r.duplicatesAfter ?? {})
    if (after.length > 0) line += `; twice after: ${after.map(([why, n]) => `${why} ${n}`).join(', ')}`
  }
  const lanes = stats.lanes as { opened?: number, served?: number, failed?: number, bytesReceived?: number } | undefined
  if (lanes !== undefined && lanes !== null && typeof lanes === 'object' && ((lanes.opened ?? 0) > 0 || (lanes.failed ?? 0) > 0)) {
    line += `; lanes: ${lanes.opened ?? 0} opened, ${lanes.failed ?? 0} failed, ${lanes.served ?? 0} served, payload in over lanes ${x(lanes.bytesReceived ?? 0)}`
  }
  if (node.tcp !== undefined) line += `; TCP: ${node.tcp.duplicateSegmentsReceived} segments received twice, ${node.tcp.retransmittedSegments} sent again`
  // A daemon killed by the fault restarts with fresh counters: the payload is its last life's only.
  if (node.attempts > 1) line += ' (pulled more than once: the daemon\'s counters may cover only its last start)'
  return line
}
