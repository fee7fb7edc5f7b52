import { ConfigError } from '../settings/index.js'

const UNITS: Record<string, number> = {
  '': 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
  kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8,
}

/**
 * A transfer rate in bytes per second from what people write on the command line: `500k`,
 * `10MB`, `20mbit` (tc's spelling, common for metered links), `8MiB/s`.
 */
export function parseRate (text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)(?:\/s)?$/i.exec(text.trim())
  const unit = UNITS[(match?.[2] ?? '').toLowerCase()]
  if (match?.[1] === undefined || unit === undefined) {
    throw new ConfigError(`rate ${JSON.stringify(text)} is not understood; write e.g. 500k, 10MB, 8MiB/s or 20mbit`)
  }
  return Math.round(Number(match[1]) * unit)
}

/** A size in bytes: `512M`, `20GB`, `1GiB`, `2TiB` (a gateway's cache disk). */
export function parseSize (text: string): number {
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)$/i.exec(text.trim())
  const unit = UNITS[(match?.[2] ?? '').toLowerCase()]
  if (match?.[1] === undefined || unit === undefined || (match[2] ?? '').toLowerCase().endsWith('bit')) {
    throw new ConfigError(`size ${JSON.stringify(text)} is not understood; write e.g. 512M, 20GB, 1GiB or 2TiB`)
  }
  return Math.round(Number(match[1]) * unit)
}
