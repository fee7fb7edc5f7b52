import { describe, expect, it } from 'vitest'
import {
  ALL_NODES, LabelError, PlatformError, SelectorError, detectPlatform, formatLabels, formatPlatform, formatSelector, nodeLabels, parsePlatform,
  parseSelector, platformLabels, platformMatches, platformOfLabels, selectorMatches,
} from '../../src/labels/index.js'
import { resolveConfig } from '../../src/daemon/index.js'

describe('node labels', () => {
  it('maps Node\'s platform and architecture to the OCI names an image index uses', () => {
    expect(detectPlatform('linux', 'x64')).toEqual({ os: 'linux', architecture: 'amd64' })
    expect(detectPlatform('linux', 'arm64')).toEqual({ os: 'linux', architecture: 'arm64' })
    expect(detectPlatform('linux', 'arm', '7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' })
    expect(detectPlatform('win32', 'ia32')).toEqual({ os: 'windows', architecture: '386' })
    expect(detectPlatform('linux', 'ppc64')).toEqual({ os: 'linux', architecture: 'ppc64le' })
    // This machine: whatever it is, in OCI names.
    expect(['amd64', 'arm64', 'arm']).toContain(detectPlatform().architecture)
  })

  it('puts the operator\'s labels over the detected ones and refuses malformed or repeated ones with a typed error', () => {
    const detected = platformLabels({ os: 'linux', architecture: 'amd64' })
    expect(nodeLabels(['site=a', 'rack=r-1'], detected)).toEqual({ os: 'linux', arch: 'amd64', site: 'a', rack: 'r-1' })
    expect(nodeLabels(['arch=arm64'], detected)).toMatchObject({ arch: 'arm64' })
    expect(() => nodeLabels(['site'], detected)).toThrow(LabelError)
    expect(() => nodeLabels(['site='], detected)).toThrow(/the value "" is not a label value/)
    expect(() => nodeLabels(['Site=a'], detected)).toThrow(/the key "Site" is not a label key/)
    expect(() => nodeLabels(['site=a,b'], detected)).toThrow(LabelError)
    expect(() => nodeLabels(['site=a', 'site=b'], detected)).toThrow(/given twice/)
    expect(formatLabels({ site: 'a', arch: 'amd64' })).toBe('arch=amd64,site=a')
  })

  it('reads --label from flags, variables and the config file, and reports a bad one as CONFIG_INVALID', () => {
    const detected = { os: 'linux', arch: 'amd64' }
    const viaFlags = resolveConfig({ flags: { labels: ['site=a', 'tier=edge'] }, env: {}, file: {} }, '/tmp/x', detected)
    expect(viaFlags.labels).toEqual({ os: 'linux', arch: 'amd64', site: 'a', tier: 'edge' })
    expect(resolveConfig({ flags: {}, env: {}, file: {} }, '/tmp/x', detected).labels).toEqual(detected)
    expect(() => resolveConfig({ flags: { labels: ['nokey'] }, env: {}, file: {} }, '/tmp/x', detected))
      .toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('--label') as unknown }) as Error)
  })
})

describe('selectors', () => {
  const edgeA = { os: 'linux', arch: 'amd64', site: 'a' }
  const edgeB = { os: 'linux', arch: 'arm64', site: 'a' }

  it('matches a node only when every KEY=VALUE holds', () => {
    const selector = parseSelector('arch=amd64, site=a')
    expect(selectorMatches(selector, edgeA)).toBe(true)
    expect(selectorMatches(selector, edgeB)).toBe(false)
    expect(selectorMatches(selector, { arch: 'amd64' })).toBe(false)
    expect(selectorMatches(parseSelector(''), edgeB)).toBe(true)
    expect(parseSelector('  ')).toBe(ALL_NODES)
  })

  it('has one canonical text, sorted by key, whatever order it was written in', () => {
    expect(formatSelector(parseSelector('site=a,arch=amd64'))).toBe('arch=amd64,site=a')
    expect(formatSelector(parseSelector('arch=amd64,arch=amd64'))).toBe('arch=amd64')
  })

  it('refuses a malformed selector with SELECTOR_INVALID, saying what was wrong', () => {
    for (const [text, why] of [
      ['arch', /"arch" is not KEY=VALUE/], ['arch=amd64,', /an empty term/], ['arch==amd64', /not a label value/],
      ['=amd64', /not a label key/], ['arch=amd64,arch=arm64', /at once, which no node is/],
    ] as const) {
      let thrown: unknown
      try { parseSelector(text) } catch (err) { thrown = err }
      expect(thrown, text).toBeInstanceOf(SelectorError)
      expect((thrown as SelectorError).code).toBe('SELECTOR_INVALID')
      expect((thrown as Error).message, text).toMatch(why)
    }
    expect(() => parseSelector(Array.from({ length: 17 }, (_, i) => `k${i}=v`).join(','))).toThrow(/more than 16/)
  })
})

describe('platforms', () => {
  it('parses OS/ARCH[/VARIANT] and refuses anything else with PLATFORM_INVALID', () => {
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' })
    expect(formatPlatform(parsePlatform('linux/amd64'))).toBe('linux/amd64')
    for (const bad of ['linux', 'linux/', 'Linux/amd64', 'a/b/c/d']) expect(() => parsePlatform(bad), bad).toThrow(PlatformError)
  })

  it('matches an index entry to a node by os and arch, and by variant only when both name one', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true)
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false)
    expect(platformMatches({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' })).toBe(false)
    expect(platformOfLabels({ os: 'linux', arch: 'arm', variant: 'v7' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' })
    expect(platformOfLabels({ site: 'a' })).toBeUndefined()
  })
})
