// Parsing of the bed's command-line quantities: rates as tc writes them, sizes with
// binary and decimal suffixes, durations, loss percentages; and the benches' NAME=VALUE.

const RATE_UNITS: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  // tc's own spelling: "bps" is bytes per second there, not bits.
  bps: 8, kbps: 8e3, mbps: 8e6, gbps: 8e9,
}

/** `20mbit` → 20e6 (bits per second). `0` or `none` means unshaped and returns 0. */
export function parseRateBitsPerSecond (text: string): number {
  const trimmed = text.trim().toLowerCase()
  if (trimmed === '0' || trimmed === 'none' || trimmed === 'off') return 0
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(trimmed)
  const unit = match?.[2] === '' ? 'bit' : match?.[2]
  const factor = unit === undefined ? undefined : RATE_UNITS[unit]
  if (match === null || factor === undefined) throw new RangeError(`bad rate ${JSON.stringify(text)} (use tc units: 20mbit, 500kbit, 1gbit)`)
  const bits = Math.round(Number(match[1]) * factor)
  if (bits < 8000) throw new RangeError(`rate ${text} is below 8kbit; tc cannot shape that usefully`)
  return bits
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3,
  kb: 1e3, mb: 1e6, gb: 1e9,
}

/** `64MiB` → 67108864; `64MB` → 64000000; bare `k`/`m`/`g` are binary. */
export function parseSizeBytes (text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim())
  const factor = match === null ? undefined : SIZE_UNITS[(match[2] ?? '').toLowerCase()]
  if (match === null || factor === undefined) throw new RangeError(`bad size ${JSON.stringify(text)} (e.g. 64MiB, 500MB, 4096)`)
  const bytes = Math.round(Number(match[1]) * factor)
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new RangeError(`size ${text} must be at least one byte`)
  return bytes
}

const DURATION_UNITS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000, '': 1 }

/** `10ms` → 10, `1.5s` → 1500, `500us` → 0.5; a bare number is milliseconds. */
export function parseDurationMs (text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(us|ms|s|)$/i.exec(text.trim())
  const factor = match === null ? undefined : DURATION_UNITS[(match[2] ?? '').toLowerCase()]
  if (match === null || factor === undefined) throw new RangeError(`bad duration ${JSON.stringify(text)} (e.g. 10ms, 1s)`)
  return Number(match[1]) * factor
}

/** `1`, `1%` or `0.5` → percent of packets dropped, 0 ≤ p < 100. */
export function parseLossPercent (text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*%?$/.exec(text.trim())
  const percent = match === null ? Number.NaN : Number(match[1])
  if (!(percent >= 0 && percent < 100)) throw new RangeError(`bad loss ${JSON.stringify(text)} (a percentage, 0 ≤ loss < 100)`)
  return percent
}

export function formatBytes (bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2)} ${units[unit] ?? ''}`
}

export function formatRate (bitsPerSecond: number): string {
  if (bitsPerSecond === 0) return 'unshaped'
  if (bitsPerSecond >= 1e9) return `${bitsPerSecond / 1e9} Gbit/s`
  if (bitsPerSecond >= 1e6) return `${bitsPerSecond / 1e6} Mbit/s`
  return `${bitsPerSecond / 1e3} kbit/s`
}

/** `NAME=VALUE`, an environment variable for a B group (`--b-env`): the value may be empty or hold `=`. */
export function parseEnvAssignment (text: string): [name: string, value: string] {
  const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(text)
  if (match?.[1] === undefined) throw new RangeError(`bad variable ${JSON.stringify(text)} (NAME=VALUE, NAME a shell variable name)`)
  return [match[1], match[2] ?? '']
}
