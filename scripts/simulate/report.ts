// The table printed after a run, the goals checked against the results, and the
// summary of several seeds per swarm size (medians, with the range).
import type { SimResult } from './swarm-sim.js'

/** Issue #5: completion over the lower bound at 1,000 nodes ≤ this × the 10-node figure… */
export const COMPLETION_SCALING_GOAL = 1.5
/** Issue #10: the last node within this × the lower bound at every size… */
export const COMPLETION_GOAL = 1.5
/** …and the gateway uploads at most this many bundles at every size (issue #5 asked 1.5). */
export const GATEWAY_UPLOAD_GOAL = 1.3

export interface Spread {
  median: number
  min: number
  max: number
}

/** One swarm size over all its runs (seeds). */
export interface SizeSummary {
  nodes: number
  runs: number
  seeds: number[]
  lastOverLowerBound: Spread
  medianOverLowerBound: Spread
  gatewayUploadOverBundle: Spread
  duplicateShare: Spread
  duplicateChunks: Spread
  gatewayExtraCopies: Spread
  edgeHoldersAsked: Spread
  edgeHoldersBusy: Spread
  incompleteNodes: number
  simulatedS: Spread
  wallMs: number
  cpuMs: number
}

export interface GoalCheck {
  goal: string
  met: boolean | undefined
  detail: string
}

export function summarise (results: SimResult[]): SizeSummary[] {
  const sizes = [...new Set(results.map(r => r.nodes))].sort((a, b) => a - b)
  return sizes.map((nodes) => {
    const runs = results.filter(r => r.nodes === nodes)
    const spread = (pick: (r: SimResult) => number): Spread => {
      const values = runs.map(pick).sort((a, b) => a - b)
      return { median: median(values), min: values[0] as number, max: values[values.length - 1] as number }
    }
    return {
      nodes,
      runs: runs.length,
      seeds: runs.map(r => r.seed),
      lastOverLowerBound: spread(r => r.lastOverLowerBound),
      medianOverLowerBound: spread(r => r.medianOverLowerBound),
      gatewayUploadOverBundle: spread(r => r.gatewayUploadOverBundle),
      duplicateShare: spread(r => r.duplicateShare),
      duplicateChunks: spread(r => r.duplicateChunks),
      gatewayExtraCopies: spread(r => r.gatewayExtraCopies.total),
      edgeHoldersAsked: spread(r => r.edgeHoldersAskedMedian),
      edgeHoldersBusy: spread(r => r.edgeHoldersBusyMean),
      incompleteNodes: runs.reduce((n, r) => n + r.incompleteNodes, 0),
      simulatedS: spread(r => r.simulatedS),
      wallMs: runs.reduce((n, r) => n + r.wallMs, 0),
      cpuMs: runs.reduce((n, r) => n + r.cpuMs, 0),
    }
  })
}

