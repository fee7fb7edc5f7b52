// A small fleet in CI: 4 hosts, a few MB, shaped links, every run checked for leftovers.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { describeLayout } from '../../scripts/fleet/bundle.js'
import { DEFAULT_OPTIONS, type FleetOptions } from '../../scripts/fleet/options.js'
import { runFleet } from '../../scripts/fleet/run.js'
import { summaryTable, type FleetResults } from '../../scripts/fleet/results.js'
import { cleanupLeftovers, findLeftovers, newRunId } from '../../scripts/fleet/runs.js'
import { REPO_ROOT, shoalDaemonAvailability } from '../../scripts/fleet/shoal-mode.js'
import { bedUnavailableReason, REGISTRY_TOOLS } from './bed-support.js'

const bedReason = bedUnavailableReason(REGISTRY_TOOLS)
const daemon = bedReason === undefined ? await shoalDaemonAvailability() : { available: false, reason: bedReason }
const NO_LEFTOVERS = { namespaces: [], links: [], iptablesRules: [], processes: [] }
const SIZE_BYTES = 3 * 1024 * 1024
/** The swarm's chunk: a chunk fetched twice adds at most this to an edge's payload. */
const CHUNK_BYTES = 1024 * 1024
/**
 * The swarm test's base layer: 12 chunks, so that duplicates can be bounded as a share (on 3
 * chunks one duplicate is a third of the bundle, and any bound is too tight under load or too
 * loose to catch a scheduler that asks everything twice).
 */
const SWARM_SIZE_BYTES = 12 * CHUNK_BYTES
/**
 * Chunks an edge may fetch twice, as a share of the bundle's: 2 of 12, a move and an end-game
 * copy (what load alone was seen to cause). With the end game's lateness and threshold rules
 * broken on purpose (every request late at once, 2026-12-07 02:42, load 11) edges fetched 0, 1
 * and 3 chunks twice: only an edge that had the end game's chances is caught.
 */
const MAX_TWICE_SHARE = 1 / 6
// A run takes 10–30 s on an idle machine; the margin is for a CI machine busy with other suites.
const REGISTRY_TEST_TIMEOUT_MS = 60_000
const SHOAL_TEST_TIMEOUT_MS = 120_000
/** The runner starts under tsx and brings a bed up before it is interrupted: past 60 s once at load 25-34. */
const INTERRUPT_TEST_TIMEOUT_MS = 180_000

let dir: string
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'fleet-test-')) })
afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

function smallFleet (name: string, overrides: Partial<FleetOptions>): FleetOptions {
  return {
    ...DEFAULT_OPTIONS,
    nodes: 4,
    rateBitsPerSecond: 40e6,
    delayMs: 5,
    sizeBytes: SIZE_BYTES,
    outDir: join(dir, name, 'out'),
    workDir: join(dir, name, 'work'),
    timeoutSeconds: 40,
    quiet: process.env.FLEET_TEST_VERBOSE !== '1',
    ...overrides,
  }
}

/** The fields every results.json has, with values a real run can have. */
function expectSaneResults (results: FleetResults, options: FleetOptions): void {
  expect(results.nodes).toBe(options.nodes)
  expect(results.mode).toBe(options.mode)
  expect(results.rateBitsPerSecond).toBe(options.rateBitsPerSecond)
  expect(results.delayMs).toBe(options.delayMs)
  // The base layer plus a small app layer, config, manifest and index.
  expect(results.bundleBytes).toBeGreaterThan(options.sizeBytes)
  expect(results.bundleBytes).toBeLessThan(options.sizeBytes * 1.1)
  expect(results.lowerBoundSeconds).toBeCloseTo(results.bundleBytes / (options.rateBitsPerSecond / 8), 2)
  expect(results.perNode).toHaveLength(options.nodes)
  expect(results.allComplete).toBe(true)
  expect(results.allVerified).toBe(true)
  const edges = results.perNode.filter(n => n.role === 'edge')
  expect(edges).toHaveLength(options.nodes - 1)
  for (const edge of edges) {
    expect(edge.problems).toEqual([])
    // No edge beats its own link.
    expect(edge.completionSeconds).toBeGreaterThanOrEqual(results.lowerBoundSeconds ?? 0)
    expect(edge.completionSeconds).toBeLessThan(options.timeoutSeconds)
    expect(edge.downloadedBytes).toBeGreaterThanOrEqual(results.bundleBytes)
    expect(edge.cpuSeconds).toBeGreaterThan(0)
    expect(edge.peakRssBytes).toBeGreaterThan(1024 * 1024)
  }
  expect(results.perNode[0]?.role).toBe('gateway')
  expect(results.gatewayUploadBytes).toBe(results.perNode[0]?.uploadedBytes)
  expect(results.gatewayUploadBytes).toBeGreaterThanOrEqual(results.bundleBytes)
  expect(results.machineCpu.cores).toBeGreaterThan(0)
  expect(results.machineCpu.busiestSecondPercent).toBeGreaterThan(0)
  expect(results.machineCpu.busiestSecondPercent).toBeLessThanOrEqual(100)
}

