import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { transform } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyUs, groupOf, phaseWindows, SourceMapper, splitProfile, type CpuProfile } from '../../scripts/fleet/profile.js'
import type { FleetResults, NodeResult } from '../../scripts/fleet/results.js'

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'fleet-profile-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

const edge = { name: 'n1', role: 'edge', timeline: { spawnedUs: 1_000, readyUs: 2_000, completedUs: 5_000 } } as unknown as NodeResult
const results = { timeline: { pullsStartedUs: 3_000, transferEndedUs: 6_000 } } as unknown as FleetResults

describe('fleet profile phases', () => {
  it('cuts an edge into start-up, idle, pulling, seeding and after at the run\'s boundaries', () => {
    expect(phaseWindows(edge, results).map(w => [w.phase, w.start, w.end])).toEqual([
      ['start-up', 1_000, 2_000], ['idle', 2_000, 3_000], ['pulling', 3_000, 5_000], ['seeding', 5_000, 6_000], ['after', 6_000, Number.POSITIVE_INFINITY],
    ])
    // The gateway pulls nothing: it serves until the last edge completes.
    const gateway = { ...edge, role: 'gateway', timeline: { ...edge.timeline, completedUs: null } } as unknown as NodeResult
    expect(phaseWindows(gateway, results).find(w => w.phase === 'pulling')?.end).toBe(6_000)
  })

  it('charges each sample to the phase its timestamp falls in, idle apart, code to its source module', async () => {
    // A bundled file whose source map names src/swarm/scheduler.ts, as dist/ chunks do.
    const built = await transform('export function pump () { return 1 }\n', { sourcefile: 'src/swarm/scheduler.ts', loader: 'ts', sourcemap: 'external', format: 'esm' })
    const bundle = join(dir, 'chunk-TEST.js')
    await writeFile(bundle, built.code)
    await writeFile(bundle + '.map', built.map)
    const url = pathToFileURL(bundle).href
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 }, children: [2, 3, 5] },
        { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1, columnNumber: -1 } },
        { id: 3, callFrame: { functionName: 'pump', url, lineNumber: 0, columnNumber: 0 }, children: [4] },
        { id: 4, callFrame: { functionName: 'merge', url: 'file:///x/node_modules/@libp2p/peer-store/dist/src/store.js', lineNumber: 9, columnNumber: 2 } },
        { id: 5, callFrame: { functionName: 'onStreamRead', url: 'node:internal/stream_base_commons', lineNumber: 1, columnNumber: 1 }, children: [6] },
        { id: 6, callFrame: { functionName: 'decrypt', url: 'file:///x/node_modules/@chainsafe/libp2p-noise/dist/src/utils.js', lineNumber: 1, columnNumber: 1 } },
      ],
      // Samples at 1500 (start-up), 2500 (idle), 3500 and 4500 (pulling), 5500 (seeding), 6500 (after).
      startTime: 1_000,
      endTime: 7_000,
      samples: [3, 2, 3, 4, 2, 4, 6],
      timeDeltas: [500, 1_000, 1_000, 1_000, 1_000, 1_000, 100],
    }
    const times = await splitProfile(profile, phaseWindows(edge, results), new SourceMapper())
    expect(times.get('start-up')?.byGroup.get('shoal swarm')).toBe(500)
    expect(busyUs(times.get('idle') ?? { wallUs: 0, sampledUs: 0, byGroup: new Map(), byFunction: new Map(), byShoalCaller: new Map() })).toBe(0)
    const pulling = times.get('pulling')
    expect(pulling?.wallUs).toBe(2_000)
    expect(Object.fromEntries(pulling?.byGroup ?? [])).toEqual({ 'shoal swarm': 1_000, '@libp2p/peer-store': 1_000 })
    expect([...pulling?.byFunction.keys() ?? []]).toContain('pump src/swarm/scheduler.ts')
    expect(times.get('seeding')?.byGroup.get('(idle)')).toBe(1_000)
    expect(times.get('after')?.byGroup.get('@libp2p/peer-store')).toBe(1_000)
    // The peer store's merge was called by pump: charged to pump with pump's own time.
    expect(Object.fromEntries(pulling?.byShoalCaller ?? [])).toEqual({ 'pump src/swarm/scheduler.ts': 2_000 })
    // Below no shoal frame: named after the outermost frame, the event that started the work.
    expect(Object.fromEntries(times.get('after')?.byShoalCaller ?? [])).toEqual({
      'pump src/swarm/scheduler.ts': 1_000, '(no shoal frame) onStreamRead node:internal/stream_base_commons': 100,
    })
  })

  it('groups frames by package, node module, or shoal module', () => {
    expect(groupOf('f', '../node_modules/@chainsafe/libp2p-noise/src/utils.ts')).toBe('@chainsafe/libp2p-noise')
    expect(groupOf('f', 'node:internal/crypto/cipher')).toBe('node:internal')
    expect(groupOf('f', '../src/store/store.ts')).toBe('shoal store')
    expect(groupOf('writeBuffer', '')).toBe('(native)')
    expect(groupOf('(garbage collector)', '')).toBe('(garbage collector)')
  })
})
