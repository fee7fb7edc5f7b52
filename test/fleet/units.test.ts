import { describe, expect, it } from 'vitest'
import { tcpCounters } from '../../scripts/fleet/bed.js'
import { edgeGroup, parseFleetArgs, UsageError, withFlags } from '../../scripts/fleet/options.js'
import { renderPlot } from '../../scripts/fleet/plot.js'
import { abLines, median, summaryTable, type FleetResults } from '../../scripts/fleet/results.js'
import { parseDurationMs, parseEnvAssignment, parseLossPercent, parseRateBitsPerSecond, parseSizeBytes } from '../../scripts/fleet/units.js'

describe('a host\'s TCP counters', () => {
  it('reads segments sent again and received twice from /proc/net/snmp and netstat', () => {
    const text = [
      'Ip: Forwarding DefaultTTL', 'Ip: 1 64',
      'Tcp: RtoAlgorithm InSegs OutSegs RetransSegs InErrs', 'Tcp: 1 900 800 12 0',
      'TcpExt: SyncookiesSent TCPDSACKOldSent TCPDSACKOfoSent TCPDSACKRecv', 'TcpExt: 0 5 2 9',
    ].join('\n')
    expect(tcpCounters(text)).toEqual({ retransmittedSegments: 12, duplicateSegmentsReceived: 7 })
    expect(tcpCounters('Ip: Forwarding\nIp: 1\n')).toBeUndefined()
  })
})

describe('fleet option units', () => {
  it('reads rates the way tc writes them, bps being bytes', () => {
    expect(parseRateBitsPerSecond('20mbit')).toBe(20e6)
    expect(parseRateBitsPerSecond('500kbit')).toBe(500e3)
    expect(parseRateBitsPerSecond('1gbit')).toBe(1e9)
    expect(parseRateBitsPerSecond('1mbps')).toBe(8e6)
    expect(parseRateBitsPerSecond('0')).toBe(0)
    expect(() => parseRateBitsPerSecond('fast')).toThrow(RangeError)
    expect(() => parseRateBitsPerSecond('20furlongs')).toThrow(RangeError)
  })

  it('reads sizes with binary and decimal suffixes', () => {
    expect(parseSizeBytes('64MiB')).toBe(64 * 1024 * 1024)
    expect(parseSizeBytes('64MB')).toBe(64e6)
    expect(parseSizeBytes('4m')).toBe(4 * 1024 * 1024)
    expect(parseSizeBytes('4096')).toBe(4096)
    expect(() => parseSizeBytes('0')).toThrow(RangeError)
    expect(() => parseSizeBytes('big')).toThrow(RangeError)
  })

  it('reads NAME=VALUE for --b-env (fleet.ts and bench-containerd.ts): an empty value, an = inside it; not a bad name', () => {
    expect(parseEnvAssignment('SHOAL_DIRECT_IO=0')).toEqual(['SHOAL_DIRECT_IO', '0'])
    expect(parseEnvAssignment('NODE_OPTIONS=--max-semi-space-size=16')).toEqual(['NODE_OPTIONS', '--max-semi-space-size=16'])
    expect(parseEnvAssignment('X=')).toEqual(['X', ''])
    for (const bad of ['1X=1', '=1', 'X', 'A B=1', '']) expect(() => parseEnvAssignment(bad), bad).toThrow(RangeError)
  })

  it('reads durations in ms by default and loss as a percentage', () => {
    expect(parseDurationMs('10ms')).toBe(10)
    expect(parseDurationMs('1.5s')).toBe(1500)
    expect(parseDurationMs('500us')).toBe(0.5)
    expect(parseDurationMs('7')).toBe(7)
    expect(parseLossPercent('1%')).toBe(1)
    expect(parseLossPercent('0.5')).toBe(0.5)
    expect(() => parseLossPercent('100')).toThrow(RangeError)
  })

  it('parses the command line, and refuses a byzantine fault without peers', () => {
    const parsed = parseFleetArgs(['--nodes', '8', '--rate=20mbit', '--delay', '10ms', '--size', '64MiB', '--mode', 'registry'])
    expect(parsed.kind).toBe('run')
    if (parsed.kind !== 'run') return
    expect(parsed.options).toMatchObject({ nodes: 8, rateBitsPerSecond: 20e6, delayMs: 10, sizeBytes: 64 * 1024 * 1024, mode: 'registry', faults: 'none' })
    expect(parseFleetArgs(['--cleanup', 'shfabc12'])).toEqual({ kind: 'cleanup', prefix: 'shfabc12', force: false })
    expect(() => parseFleetArgs(['--mode', 'registry', '--faults', 'byzantine'])).toThrow(UsageError)
    expect(() => parseFleetArgs(['--nodes', '1'])).toThrow(UsageError)
    expect(() => parseFleetArgs(['--frobnicate'])).toThrow(UsageError)
  })

  it('takes an A/B run\'s flags for every second edge, and replaces a shipped flag of the same name', () => {
    const parsed = parseFleetArgs(['--nodes', '9', '--b-node-flag=--max-semi-space-size=16', '--b-env', 'SHOAL_X=1'])
    expect(parsed.kind === 'run' && parsed.options.bNodeFlags).toEqual(['--max-semi-space-size=16'])
    expect(parsed.kind === 'run' && parsed.options.bEnv).toEqual({ SHOAL_X: '1' })
    expect(() => parseFleetArgs(['--nodes', '4', '--b-env', 'X=1'])).toThrow(/at least two edges/)
    expect(() => parseFleetArgs(['--mode', 'registry', '--nodes', '9', '--b-env', 'X=1'])).toThrow(/need --mode shoal/)
    expect(() => parseFleetArgs(['--b-node-flag', 'rm -rf'])).toThrow(UsageError)
    expect(() => parseFleetArgs(['--b-env', '1X'])).toThrow(UsageError)
    expect([1, 2, 3, 4].map(edgeGroup)).toEqual(['A', 'B', 'A', 'B'])
    expect(withFlags(['--max-semi-space-size=1', '--abort-on-uncaught-exception'], ['--max-semi-space-size=16', '--no-opt']))
      .toEqual(['--abort-on-uncaught-exception', '--max-semi-space-size=16', '--no-opt'])
  })
})