async function sha256Hex (path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex')
}

describe.skipIf(bedReason !== undefined)('fleet, registry mode', () => {
  it(`pulls one image onto every edge at once, byte for byte, and leaves nothing behind${bedReason === undefined ? '' : ` [skipped: ${bedReason}]`}`, async () => {
    const options = smallFleet('registry', { mode: 'registry', keepData: true })
    const runId = newRunId()
    const { results, outDir, workDir, teardownProblems } = await runFleet(options, { runId, signal: AbortSignal.timeout(REGISTRY_TEST_TIMEOUT_MS - 10_000) })
    expect(teardownProblems).toEqual([])
    expectSaneResults(results, options)
    // Every edge pulled from the gateway alone: one copy each left its link.
    expect(results.gatewayUploadCopies).toBeGreaterThanOrEqual(options.nodes - 1)
    expect(results.processes.map(p => p.name)).toEqual(['docker-registry'])

    // Checked here independently of the runner's own comparison: every blob of the
    // source is on every edge, with the same bytes.
    const source = await describeLayout(join(workDir, 'images', 'app1'), '1.0')
    for (let i = 1; i < options.nodes; i++) {
      const pulled = join(workDir, 'nodes', `n${i}`, 'image', 'blobs', 'sha256')
      const names = new Set(await readdir(pulled))
      for (const digest of source.blobs.keys()) {
        const hex = digest.slice('sha256:'.length)
        expect(names.has(hex), `n${i} lacks ${digest}`).toBe(true)
        expect(await sha256Hex(join(pulled, hex))).toBe(hex)
        // Buffer.equals, not toEqual: vitest's deep equality walks megabytes byte by byte, for tens of seconds.
        expect((await readFile(join(pulled, hex))).equals(await readFile(join(source.layout, 'blobs', 'sha256', hex))), `n${i}: ${digest} differs`).toBe(true)
      }
    }

    const written = JSON.parse(await readFile(join(outDir, 'results.json'), 'utf8')) as FleetResults
    expect(written.perNode.map(n => n.completionSeconds)).toEqual(results.perNode.map(n => n.completionSeconds))
    expect(await readFile(join(outDir, 'plot.svg'), 'utf8')).toMatch(/^<svg[\s\S]*lower bound[\s\S]*<\/svg>\n$/)
    expect(await findLeftovers(runId)).toEqual(NO_LEFTOVERS)
    await rm(workDir, { recursive: true, force: true })
  }, REGISTRY_TEST_TIMEOUT_MS)

  it(`tears everything down when the runner gets SIGINT mid-transfer${bedReason === undefined ? '' : ` [skipped: ${bedReason}]`}`, async () => {
    const out = join(dir, 'interrupted')
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'fleet.ts'),
      '--mode', 'registry', '--nodes', '3', '--size', '4MiB', '--rate', '8mbit', '--delay', '5ms', '--out', out, '--work-dir', join(dir, 'interrupted-work')],
    { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    let runId: string | undefined
    const exited = new Promise<number | null>(resolve => child.on('close', code => { resolve(code) }))
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString()
        runId ??= /run (shf[a-z0-9]+)/.exec(stderr)?.[1]
        if (/starting \d+ pulls/.test(stderr)) resolve()
      })
      void exited.then(() => { reject(new Error(`the runner exited before the pulls: ${stderr}`)) })
    })
    if (runId === undefined) throw new Error(`no run id in ${stderr}`)
    try {
      expect((await findLeftovers(runId)).namespaces.length).toBeGreaterThan(0)
      child.kill('SIGINT')
      expect(await exited).toBe(130)
      expect(stderr).toContain(`torn down ${runId}`)
      expect(await findLeftovers(runId)).toEqual(NO_LEFTOVERS)
    } finally {
      // Should the runner hang or fail, the next run must not find its bed.
      if (child.exitCode === null) child.kill('SIGKILL')
      await cleanupLeftovers(runId, true)
    }
  }, INTERRUPT_TEST_TIMEOUT_MS)
})