/** The goals, on medians over the runs of each size. */
export function checkGoals (summaries: SizeSummary[]): GoalCheck[] {
  const at = (n: number): SizeSummary | undefined => summaries.find(s => s.nodes === n)
  const small = at(10)
  const large = at(1000)
  const checks: GoalCheck[] = []
  const scaling = 'completion/LB at 1,000 nodes ≤ 1.5 × at 10 nodes'
  if (small === undefined || large === undefined) {
    checks.push({ goal: scaling, met: undefined, detail: 'needs runs at 10 and 1000 nodes' })
  } else {
    const ratio = large.lastOverLowerBound.median / small.lastOverLowerBound.median
    const medianRatio = large.medianOverLowerBound.median / small.medianOverLowerBound.median
    checks.push({
      goal: scaling,
      met: ratio <= COMPLETION_SCALING_GOAL,
      detail: `last edge ${fmt(large.lastOverLowerBound.median)} / ${fmt(small.lastOverLowerBound.median)} = ${fmt(ratio)}×; median edge ${fmt(medianRatio)}×`,
    })
  }
  const slowest = summaries.reduce<SizeSummary | undefined>((w, s) => (w === undefined || s.lastOverLowerBound.median > w.lastOverLowerBound.median ? s : w), undefined)
  checks.push({
    goal: `last node ≤ ${COMPLETION_GOAL} × the lower bound at every size`,
    met: slowest === undefined ? undefined : summaries.every(s => s.lastOverLowerBound.median <= COMPLETION_GOAL),
    detail: slowest === undefined ? 'no runs' : `highest ${fmt(slowest.lastOverLowerBound.median)}× at ${slowest.nodes} nodes`,
  })
  const worst = summaries.reduce<SizeSummary | undefined>((w, s) => (w === undefined || s.gatewayUploadOverBundle.median > w.gatewayUploadOverBundle.median ? s : w), undefined)
  checks.push({
    goal: `gateway upload ≤ ${GATEWAY_UPLOAD_GOAL} × bundle at every size`,
    met: worst === undefined ? undefined : summaries.every(s => s.gatewayUploadOverBundle.median <= GATEWAY_UPLOAD_GOAL),
    detail: worst === undefined ? 'no runs' : `highest ${fmt(worst.gatewayUploadOverBundle.median)}× at ${worst.nodes} nodes`,
  })
  return checks
}

export function table (summaries: SizeSummary[]): string {
  const several = summaries.some(s => s.runs > 1)
  const header = ['nodes', ...(several ? ['runs'] : []), 'last/LB', 'median/LB', 'gw upload/bundle', 'duplicates', 'gw extra copies', 'holders asked', 'busy at once', 'simulated s', 'wall s', 'cpu s']
  const show = (s: Spread, digits = 2): string => several && s.max > s.min ? `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})` : fmt(s.median, digits)
  const rows = summaries.map(s => [
    String(s.nodes),
    ...(several ? [String(s.runs)] : []),
    show(s.lastOverLowerBound) + (s.incompleteNodes > 0 ? ` (${s.incompleteNodes} unfinished)` : ''),
    show(s.medianOverLowerBound),
    show(s.gatewayUploadOverBundle),
    `${fmt(s.duplicateChunks.median, 0)} (${(s.duplicateShare.median * 100).toFixed(1)}%)`,
    fmt(s.gatewayExtraCopies.median, 0),
    show(s.edgeHoldersAsked, 0),
    show(s.edgeHoldersBusy, 1),
    fmt(s.simulatedS.median, 1),
    fmt(s.wallMs / 1000, 1),
    fmt(s.cpuMs / 1000, 1),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(row => (row[i] as string).length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i] as number)).join('  ')
  return [line(header), line(widths.map(w => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

/** One run's timeline (SimConfig.timelineMs) as columns. */
export function timelineTable (result: SimResult): string {
  const header = ['s', 'seeded', 'held min', 'p10', 'median', 'pulling', 'down busy', 'up busy', 'idle useful', 'down idle: starved', 'contended', 'unmatched', 'queued at edges', 'at gateway']
  const rows = (result.timeline ?? []).map(t => [t.s.toFixed(1), t.seeded, t.heldMin, t.heldP10, t.heldMedian, t.pulling, t.downBusy, t.upBusy, t.idleUseful, t.idleStarved, t.idleContended, t.idleUnmatched, t.queuedAtEdges, t.queuedAtGateway].map(String))
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(row => (row[i] as string).length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(widths[i] as number)).join('  ')
  return [`${result.nodes} nodes, seed ${result.seed}: chunks held per edge, links busy, over simulated time`, line(header), ...rows.map(line)].join('\n')
}

export function goalLines (checks: GoalCheck[]): string {
  return checks.map(c => `${c.met === undefined ? 'n/a ' : c.met ? 'MET ' : 'MISS'}  ${c.goal}: ${c.detail}`).join('\n')
}

function median (sorted: number[]): number {
  const mid = (sorted.length - 1) / 2
  return ((sorted[Math.floor(mid)] as number) + (sorted[Math.ceil(mid)] as number)) / 2
}

function fmt (value: number, digits = 2): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '∞'
}
