// Cuts the daemons' V8 CPU profiles (`scripts/fleet.ts --cpu-prof DIR`) at the run's phase
// boundaries and says where each phase's main-thread time went, with bundled code mapped
// back to its source file through dist/'s source maps.
//
// The runner stamps every boundary on CLOCK_MONOTONIC (results.json `timeline`), the clock
// V8 stamps samples with, so a sample's phase needs no clock translation.
import { readFile } from 'node:fs/promises'
import { SourceMap, type SourceMapPayload } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { FleetResults, NodeResult } from './results.js'

interface CallFrame { functionName: string, url: string, lineNumber: number, columnNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
export interface CpuProfile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

export const PHASES = ['start-up', 'idle', 'pulling', 'seeding', 'after'] as const
export type Phase = typeof PHASES[number]

/** A phase's window on CLOCK_MONOTONIC, µs; `end` exclusive. */
export interface Window { phase: Phase, start: number, end: number }

/** Self time (µs) of the main thread in one phase: by group and by function. */
export interface PhaseTime {
  wallUs: number
  sampledUs: number
  byGroup: Map<string, number>
  byFunction: Map<string, number>
  /**
   * Busy time by the innermost shoal function on the sample's stack: what our code costs with
   * everything it calls (the muxer, the cipher, the peer store), or, where no shoal frame is on
   * the stack, `(no shoal frame) <outermost frame>` (socket data arriving, a library's timer).
   */
  byShoalCaller: Map<string, number>
}

/**
 * The windows of one node: start-up (spawn → answered status), idle (→ the pulls' start),
 * pulling (→ its own completion; for the gateway, → the last completion), seeding
 * (→ the last completion), after (the checks and the stop).
 */
export function phaseWindows (node: NodeResult, results: FleetResults): Window[] {
  const run = results.timeline
  const own = node.timeline
  if (run === undefined || own === undefined) throw new Error(`results.json has no timeline for ${node.name} (a run before --cpu-prof existed?)`)
  const done = node.role === 'edge' && own.completedUs !== null ? own.completedUs : run.transferEndedUs
  return [
    { phase: 'start-up', start: own.spawnedUs, end: own.readyUs },
    { phase: 'idle', start: own.readyUs, end: run.pullsStartedUs },
    { phase: 'pulling', start: run.pullsStartedUs, end: done },
    { phase: 'seeding', start: done, end: run.transferEndedUs },
    { phase: 'after', start: run.transferEndedUs, end: Number.POSITIVE_INFINITY },
  ]
}

/** Maps bundled positions (dist/chunk-*.js) to their sources; other files pass through. */
export class SourceMapper {
  private readonly maps = new Map<string, SourceMap | null>()

  async load (url: string): Promise<void> {
    if (this.maps.has(url)) return
    let map: SourceMap | null = null
    if (url.startsWith('file://') && url.endsWith('.js')) {
      try {
        const payload = JSON.parse(await readFile(fileURLToPath(url) + '.map', 'utf8')) as SourceMapPayload
        map = new SourceMap(payload)
      } catch {
        // No map beside it (node_modules, node's own): the bundled position is the source.
      }
    }
    this.maps.set(url, map)
  }

