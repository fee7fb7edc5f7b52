import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { HELP } from '../../src/cli/help.js'
import { ERROR_CATALOGUE, EXIT, describeError, formatMessage, isErrorCode, registryCodeOf, type ErrorCode } from '../../src/errors/index.js'
import { REGISTRY_ERRORS } from '../../src/http/index.js'

const SRC = join(import.meta.dirname, '../../src')
const codes = Object.keys(ERROR_CATALOGUE) as ErrorCode[]

/** Every error code the sources construct: `super('X'`, `new FooError('X'`, `readonly code = 'X'`. */
async function codesInSources (): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  const files = (await readdir(SRC, { recursive: true })).filter(f => f.endsWith('.ts'))
  for (const file of files) {
    const text = await readFile(join(SRC, file), 'utf8')
    for (const match of text.matchAll(/(?:super|new \w*Error)\(\s*(?:\d{3}, )?'([A-Z][A-Z0-9_]{2,})'|readonly code = '([A-Z][A-Z0-9_]{2,})'/g)) {
      found.set(match[1] ?? match[2] ?? '', file)
    }
    // Codes declared as a union type (`type BucketErrorCode = | 'BUCKET_NOT_FOUND' | …`).
    if (file.endsWith('errors.ts')) for (const match of text.matchAll(/\| '([A-Z][A-Z0-9_]{2,})'/g)) found.set(match[1] ?? '', file)
  }
  return found
}

/** The help's exit-code rows: exit status → the codes its text names. */
function helpExitTable (): Map<number, string[]> {
  const section = HELP.slice(HELP.indexOf('Exit codes'))
  const rows = new Map<number, string[]>()
  let current: number | undefined
  for (const line of section.split('\n').slice(1)) {
    const row = /^ {2}(\d+) +(.*)$/.exec(line)
    if (row !== null) current = Number(row[1])
    else if (!line.startsWith('       ')) break
    if (current === undefined) continue
    rows.set(current, [...rows.get(current) ?? [], ...(line.match(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b|\b(?:USAGE|ENOENT|INTERRUPTED)\b/g) ?? [])])
  }
  return rows
}

describe('the error catalogue', () => {
  it('has an entry for every code the sources throw', async () => {
    const missing = [...await codesInSources()].filter(([code]) => !isErrorCode(code)).map(([code, file]) => `${code} (${file})`)
    expect(missing).toEqual([])
  })

  it('agrees with the status an error class is given where it is thrown (the access policy\'s refusals)', async () => {
    const files = (await readdir(SRC, { recursive: true })).filter(f => f.endsWith('.ts'))
    let seen = 0
    for (const file of files) {
      const text = await readFile(join(SRC, file), 'utf8')
      for (const match of text.matchAll(/new \w*Error\((\d{3}), '([A-Z][A-Z0-9_]+)'/g)) {
        seen++
        expect(ERROR_CATALOGUE[match[2] as ErrorCode]?.status, `${match[2]} in ${file}`).toBe(Number(match[1]))
      }
    }
    expect(seen).toBeGreaterThan(0)
  })

  it('gives every code an error status, an exit code the help documents, and a message', () => {
    const exits = new Set<number>(Object.values(EXIT))
    for (const code of codes) {
      const { status, exit, message } = ERROR_CATALOGUE[code]
      expect(status, code).toBeGreaterThanOrEqual(400)
      expect(status, code).toBeLessThan(600)
      expect(exits.has(exit), code).toBe(true)
      expect(exit, code).not.toBe(EXIT.OK)
      expect(message.length, code).toBeGreaterThan(0)
    }
  })

  it('matches the exit-code table of `shoal --help`, row by row', () => {
    const table = helpExitTable()
    expect([...table.keys()]).toEqual([0, 1, 2, 3, 130])
    for (const exit of [EXIT.USAGE, EXIT.NOT_FOUND, EXIT.INTERRUPTED]) {
      const inCatalogue = codes.filter(c => ERROR_CATALOGUE[c].exit === exit).sort()
      expect(table.get(exit)?.sort(), `exit ${exit}`).toEqual(inCatalogue)
    }
    // Row 1 names no codes: it is every other one.
    expect(table.get(EXIT.FAILURE)).toEqual([])
  })

  it('maps shoal\'s own codes to a spec code for the registry API, and spec codes to themselves', () => {
    for (const code of codes) {
      const spec = registryCodeOf(code)
      expect(Object.keys(REGISTRY_ERRORS), code).toContain(spec)
    }
    expect(registryCodeOf('BUNDLE_NOT_FOUND')).toBe('MANIFEST_UNKNOWN')
    expect(registryCodeOf('DISK_FULL')).toBe('UNAVAILABLE')
    expect(registryCodeOf('BLOB_UNKNOWN')).toBe('BLOB_UNKNOWN')
    expect(registryCodeOf('MANIFEST_SYNTAX')).toBe('UNKNOWN')
    expect(registryCodeOf(undefined)).toBe('UNKNOWN')
  })

  it('describes any thrown value by its code: parse errors are usage errors, system codes pass through as failures', () => {
    expect(describeError(Object.assign(new Error('no store'), { code: 'STORE_NOT_FOUND' }))).toEqual({ code: 'STORE_NOT_FOUND', message: 'no store', status: 404, exit: 3 })
    expect(describeError(Object.assign(new TypeError('Unknown option --x'), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }))).toMatchObject({ code: 'USAGE', exit: 2, status: 400 })
    expect(describeError(Object.assign(new Error('denied'), { code: 'EACCES' }))).toEqual({ code: 'EACCES', message: 'denied', status: 500, exit: 1 })
    expect(describeError(new Error('plain'))).toEqual({ code: 'INTERNAL', message: 'plain', status: 500, exit: 1 })
    expect(describeError({ code: 'INTERRUPTED' })).toMatchObject({ exit: 130, message: ERROR_CATALOGUE.INTERRUPTED.message })
    expect(formatMessage('STORE_NOT_FOUND', { dir: '/x' })).toBe('there is no shoal store at /x')
  })
})
