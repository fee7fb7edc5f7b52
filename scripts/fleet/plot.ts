// plot.svg, written by hand: completion time per node against the lower bound, and
// bytes uploaded per node against one copy of the bundle.
import type { FleetResults, NodeResult } from './results.js'

const WIDTH = 860
const PANEL_HEIGHT = 260
const MARGIN = { left: 70, right: 30, top: 50, bottom: 40 }
const COLORS: Record<NodeResult['role'], string> = { gateway: '#4c72b0', edge: '#55a868', byzantine: '#c44e52' }

export function renderPlot (results: FleetResults): string {
  const parts: string[] = []
  const height = MARGIN.top + 2 * (PANEL_HEIGHT + MARGIN.bottom) + 20
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`)
  parts.push(`<rect width="100%" height="100%" fill="white"/>`)
  const title = `${results.mode} mode · ${results.nodes} hosts · ${results.rateBitsPerSecond / 1e6} Mbit/s · ${results.delayMs} ms · ` +
    `loss ${results.lossPercent}% · ${(results.bundleBytes / 1048576).toFixed(1)} MiB` +
    (results.faults.length > 0 ? ` · faults: ${results.faults.map(f => f.kind).join(', ')}` : '')
  parts.push(`<text x="${WIDTH / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(title)}</text>`)

  const completion = results.perNode.map(n => n.completionSeconds ?? 0)
  const bound = results.lowerBoundSeconds
  parts.push(panel({
    top: MARGIN.top,
    title: 'completion time per node (s)',
    nodes: results.perNode,
    values: completion,
    labels: results.perNode.map(n => n.completionSeconds === null ? (n.role === 'edge' ? 'failed' : 'source') : n.completionSeconds.toFixed(1)),
    reference: bound === null ? undefined : { value: bound, label: `lower bound ${bound.toFixed(1)} s` },
    faults: results.faults,
  }))
  const mib = results.perNode.map(n => n.uploadedBytes / 1048576)
  parts.push(panel({
    top: MARGIN.top + PANEL_HEIGHT + MARGIN.bottom + 20,
    title: 'bytes uploaded per node (MiB)',
    nodes: results.perNode,
    values: mib,
    labels: mib.map(v => v.toFixed(1)),
    reference: { value: results.bundleBytes / 1048576, label: 'one copy of the bundle' },
    faults: results.faults,
  }))
  parts.push('</svg>')
  return parts.join('\n') + '\n'
}

interface PanelInit {
  top: number
  title: string
  nodes: NodeResult[]
  values: number[]
  labels: string[]
  reference: { value: number, label: string } | undefined
  faults: FleetResults['faults']
}

function panel ({ top, title, nodes, values, labels, reference, faults }: PanelInit): string {
  const out: string[] = []
  const x0 = MARGIN.left
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right
  const yMaxRaw = Math.max(...values, reference?.value ?? 0, 1e-9) * 1.15
  const step = niceStep(yMaxRaw / 4)
  const ticks = Math.max(1, Math.ceil(yMaxRaw / step))
  const yMax = step * ticks
  const y = (v: number): number => top + PANEL_HEIGHT - (v / yMax) * PANEL_HEIGHT
  out.push(`<text x="${x0}" y="${top - 8}" font-weight="bold">${escape(title)}</text>`)
  // Axis and grid.
  for (let i = 0; i <= ticks; i++) {
    const v = step * i
    out.push(`<line x1="${x0}" x2="${x0 + plotWidth}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`)
    out.push(`<text x="${x0 - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${formatTick(v)}</text>`)
  }
  out.push(`<line x1="${x0}" x2="${x0}" y1="${top}" y2="${top + PANEL_HEIGHT}" stroke="#333"/>`)
  out.push(`<line x1="${x0}" x2="${x0 + plotWidth}" y1="${top + PANEL_HEIGHT}" y2="${top + PANEL_HEIGHT}" stroke="#333"/>`)
  const slot = plotWidth / Math.max(nodes.length, 1)
  const barWidth = Math.min(60, slot * 0.7)
  nodes.forEach((node, i) => {
    const value = values[i] ?? 0
    const cx = x0 + slot * (i + 0.5)
    const barTop = y(value)
    out.push(`<rect x="${(cx - barWidth / 2).toFixed(1)}" y="${barTop.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${(top + PANEL_HEIGHT - barTop).toFixed(1)}" fill="${COLORS[node.role]}"><title>${escape(`${node.name} (${node.role}): ${labels[i] ?? ''}`)}</title></rect>`)
    out.push(`<text x="${cx.toFixed(1)}" y="${(barTop - 4).toFixed(1)}" text-anchor="middle" font-size="11">${escape(labels[i] ?? '')}</text>`)
    out.push(`<text x="${cx.toFixed(1)}" y="${top + PANEL_HEIGHT + 16}" text-anchor="middle">${escape(node.name)}</text>`)
    const fault = faults.find(f => f.node === node.name)
    const role = fault === undefined || fault.kind === 'byzantine' ? node.role : `${node.role} · ${fault.kind}`
    out.push(`<text x="${cx.toFixed(1)}" y="${top + PANEL_HEIGHT + 30}" text-anchor="middle" font-size="10" fill="${fault === undefined ? '#666' : '#c44e52'}">${escape(role)}</text>`)
  })
  if (reference !== undefined) {
    const ry = y(reference.value).toFixed(1)
    out.push(`<line x1="${x0}" x2="${x0 + plotWidth}" y1="${ry}" y2="${ry}" stroke="#c44e52" stroke-width="2" stroke-dasharray="6 4"/>`)
    out.push(`<text x="${x0 + plotWidth}" y="${(Number(ry) - 5).toFixed(1)}" text-anchor="end" fill="#c44e52" stroke="white" stroke-width="3" paint-order="stroke">${escape(reference.label)}</text>`)
  }
  return out.join('\n')
}

/** The smallest 1, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 × 10^k at least `value`: grid lines at round numbers. */
function niceStep (value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8]) if (step * magnitude >= value) return step * magnitude
  return 10 * magnitude
}

function formatTick (value: number): string {
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1).replace(/\.0$/, '') : value.toFixed(2).replace(/\.?0+$/, '')
}

function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}