  /** The source file a frame's code came from (as the map names it), or its own url. */
  source (frame: CallFrame): string {
    const map = this.maps.get(frame.url)
    if (map === undefined || map === null) return frame.url
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as { originalSource?: string } | Record<string, never>
    return 'originalSource' in entry && typeof entry.originalSource === 'string' ? entry.originalSource : frame.url
  }
}

/** What a frame is charged to: idle, GC, native code, a package, or a shoal module (src/<module>). */
export function groupOf (functionName: string, source: string): string {
  if (functionName === '(idle)' || functionName === '(garbage collector)' || functionName === '(program)') return functionName
  if (source === '') return '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source)
  if (pkg?.[1] !== undefined) return pkg[1]
  if (source.startsWith('node:')) return 'node:' + source.slice(5).split('/')[0]
  const own = /(?:^|\/)src\/([^/]+)\/[^/]+$/.exec(source)
  if (own?.[1] !== undefined) return `shoal ${own[1]}`
  if (/(?:^|\/)src\/[^/]+$/.test(source)) return 'shoal'
  return source
}

function placeOf (functionName: string, source: string): string {
  const file = source.replace(/^.*\/(node_modules|src|dist|scripts)\//, '$1/')
  return `${functionName === '' ? '(anonymous)' : functionName}${file === '' ? '' : ` ${file}`}`
}

/** Splits one profile's samples into the windows (a sample belongs where its timestamp falls). */
export async function splitProfile (profile: CpuProfile, windows: Window[], mapper: SourceMapper): Promise<Map<Phase, PhaseTime>> {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  for (const node of profile.nodes) await mapper.load(node.callFrame.url)
  const out = new Map<Phase, PhaseTime>()
  for (const w of windows) {
    const start = Math.max(w.start, profile.startTime)
    const end = Math.min(w.end, profile.endTime)
    out.set(w.phase, { wallUs: Math.max(0, end - start), sampledUs: 0, byGroup: new Map(), byFunction: new Map(), byShoalCaller: new Map() })
  }
  const parentOf = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id)
  const described = new Map<number, { group: string, place: string }>()
  const describe = (node: ProfileNode): { group: string, place: string } => {
    let d = described.get(node.id)
    if (d === undefined) {
      const source = mapper.source(node.callFrame)
      d = { group: groupOf(node.callFrame.functionName, source), place: placeOf(node.callFrame.functionName, source) }
      described.set(node.id, d)
    }
    return d
  }
  const callers = new Map<number, string>()
  const callerOf = (node: ProfileNode, own: { group: string, place: string }): string => {
    let caller = callers.get(node.id)
    if (caller !== undefined) return caller
    if (own.group.startsWith('(')) {
      caller = own.group
    } else {
      let outermost = own.place
      for (let at: ProfileNode | undefined = node; at !== undefined; at = byId.get(parentOf.get(at.id) ?? -1)) {
        const d = describe(at)
        if (d.group === 'shoal' || d.group.startsWith('shoal ')) { caller = d.place; break }
        if (at.callFrame.functionName !== '(root)') outermost = d.place
      }
      caller ??= `(no shoal frame) ${outermost}`
    }
    callers.set(node.id, caller)
    return caller
  }
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0
    at += dt
    const node = byId.get(profile.samples[i] ?? -1)
    if (node === undefined) continue
    const window = windows.find(w => at >= w.start && at < w.end)
    if (window === undefined) continue
    const time = out.get(window.phase) as PhaseTime
    const d = describe(node)
    time.sampledUs += dt
    time.byGroup.set(d.group, (time.byGroup.get(d.group) ?? 0) + dt)
    time.byFunction.set(d.place, (time.byFunction.get(d.place) ?? 0) + dt)
    if (d.group !== '(idle)') {
      const caller = callerOf(node, d)
      time.byShoalCaller.set(caller, (time.byShoalCaller.get(caller) ?? 0) + dt)
    }
  }
  return out
}

/** Adds `b` into `a`. */
export function addPhaseTimes (a: Map<Phase, PhaseTime>, b: Map<Phase, PhaseTime>): void {
  for (const [phase, t] of b) {
    const into = a.get(phase) ?? { wallUs: 0, sampledUs: 0, byGroup: new Map<string, number>(), byFunction: new Map<string, number>(), byShoalCaller: new Map<string, number>() }
    into.wallUs += t.wallUs
    into.sampledUs += t.sampledUs
    for (const [k, v] of t.byGroup) into.byGroup.set(k, (into.byGroup.get(k) ?? 0) + v)
    for (const [k, v] of t.byFunction) into.byFunction.set(k, (into.byFunction.get(k) ?? 0) + v)
    for (const [k, v] of t.byShoalCaller) into.byShoalCaller.set(k, (into.byShoalCaller.get(k) ?? 0) + v)
    a.set(phase, into)
  }
}

/** Busy main-thread time: everything sampled but idle. */
export function busyUs (t: PhaseTime): number {
  return t.sampledUs - (t.byGroup.get('(idle)') ?? 0)
}

/** A text report of summed phase times over `count` daemons, per daemon. */
export function phaseReport (title: string, times: Map<Phase, PhaseTime>, count: number, top: number): string {
  const ms = (us: number): string => `${(us / count / 1000).toFixed(0)} ms`
  const lines = [`${title} (per daemon, mean of ${count}; main thread self time, wall-clock samples)`]
  for (const phase of PHASES) {
    const t = times.get(phase)
    if (t === undefined || t.sampledUs === 0) continue
    const busy = busyUs(t)
    lines.push(`  ${phase}: ${(t.wallUs / count / 1e6).toFixed(2)} s wall, main thread busy ${ms(busy)} (${(100 * busy / Math.max(1, t.wallUs)).toFixed(1)}%)`)
    const groups = [...t.byGroup].filter(([g]) => g !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)
    lines.push(`    by group: ${groups.map(([g, us]) => `${g} ${ms(us)}`).join(', ')}`)
    const fns = [...t.byFunction].filter(([f]) => !f.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)
    for (const [f, us] of fns) lines.push(`      ${ms(us).padStart(8)}  ${f}`)
    const callers = [...t.byShoalCaller].sort((a, b) => b[1] - a[1]).slice(0, top)
    if (callers.length > 0) lines.push('    by the innermost shoal function on the stack (its own time and all it calls):')
    for (const [f, us] of callers) lines.push(`      ${ms(us).padStart(8)}  ${f}`)
  }
  return lines.join('\n')
}
