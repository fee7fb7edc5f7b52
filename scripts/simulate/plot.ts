// plot.svg: two panels against swarm size (log x axis) — completion over the lower bound
// (last and median edge) and the gateway's upload over the bundle size, each with its goal.
// With several runs per size, a point is the median and a bar spans min to max.
// Hand-written SVG, no dependencies.
import type { SizeSummary, Spread } from './report.js'

const PANEL_W = 420
const PANEL_H = 300
const MARGIN = { left: 56, right: 16, top: 50, bottom: 46 }
const GAP = 24

interface Series {
  label: string
  colour: string
  points: Array<[number, Spread]>
}

interface Goal {
  label: string
  y: number
}

export function plotSvg (summaries: SizeSummary[], title: string): string {
  const sorted = [...summaries].sort((a, b) => a.nodes - b.nodes)
  const base = sorted.find(s => s.nodes === 10) ?? sorted[0]
  const baseLast = base?.lastOverLowerBound.median ?? Infinity
  const completionGoal: Goal[] = base === undefined || !Number.isFinite(baseLast)
    ? []
    : [{ label: `goal at 1,000 nodes: ≤ 1.5 × the ${base.nodes}-node ${fmt(baseLast)}`, y: 1.5 * baseLast }]
  const left = panel(0, 'completion / lower bound (bundle ÷ link rate)', [
    { label: 'last edge', colour: '#c0392b', points: sorted.map(s => [s.nodes, s.lastOverLowerBound]) },
    { label: 'median edge', colour: '#2471a3', points: sorted.map(s => [s.nodes, s.medianOverLowerBound]) },
  ], completionGoal)
  const right = panel(PANEL_W + GAP, 'gateway upload / bundle size', [
    { label: 'gateway upload', colour: '#117a65', points: sorted.map(s => [s.nodes, s.gatewayUploadOverBundle]) },
  ], [{ label: 'goal: ≤ 1.5 at every size', y: 1.5 }])
  const width = 2 * PANEL_W + GAP
  const height = PANEL_H + 28
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="16" text-anchor="middle" font-size="13">${escape(title)}</text>`,
    `<g transform="translate(0,24)">`,
    left,
    right,
    '</g>',
    '</svg>',
    '',
  ].join('\n')
}

function panel (x0: number, title: string, series: Series[], goals: Goal[]): string {
  const points = series.flatMap(s => s.points.map(([x, y]): [number, number] => [x, y.max])).filter(([, y]) => Number.isFinite(y))
  const xs = points.map(([x]) => x)
  // A little room either side of the smallest and largest size, so their points clear the frame.
  const xMin = Math.log10(Math.min(...xs)) - 0.15
  const xMax = Math.max(xMin + 1, Math.log10(Math.max(...xs)) + 0.15)
  const yTop = niceCeil(Math.max(...points.map(([, y]) => y), ...goals.map(g => g.y), 1) * 1.1)
  const plotW = PANEL_W - MARGIN.left - MARGIN.right
  const plotH = PANEL_H - MARGIN.top - MARGIN.bottom
  const sx = (n: number): number => MARGIN.left + (Math.log10(n) - xMin) / (xMax - xMin) * plotW
  const sy = (v: number): number => MARGIN.top + plotH - v / yTop * plotH
  const out: string[] = [`<g transform="translate(${x0},0)">`]
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="14" text-anchor="middle" font-weight="bold">${escape(title)}</text>`)
  // Grid and axes.
  const yStep = niceStep(yTop / 5)
  const tickDigits = Number.isInteger(yStep) ? 0 : Number.isInteger(yStep * 10) ? 1 : 2
  for (let v = 0; v <= yTop + 1e-9; v += yStep) {
    const y = sy(v)
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${MARGIN.left - 6}" y="${y + 4}" text-anchor="end">${v.toFixed(tickDigits)}</text>`)
  }
  // Ticks at the simulated sizes.
  for (const n of [...new Set(xs)]) {
    const x = sx(n).toFixed(1)
    out.push(`<line x1="${x}" x2="${x}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#e5e5e5"/>`)
    out.push(`<text x="${x}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${n.toLocaleString('en-US')}</text>`)
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`)
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${MARGIN.top + plotH + 34}" text-anchor="middle">nodes (log scale)</text>`)
  // Goals.
  for (const goal of goals) {
    const y = sy(goal.y)
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#7f8c8d" stroke-dasharray="6 4"/>`)
    out.push(`<text x="${MARGIN.left + plotW - 4}" y="${y - 4}" text-anchor="end" fill="#555">${escape(goal.label)}</text>`)
  }
  // Series with their values.
  series.forEach((s, i) => {
    const finite = s.points.filter(([, y]) => Number.isFinite(y.max)).map(([x, y]): [number, number, Spread] => [x, y.median, y])
    if (finite.length > 1) {
      out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2" points="${finite.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`)
    }
    for (const [x, y, range] of finite) {
      if (range.max > range.min) {
        const cx = sx(x).toFixed(1)
        out.push(`<line x1="${cx}" x2="${cx}" y1="${sy(range.min).toFixed(1)}" y2="${sy(range.max).toFixed(1)}" stroke="${s.colour}" stroke-width="1.5" opacity="0.6"/>`)
      }
      out.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="3.5" fill="${s.colour}"/>`)
      out.push(`<text x="${sx(x).toFixed(1)}" y="${(sy(y) + (i === 0 ? -8 : 16)).toFixed(1)}" text-anchor="middle" fill="${s.colour}">${fmt(y)}</text>`)
    }
    // The legend: one row between the panel title and the plot.
    const lx = MARGIN.left + i * 110
    out.push(`<line x1="${lx}" x2="${lx + 16}" y1="28" y2="28" stroke="${s.colour}" stroke-width="2"/>`)
    out.push(`<text x="${lx + 20}" y="32">${escape(s.label)}</text>`)
  })
  out.push('</g>')
  return out.join('\n')
}

function niceStep (raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw))
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power
  return 10 * power
}

function niceCeil (value: number): number {
  const step = niceStep(value / 5)
  return Math.ceil(value / step) * step
}

function fmt (value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(2)
}

function escape (text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