describe.skipIf(!daemon.available)('fleet, shoal mode', () => {
  it(`spreads one bundle to every edge through the swarm, verified on every node${daemon.available ? '' : ` [skipped: ${daemon.reason}]`}`, async () => {
    const options = smallFleet('shoal', { mode: 'shoal', timeoutSeconds: 45, sizeBytes: SWARM_SIZE_BYTES })
    const runId = newRunId()
    // Aborted before the test's own timeout, so that the bed is torn down even then.
    const { results, teardownProblems } = await runFleet(options, { runId, signal: AbortSignal.timeout(SHOAL_TEST_TIMEOUT_MS - 15_000) })
    expect(teardownProblems).toEqual([])
    expect(results.problems).toEqual([])
    expectSaneResults(results, options)
    expect(results.bundleId).toMatch(/^[0-9a-f]{64}$/)
    for (const node of results.perNode) expect(node.daemonStats).toHaveProperty('bytesUploaded')
    // No duplicate bytes (issue 10), said as what it means. It was "the link under 1.1x the
    // bundle" on a 3-chunk bundle, where one chunk fetched twice is 1.33x: one moved and one
    // end-game copy under load (1.67x) failed it. Now every byte on an edge's link is accounted
    // for: its chunk payload is the bundle plus the chunks its daemon counted twice, each asked
    // again for a reason the scheduler records (a request moved, timed out or refused, an
    // overdue holder, the end game: none unexplained); those are at most a sixth of the
    // bundle's chunks (0 measured at load 11); and the rest of the link (headers,
    // encryption, have-lists) stays under a tenth of the bundle (~0.03x measured).
    const edges = results.perNode.filter(n => n.role === 'edge')
    // The bed's own summary, wire split and duplicates by cause included: a failure names its bytes.
    console.log(summaryTable(results))
    for (const edge of edges) {
      const stats = edge.daemonStats as { bytesDownloaded: number, chunksFetchedTwice: number, requests: { duplicatesAfter: Record<string, number> } }
      const payload = stats.bytesDownloaded
      const what = `${edge.name}: ${edge.downloadedBytes} bytes on the wire, ${payload} of chunk payload, ${stats.chunksFetchedTwice} chunks twice (${JSON.stringify(stats.requests.duplicatesAfter)}) for a ${results.bundleBytes}-byte bundle`
      expect(payload, what).toBeGreaterThanOrEqual(results.bundleBytes)
      expect(payload - results.bundleBytes, what).toBeLessThanOrEqual(stats.chunksFetchedTwice * CHUNK_BYTES)
      expect(stats.requests.duplicatesAfter.unexplained ?? 0, what).toBe(0)
      expect(stats.chunksFetchedTwice, what).toBeLessThanOrEqual(Math.floor(results.bundleBytes / CHUNK_BYTES * MAX_TWICE_SHARE))
      expect(edge.downloadedBytes - payload, what).toBeLessThan(results.bundleBytes * 0.1)
    }
    expect(results.processes).toHaveLength(options.nodes)
    // The CPU accounting of the bed: start-up apart from the transfer, and the phase
    // boundaries on the clock `--cpu-prof` samples use, in the order they happened.
    const run = results.timeline
    expect(run).toBeDefined()
    expect(results.processesCpuPercent).toBeGreaterThan(0)
    for (const node of results.perNode) {
      expect(node.startupCpuSeconds).toBeGreaterThan(0)
      expect(node.systemCpuSeconds).toBeGreaterThanOrEqual(0)
      expect(node.systemCpuSeconds).toBeLessThanOrEqual(node.cpuSeconds ?? 0)
      const own = node.timeline
      expect(own).toBeDefined()
      if (own === undefined || run === undefined) continue
      expect(own.spawnedUs).toBeLessThan(own.readyUs)
      expect(own.readyUs).toBeLessThanOrEqual(run.pullsStartedUs)
      if (node.role !== 'edge') continue
      expect(own.completedUs).toBeGreaterThan(run.pullsStartedUs)
      expect(own.completedUs).toBeLessThanOrEqual(run.transferEndedUs)
      expect(node.cpuSecondsToCompletion).toBeLessThanOrEqual((node.cpuSeconds ?? 0) + 0.01)
      expect(node.cpuSecondsPerGiB).toBeCloseTo((node.cpuSeconds ?? 0) / (results.bundleBytes / 1024 ** 3), 0)
    }
    expect(await findLeftovers(runId)).toEqual(NO_LEFTOVERS)
  }, SHOAL_TEST_TIMEOUT_MS)
})
