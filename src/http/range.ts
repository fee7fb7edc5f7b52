import { RegistryError } from './errors.js'

/** An inclusive byte range of a blob, as HTTP writes them. */
export interface ByteRange {
  start: number
  end: number
}

// RFC 9110 §14.1.2: one range-spec; multipart answers are not worth their complexity here.
const SINGLE_RANGE = /^bytes=(\d*)-(\d*)$/

/**
 * The range a `Range` header asks of a blob of `size` bytes, or undefined for the whole
 * blob. RFC 9110 lets a server ignore a header it cannot parse, but a client that sent
 * one expects exactly those bytes, so anything we would not honour exactly (malformed,
 * several ranges, numbers past 2^53, start past the end) is a 416 with
 * `Content-Range: bytes *\/size`, as RFC 9110 §15.5.17 asks.
 */
export function parseRange (header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined
  const match = SINGLE_RANGE.exec(header.trim())
  const first = match?.[1]
  const last = match?.[2]
  if (first === undefined || last === undefined || (first === '' && last === '')) throw unsatisfiable(header, size, 'is not one "bytes=a-b", "bytes=a-" or "bytes=-n" range')
  const start = first === '' ? undefined : toSafeNumber(first)
  const end = last === '' ? undefined : toSafeNumber(last)
  if ((first !== '' && start === undefined) || (last !== '' && end === undefined)) throw unsatisfiable(header, size, 'has a number too large')
  if (start === undefined) {
    // A suffix range: the last n bytes (all of them when n exceeds the size).
    if (end === undefined || end === 0 || size === 0) throw unsatisfiable(header, size, 'asks for no bytes')
    return { start: Math.max(0, size - end), end: size - 1 }
  }
  if (start >= size) throw unsatisfiable(header, size, `starts at or past the end of the ${size}-byte blob`)
  if (end === undefined) return { start, end: size - 1 }
  if (end < start) throw unsatisfiable(header, size, 'ends before it starts')
  return { start, end: Math.min(end, size - 1) }
}

export function contentRangeOf (range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`
}

function toSafeNumber (digits: string): number | undefined {
  if (digits.length > 16) return undefined
  const value = Number(digits)
  return Number.isSafeInteger(value) ? value : undefined
}

function unsatisfiable (header: string, size: number, why: string): RegistryError {
  return new RegistryError('RANGE_INVALID', `Range ${JSON.stringify(header.slice(0, 100))} ${why}`, {
    detail: { range: header.slice(0, 100), size },
    headers: { 'Content-Range': `bytes */${size}` },
  })
}