describe('fleet results', () => {
  const results: FleetResults = {
    runId: 'shftest1',
    mode: 'registry',
    nodes: 3,
    rateBitsPerSecond: 8e6,
    delayMs: 10,
    lossPercent: 0,
    bundleBytes: 4 * 1048576,
    lowerBoundSeconds: 4.194,
    startedAt: '2024-01-01T00:00:00.000Z',
    transferSeconds: 9,
    totalSeconds: 12,
    gatewayUploadBytes: 8.4 * 1048576,
    gatewayUploadCopies: 2.1,
    allComplete: true,
    allVerified: true,
    perNode: [
      { name: 'n0', role: 'gateway', ip: '10.213.0.1', namespace: 'x-n0', completionSeconds: null, completionOverLowerBound: null, verified: true, problems: [], uploadedBytes: 8.4 * 1048576, downloadedBytes: 1000, cpuSeconds: 0.1, peakRssBytes: 1e7, attempts: 0 },
      { name: 'n1', role: 'edge', ip: '10.213.0.2', namespace: 'x-n1', completionSeconds: 8.5, completionOverLowerBound: 2.03, verified: true, problems: [], uploadedBytes: 1000, downloadedBytes: 4.2 * 1048576, cpuSeconds: 0.3, systemCpuSeconds: 0.12, cpuSecondsPerGiB: 75, startupCpuSeconds: 0.85, peakRssBytes: 2e7, attempts: 1, daemonStats: { bytesDownloaded: 4 * 1048576, chunksFetchedTwice: 0, requests: { first: 4, again: 1, moved: 1, extra: 0, overdue: 0, endGame: 0, duplicatesAfter: { moved: 1 } } } },
      { name: 'n2', role: 'edge', ip: '10.213.0.3', namespace: 'x-n2', completionSeconds: 9, completionOverLowerBound: 2.15, verified: true, problems: [], uploadedBytes: 1000, downloadedBytes: 4.2 * 1048576, cpuSeconds: null, peakRssBytes: null, attempts: 2 },
    ],
    processes: [{ name: 'docker-registry', node: 'n0', cpuSeconds: 0.1, peakRssBytes: 1e7 }],
    machineCpu: { cores: 2, busiestSecondPercent: 40, busiestSecondCores: 0.8, meanPercent: 20, perSecondPercent: [10, 40] },
    processesCpuPercent: 12.5,
    faults: [{ kind: 'kill', node: 'n2', atSeconds: 4, detail: 'skopeo <killed>', costSeconds: 0.5, extraDownloadBytes: 2e6 }],
    options: {},
    problems: [],
  }

  it('prints one row per node with completion over the lower bound', () => {
    const table = summaryTable(results)
    expect(table).toMatch(/^n1\s+edge\s+10\.213\.0\.2\s+8\.50\s+2\.03\s+4\.20 MiB\s+1\.050\s+1000 B\s+0\.30\s+0\.12\s+75\.0\s+0\.85/m)
    expect(table).toContain('processes under test 12.5% of the machine')
    expect(table).toContain('n1 wire: link 1.050x the bundle = chunk payload 1.000x (0 fetched twice) + headers, encryption and gossip 0.050x; requests: first 4, again 1 (moved 1), extra 0 (overdue 0, end game 0); twice after: moved 1')
    expect(table).toContain('lower bound 4.19 s')
    expect(table).toContain('fault kill on n2 at 4.00 s')
    expect(table).toContain('every honest node complete and verified')
  })

  it('draws a bar per node in each panel, the lower bound and the faults', () => {
    const svg = renderPlot(results)
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.match(/<rect x=/g)?.length).toBe(6)
    expect(svg).toContain('lower bound 4.2 s')
    expect(svg).toContain('one copy of the bundle')
    expect(svg).toContain('faults: kill')
  })

  it('compares an A/B run\'s groups by their medians, B over A', () => {
    const edge = results.perNode[1]!
    const ab: FleetResults = {
      ...results,
      options: { bNodeFlags: ['--max-semi-space-size=16'], bEnv: { X: '1' } },
      perNode: [
        results.perNode[0]!,
        { ...edge, name: 'n1', group: 'A', cpuSeconds: 4, wakeupsPerSecond: 300 },
        { ...edge, name: 'n2', group: 'B', cpuSeconds: 3, wakeupsPerSecond: 200 },
        { ...edge, name: 'n3', group: 'A', cpuSeconds: 6, wakeupsPerSecond: 320 },
        { ...edge, name: 'n4', group: 'B', cpuSeconds: 2, wakeupsPerSecond: 100 },
      ],
    }
    const lines = abLines(ab)
    expect(lines[0]).toBe('A/B in one run: group B (n2 n4) with --max-semi-space-size=16 X=1; group A (n1 n3) as shipped; medians:')
    expect(lines).toContain('  cpu s       A      5.00  B      2.50  B/A 0.500')
    expect(lines).toContain('  wake-ups/s  A       310  B       150  B/A 0.484')
    expect(summaryTable(ab)).toContain('B/A 0.500')
    // Not an A/B run: nothing to say.
    expect(abLines(results)).toEqual([])
  })

  it('takes the median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 2, 3])).toBe(2.5)
    expect(median([])).toBeNull()
  })
})
