import type { Writable } from 'node:stream'

/** Redraw at most this often; a terminal needs no more. */
const REDRAW_INTERVAL_MS = 200

/**
 * A one-line progress bar with rate and ETA on a terminal; silent when stderr is a pipe or
 * a file, so scripts see only the result.
 */
export class ProgressBar {
  private readonly startedAt = Date.now()
  private lastDrawAt = 0
  private readonly enabled: boolean

  constructor (private readonly out: Writable & { isTTY?: boolean }, private readonly label: string, private total: number | undefined, enabled = true) {
    this.enabled = enabled && out.isTTY === true
  }

  update (done: number, extra = '', total?: number): void {
    if (total !== undefined) this.total = total
    if (!this.enabled) return
    const now = Date.now()
    if (now - this.lastDrawAt < REDRAW_INTERVAL_MS) return
    this.lastDrawAt = now
    this.out.write('\r\x1b[K' + this.render(done, now) + (extra !== '' ? ` ${extra}` : ''))
  }

  finish (): void {
    if (this.enabled) this.out.write('\r\x1b[K')
  }

  private render (done: number, now: number): string {
    const seconds = Math.max((now - this.startedAt) / 1000, 0.001)
    const rate = done / seconds
    if (this.total === undefined || this.total === 0) return `${this.label} ${formatBytes(done)} ${formatBytes(rate)}/s`
    const fraction = Math.min(done / this.total, 1)
    const width = 24
    const filled = Math.round(fraction * width)
    const eta = rate > 0 ? (this.total - done) / rate : Infinity
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0)}% ` +
      `${formatBytes(done)}/${formatBytes(this.total)} ${formatBytes(rate)}/s ETA ${formatDuration(eta)}`
  }
}

export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit] ?? 'B'}`
}

function formatDuration (seconds: number): string {
  if (!Number.isFinite(seconds)) return '--'
  const s = Math.round(seconds)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}
