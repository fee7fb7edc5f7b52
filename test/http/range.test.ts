import { describe, expect, it } from 'vitest'
import { RegistryError } from '../../src/http/index.js'
import { parseRange } from '../../src/http/range.js'

function refusal (header: string, size: number): RegistryError {
  try {
    parseRange(header, size)
  } catch (err) {
    if (err instanceof RegistryError) return err
    throw err
  }
  throw new Error(`${header} was accepted`)
}

describe('parseRange', () => {
  it('reads the three single-range forms', () => {
    expect(parseRange(undefined, 100)).toBeUndefined()
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 })
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 })
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 })
  })

  it('clamps an end or a suffix past the blob to the blob (RFC 9110 §14.1.2)', () => {
    expect(parseRange('bytes=50-1000', 100)).toEqual({ start: 50, end: 99 })
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 })
  })

  it.each([
    ['bytes=100-', 'starts at the end'],
    ['bytes=200-300', 'starts past the end'],
    ['bytes=9-3', 'ends before it starts'],
    ['bytes=-0', 'asks for nothing'],
    ['bytes=-', 'has no numbers'],
    ['bytes=--5', 'is negative'],
    ['bytes=-5-9', 'is negative'],
    ['bytes=99999999999999999999-', 'is past 2^53'],
    ['bytes=0-99999999999999999999', 'is past 2^53'],
    ['bytes=0-1,4-5', 'has several ranges'],
    ['items=0-1', 'has another unit'],
    ['bytes=a-b', 'is not numbers'],
  ])('refuses %s (it %s) with RANGE_INVALID and Content-Range bytes */size', (header) => {
    const err = refusal(header, 100)
    expect(err.code).toBe('RANGE_INVALID')
    expect(err.status).toBe(416)
    expect(err.headers['Content-Range']).toBe('bytes */100')
  })

  it('refuses every range of an empty blob', () => {
    expect(refusal('bytes=0-', 0).code).toBe('RANGE_INVALID')
    expect(refusal('bytes=-1', 0).code).toBe('RANGE_INVALID')
  })
})
